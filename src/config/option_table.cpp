// The table of every pipeline option (`sluice options`, README's reference).
#include <sluice/config.hpp>

#include <string>
#include <vector>

namespace sluice {

std::string_view to_string(field_type t) {
  switch (t) {
  case field_type::string_t:
    return "string";
  case field_type::int_t:
    return "int";
  case field_type::long_t:
    return "long";
  case field_type::double_t:
    return "double";
  case field_type::boolean_t:
    return "boolean";
  case field_type::timestamp_t:
    return "timestamp";
  }
  return "?";
}

const std::vector<option_doc>& option_table() {
  static const std::vector<option_doc> table = {
      {"", "name", "string", "sluice",
       "Pipeline name; the default consumer group is `sluice-<name>`."},
      {"", "guarantee", "at-least-once or exactly-once", "at-least-once",
       "`exactly-once`: one Kafka transaction per epoch holds the outputs, DLQ and "
       "changelog records and the consumed offsets (read_committed readers see each "
       "input once); proven on real Kafka only, the embedded broker cannot hold it. See "
       "Guarantees."},
      {"source", "kafka.bootstrap.servers", "host:port list", "(required)",
       "Brokers to read from."},
      {"source", "subscribe", "comma list", "",
       "Topics to read. Exactly one of `subscribe`, `subscribePattern`, `assign`."},
      {"source", "subscribePattern", "regex", "",
       "Topics whose whole name matches this POSIX extended regular expression (no "
       "`\\d`: "
       "use `[0-9]`); topics created later join at the next metadata refresh."},
      {"source", "assign", "{topic: [partition, ...]}", "",
       "These partitions, without a group rebalance; offsets are still committed to "
       "`kafka.group.id`. A JSON object or a JSON string."},
      {"source", "startingOffsets", "earliest, latest or {topic: {partition: offset}}",
       "latest (earliest with an ending option)",
       "Where to start a partition that has no committed offset; in JSON -2 is "
       "earliest, -1 latest, and every partition read needs an entry."},
      {"source", "startingOffsetsByTimestamp", "{topic: {partition: ms}}", "",
       "Start at the first record at or after a timestamp, per partition (before "
       "`startingOffsets`)."},
      {"source", "startingTimestamp", "ms", "",
       "The same for every partition (before both above)."},
      {"source", "startingOffsetsByTimestampStrategy", "error or latest", "error",
       "When no record is that recent: fail, or start at the latest offset."},
      {"source", "endingOffsets", "latest or {topic: {partition: offset}}", "",
       "Stop each partition here (-1 = the latest offset at start); any end makes the "
       "run bounded, whatever the trigger."},
      {"source", "endingOffsetsByTimestamp", "{topic: {partition: ms}}", "",
       "Stop at the first record at or after a timestamp (latest when none is)."},
      {"source", "endingTimestamp", "ms", "", "The same for every partition."},
      {"source", "failOnDataLoss", "boolean", "true",
       "When records were deleted by retention before they were read: fail the run "
       "(true) or skip them, counted in `numLostRows` (false)."},
      {"source", "maxOffsetsPerTrigger", "integer", "",
       "Rate limit: an epoch admits at most this many offsets, split over the "
       "partitions in proportion to their backlog; availableNow then runs several "
       "epochs, once admits one."},
      {"source", "minOffsetsPerTrigger", "integer", "",
       "An epoch starts only when this many offsets are waiting, or after "
       "`maxTriggerDelay` (ignored by availableNow and once)."},
      {"source", "maxTriggerDelay", "duration", "15 minutes",
       "The longest an epoch waits for `minOffsetsPerTrigger`."},
      {"source", "minPartitions", "integer", "",
       "When above the partitions assigned, each partition's records fan out to "
       "parallel lanes (parse, route, user stage) by key hash, keeping per-key order."},
      {"source", "kafka.group.id", "string", "sluice-<name>",
       "Consumer group; committed offsets live there."},
      {"source", "includeHeaders", "boolean", "false",
       "Read record headers and keep them on outputs."},
      {"source", "kafka.*", "string", "",
       "Any librdkafka consumer property, prefix stripped."},
      {"parse", "format", "json", "json", "Payload format."},
      {"parse", "schema", "{field: type}", "{}",
       "Field types: string, int, long, double, boolean, timestamp (ISO-8601). Output "
       "keeps only these fields."},
      {"parse", "required", "[field, ...]", "[]",
       "Fields that must be present and non-null."},
      {"parse", "tombstones", "dlq, pass or drop", "dlq",
       "Records with a null value (deletes on a compacted topic): to the DLQ, passed on "
       "with their key to `route.topic` or `route.default`, or dropped (counted)."},
      {"route", "topic", "string", "", "Write every record to this topic."},
      {"route", "field", "string", "", "Route by this field's value ..."},
      {"route", "topics", "{value: topic}", "{}",
       "... to the topic mapped to the value."},
      {"route", "default", "string", "",
       "Topic for values not in `topics`; without it they go to the DLQ."},
      {"route", "allowSourceTopic", "boolean", "false",
       "Allow writing to a topic the pipeline reads (otherwise an error: an endless "
       "loop)."},
      {"sink", "kafka.bootstrap.servers", "host:port list", "(required)",
       "Brokers to write to."},
      {"sink", "kafka.*", "string", "",
       "Any librdkafka producer property, e.g. kafka.acks, kafka.compression.type, "
       "kafka.linger.ms."},
      {"dlq", "topic", "string", "",
       "Dead-letter topic (on the sink's brokers). Without a DLQ an invalid record stops "
       "the run."},
      {"dedup", "key", "[field, ...]", "(required)",
       "Fields whose values together identify a record; a record missing one goes to "
       "the DLQ."},
      {"dedup", "within", "duration", "(required)",
       "A record whose key was seen at another offset of its partition within this "
       "(event time) is dropped and counted."},
      {"dedup", "allowedLateness", "duration", "as long as within",
       "How long past within (behind the partition's latest event time) sightings are "
       "kept, so that a duplicate arriving that late is still dropped. Bounds the state: "
       "keys live within + allowedLateness of event time."},
      {"dedup", "lateRecords", "pass, drop or dlq", "pass",
       "A record further behind than within + allowedLateness, whose key no kept "
       "sighting matches (the state cannot tell): written unchecked, dropped (Spark's "
       "choice), or sent to the DLQ as `late`. Counted as numLateRows either way."},
      {"dedup", "timeField", "field", "",
       "A timestamp or long (epoch ms) field of parse.schema as event time; default: the "
       "record's Kafka timestamp."},
      {"dedup", "stateDir", "directory", "sluice-state/<name>",
       "RocksDB files, a cache of the changelog; one process and one owner at a time "
       "(another's or a damaged state is rebuilt from the changelog, or fails the run "
       "without one)."},
      {"dedup", "changelog", "topic or false", "<name>-dedup-changelog",
       "Compacted topic on the sink that holds the state; restored from when local "
       "state is missing or behind. false: state only local (a warning)."},
      {"trigger", "processingTime", "duration", "",
       "Epoch length, e.g. \"1 second\"; 0: epochs back to back (10 ms apart at least)."},
      {"trigger", "availableNow", "boolean", "false",
       "Process up to the end offsets seen at start, commit, exit 0."},
      {"trigger", "once", "boolean", "false",
       "The same, in a single epoch (one progress line)."},
      {"runtime", "maxInFlightPerPartition", "integer", "10000",
       "Credit: records read but not yet acknowledged, per partition."},
      {"runtime", "maxInFlightBytes", "integer", "33554432",
       "Credit in bytes read but not yet acknowledged, across all partitions: keys, "
       "values and headers, and the memory of their parsed rows; librdkafka's "
       "prefetch is sized from it."},
      {"runtime", "maxBatchRecords", "integer", "500",
       "Records per batch between actors."},
      {"runtime", "restartBudget", "integer", "5",
       "Restarts of one partition chain within `restartWindow` before the run fails."},
      {"runtime", "restartWindow", "duration", "10 minutes",
       "Restarts older than this no longer count against the budget."},
      {"runtime", "restartBackoff", "duration", "200 milliseconds",
       "First restart delay; doubles on each restart."},
      {"runtime", "brokerTimeout", "duration", "60 seconds",
       "How long a cluster may stay unreachable (or a lookup unanswered) before the run "
       "fails with exit 1."},
      {"runtime", "memoryBudget", "integer", "268435456",
       "Bytes for dedup state in memory: RocksDB's block cache and memtables together, "
       "all partitions."},
  };
  return table;
}

std::string option_reference_markdown() {
  std::string out =
      "| section | option | type | default | meaning |\n|---|---|---|---|---|\n";
  for (auto& o : option_table()) {
    out += "| " + std::string(o.section.empty() ? "(top)" : o.section) + " | `" +
           std::string(o.name) + "` | " + std::string(o.type) + " | " +
           std::string(o.default_value) + " | " + std::string(o.doc) + " |\n";
  }
  return out;
}

} // namespace sluice
