// validate() and fill_defaults(): the rules on a pipeline_config's typed
// values, whoever made it. The pipeline file reader (options.cpp) checks only
// what is about the JSON (unknown keys, wrong JSON types, unreadable words and
// durations) and then calls both, as pipeline_builder::build() does; the
// pipeline constructor calls validate() for whatever reaches it.
//
// Errors name options as a pipeline file spells them (`dedup.key`): that is
// the one vocabulary of the option table, the README and `--set`.

#include "config/checks.hpp"

#include <sluice/config.hpp>
#include <sluice/errors.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace sluice {

namespace {

using config::checked_topic;

std::string positive_error(std::int64_t n) {
  return "expected a positive integer, got " + std::to_string(n);
}

void check_positive(std::int64_t n, const char* option) {
  if (n <= 0) throw config_error(option, positive_error(n));
}

/// Durations come from parse_duration as 0 or more; one made in code may not.
void check_not_negative(std::chrono::milliseconds d, const char* option) {
  if (d.count() < 0)
    throw config_error(option, "expected a duration of 0 or more, got " +
                                   std::to_string(d.count()) + " ms");
}

/// Offsets or timestamps named per partition: valid names and values, all of
/// them partitions the source reads.
void check_named_partitions(const source_options& src, const partition_offsets& named,
                            const std::string& option, bool timestamps,
                            bool allow_earliest) {
  for (auto& [tp, n] : named) {
    checked_topic(tp.topic, option);
    if (tp.partition < 0)
      throw config_error(option, "expected a partition number, got `" +
                                     std::to_string(tp.partition) + "`");
    bool ok = timestamps ? n >= 0 : (n >= 0 || n == -1 || (allow_earliest && n == -2));
    if (!ok)
      throw config_error(option,
                         "`" + tp.str() + "`: " + std::to_string(n) +
                             (timestamps ? " is not a timestamp (ms >= 0)"
                              : allow_earliest
                                  ? " is not an offset (>= 0, -2 earliest, -1 latest)"
                                  : " is not an offset (>= 0, -1 latest)"));
  }
  for (auto& [tp, value] : named)
    if (!config::in_subscription(src, tp))
      throw config_error(option, "`" + tp.str() +
                                     "` is not part of what the source reads (subscribe, "
                                     "subscribePattern or assign)");
}

void check_timestamp(const std::optional<std::int64_t>& ms, const char* option) {
  if (ms && *ms < 0)
    throw config_error(option, "expected a timestamp in ms since the epoch, got " +
                                   std::to_string(*ms));
}

void check_subscription(const source_options& src) {
  int given = !src.subscribe.empty() + !src.pattern.empty() + !src.assign.empty();
  if (given > 1)
    throw config_error("source", "choose one of subscribe, subscribePattern and assign");
  // One of the lists is filled, but `subscription` names another (code only:
  // the file reader sets both together).
  auto mismatch = [&](const char* kind) {
    throw config_error("source", std::string("the subscription kind is ") + kind +
                                     ", but " +
                                     (!src.subscribe.empty() ? "subscribe"
                                      : !src.pattern.empty() ? "subscribePattern"
                                                             : "assign") +
                                     " is set: choose one of subscribe, "
                                     "subscribePattern and assign");
  };
  switch (src.subscription) {
  case subscription_kind::subscribe:
    if (src.subscribe.empty()) {
      if (given == 0)
        throw config_error("source.subscribe",
                           "required: one of subscribe (a comma-separated topic "
                           "list, like \"orders\"), subscribePattern or assign");
      mismatch("subscribe");
    }
    for (auto& t : src.subscribe)
      checked_topic(t, "source.subscribe");
    break;
  case subscription_kind::pattern:
    if (src.pattern.empty() && given != 0) mismatch("subscribePattern");
    config::check_pattern(src.pattern, "source.subscribePattern");
    break;
  case subscription_kind::assign:
    if (src.assign.empty()) {
      if (given == 0)
        throw config_error("source.assign",
                           R"(expected JSON like {"orders": [0, 1]}, got no partition)");
      mismatch("assign");
    }
    for (auto i = src.assign.begin(); i != src.assign.end(); ++i) {
      checked_topic(i->topic, "source.assign");
      if (i->partition < 0)
        throw config_error("source.assign", "expected partition numbers, got " +
                                                std::to_string(i->partition) + " for `" +
                                                i->topic + "`");
      if (std::find(src.assign.begin(), i, *i) != i)
        throw config_error("source.assign", "`" + i->str() + "` is named twice");
    }
    break;
  }
}

/// SASL credentials are used only with a SASL security.protocol: with the
/// default (PLAINTEXT) librdkafka ignores them, and the broker then drops the
/// connection ("Broken pipe") without saying why.
void check_sasl_protocol(const std::map<std::string, std::string>& kafka,
                         const std::string& section) {
  bool credentials = kafka.contains("sasl.username") || kafka.contains("sasl.password") ||
                     kafka.contains("sasl.mechanism") ||
                     kafka.contains("sasl.mechanisms");
  if (!credentials) return;
  auto protocol = kafka.find("security.protocol");
  std::string value = protocol == kafka.end() ? "plaintext" : protocol->second;
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (value != "sasl_plaintext" && value != "sasl_ssl")
    throw config_error(
        section + ".kafka.security.protocol",
        "SASL credentials are set, so expected SASL_SSL or SASL_PLAINTEXT (" +
            (protocol == kafka.end() ? std::string("not set: PLAINTEXT")
                                     : "`" + protocol->second + "`") +
            " would not use them)");
}

/// Client properties (`kafka.` stripped) that Sluice refuses, for the source
/// (`consumer`) or the sink.
void check_kafka_properties(const std::map<std::string, std::string>& props,
                            const std::string& section, bool consumer,
                            bool transactional = false) {
  for (auto& [name, value] : props) {
    auto option = section + ".kafka." + name;
    // In a file the prefix marks a librdkafka property; in code the map is
    // librdkafka's properties already.
    if (name.starts_with("kafka."))
      throw config_error(option, "the properties map takes librdkafka's names: `" +
                                     name.substr(6) + "`, without `kafka.`");
    if (name == "metadata.broker.list")
      throw config_error(option, "an alias of bootstrap.servers: use `" + section +
                                     ".kafka.bootstrap.servers`");
    if (name == "key.deserializer" || name == "value.deserializer" ||
        name == "key.serializer" || name == "value.serializer")
      throw config_error(option, "not supported: Sluice reads and writes keys and values "
                                 "as bytes; remove this option");
    if (consumer && name == "enable.auto.commit")
      throw config_error(option, "not supported: Sluice commits offsets itself after the "
                                 "outputs are acknowledged; remove this option");
    if (consumer && name == "auto.offset.reset")
      throw config_error(option,
                         "not supported: use `startingOffsets` (earliest or latest)");
    if (consumer && config::producer_only(name))
      throw config_error(option, "a producer property: set it on the sink "
                                 "(`sink.kafka." +
                                     name + "`)");
    if (!consumer && config::consumer_only(name))
      throw config_error(option, "a consumer property: set it on the source "
                                 "(`source.kafka." +
                                     name + "`)");
  }
  check_sasl_protocol(props, section);
  if (consumer) return;
  // The guarantee rests on these: outputs acknowledged by every in-sync
  // replica, in order, before their inputs are committed.
  if (auto it = props.find("enable.idempotence");
      it != props.end() && it->second != "true")
    throw config_error(
        section + ".kafka.enable.idempotence",
        "must stay true: without it a retried batch can be written twice "
        "or out of order, which at-least-once with per-key order rules out");
  if (props.contains("transactional.id") && !transactional)
    throw config_error(section + ".kafka.transactional.id",
                       "only used with \"guarantee\": \"exactly-once\" in a pipeline, "
                       "which runs the transactions itself");
  if (auto it = props.find("partitioner"); it != props.end() && it->second == "random")
    throw config_error(section + ".kafka.partitioner",
                       "random places records with the same key on different "
                       "partitions, which breaks per-key order; use murmur2_random (the "
                       "default, as Java clients) or another key-based partitioner");
  for (auto name : {"acks", "request.required.acks"})
    if (auto it = props.find(name);
        it != props.end() && it->second != "all" && it->second != "-1")
      throw config_error(section + ".kafka." + name,
                         "must be all (or -1): offsets are committed once outputs are "
                         "acknowledged, and with acks=" +
                             it->second + " an acknowledged output can still be lost");
}

void check_source(const source_options& src) {
  if (config::is_blank(src.bootstrap_servers))
    throw config_error(
        "source.kafka.bootstrap.servers",
        "required: the brokers to read from, like \"host1:9092,host2:9092\"");
  check_subscription(src);
  if (src.starting == starting_offsets::specific && src.starting_specific.empty())
    throw config_error(
        "source.startingOffsets",
        R"(expected JSON like {"orders": {"0": 42, "1": -2}} (-2 earliest, -1 latest), )"
        "got no partition");
  check_named_partitions(src, src.starting_specific, "source.startingOffsets", false,
                         true);
  check_named_partitions(src, src.starting_by_timestamp,
                         "source.startingOffsetsByTimestamp", true, false);
  check_timestamp(src.starting_timestamp, "source.startingTimestamp");
  check_named_partitions(src, src.ending_specific, "source.endingOffsets", false, false);
  check_named_partitions(src, src.ending_by_timestamp, "source.endingOffsetsByTimestamp",
                         true, false);
  check_timestamp(src.ending_timestamp, "source.endingTimestamp");
  if (src.max_offsets_per_trigger)
    check_positive(*src.max_offsets_per_trigger, "source.maxOffsetsPerTrigger");
  if (src.min_offsets_per_trigger)
    check_positive(*src.min_offsets_per_trigger, "source.minOffsetsPerTrigger");
  if (src.max_offsets_per_trigger && src.min_offsets_per_trigger &&
      *src.min_offsets_per_trigger > *src.max_offsets_per_trigger)
    throw config_error("source.minOffsetsPerTrigger",
                       "must not exceed source.maxOffsetsPerTrigger (" +
                           std::to_string(*src.max_offsets_per_trigger) + "), got " +
                           std::to_string(*src.min_offsets_per_trigger));
  check_not_negative(src.max_trigger_delay, "source.maxTriggerDelay");
  if (src.min_partitions) check_positive(*src.min_partitions, "source.minPartitions");
  if (config::is_blank(src.group_id))
    throw config_error("source.kafka.group.id",
                       "expected a group name, got an empty string (leave the option "
                       "out of a file, or call fill_defaults() on a config made in "
                       "code, for the default sluice-<name>)");
  check_kafka_properties(src.kafka, "source", true);
}

void check_parse(const parse_options& p) {
  std::set<std::string> names;
  for (auto& f : p.fields) {
    if (f.name.empty())
      throw config_error("parse.schema", "expected field names, got an empty string");
    if (!names.insert(f.name).second)
      throw config_error("parse.schema", "field `" + f.name + "` is named twice");
  }
  for (auto& name : p.required) {
    if (name.empty())
      throw config_error("parse.required", "expected field names, got an empty string");
    if (!names.empty() && !names.contains(name))
      throw config_error("parse.required", "field `" + name + "` is not in parse.schema");
  }
}

void check_route(const pipeline_config& cfg) {
  auto& r = cfg.route;
  if (!r.delivered_by.empty()) {
    // The last stage writes the records; nothing is left to route.
    if (!r.topic.empty() || !r.field.empty() || !r.topics.empty() ||
        !r.default_topic.empty() || r.extract)
      throw config_error("route", "the stage `" + r.delivered_by +
                                      "` writes the records itself: set no route");
    if (cfg.dedup)
      throw config_error("dedup", "runs after the stages, but the stage `" +
                                      r.delivered_by +
                                      "` writes the records itself: dedup in a step "
                                      "before it, or write through a sink");
    return; // tombstones passed go to the stage, which writes them too
  }
  if (!r.topic.empty()) checked_topic(r.topic, "route.topic");
  for (auto& [value, topic] : r.topics)
    checked_topic(topic, "route.topics." + value);
  if (!r.default_topic.empty()) checked_topic(r.default_topic, "route.default");
  if (r.extract && (!r.topic.empty() || !r.field.empty() || !r.topics.empty() ||
                    !r.default_topic.empty()))
    throw config_error("route", std::string("a route function is set, and so is `") +
                                    (!r.topic.empty()    ? "topic"
                                     : !r.field.empty()  ? "field"
                                     : !r.topics.empty() ? "topics"
                                                         : "default") +
                                    "`: choose one");
  if (!r.topic.empty() && !r.field.empty())
    throw config_error("route", "both `topic` and `field` are set: choose one");
  if (!r.topic.empty() && (!r.topics.empty() || !r.default_topic.empty()))
    throw config_error(r.topics.empty() ? "route.default" : "route.topics",
                       "only used when routing by `field`, but `route.topic` sends every "
                       "record to `" +
                           r.topic + "`");
  if (r.topic.empty() && r.field.empty() && !r.extract)
    throw config_error(
        "route", "expected either {\"topic\": T} or "
                 "{\"field\": F, \"topics\": {value: topic}, \"default\": T} "
                 "(in code: route(topic), route(route_options) or route(function))");
  if (!r.field.empty() && r.topics.empty() && r.default_topic.empty())
    throw config_error("route.topics", "routing by field needs `topics` or `default`");
  // Every record would miss the field, and go to the DLQ as unroutable.
  auto& fields = cfg.parse.fields;
  if (!r.field.empty() && !fields.empty() &&
      std::none_of(fields.begin(), fields.end(),
                   [&](auto& f) { return f.name == r.field; }))
    throw config_error("route.field", "field `" + r.field + "` is not in parse.schema");
  // A route function sees a tombstone's key, so it can route one too.
  if (cfg.parse.tombstones == tombstone_policy::pass && r.topic.empty() &&
      r.default_topic.empty() && !r.extract)
    throw config_error("parse.tombstones",
                       "pass needs a topic for records without a value: set route.topic "
                       "or route.default");
}

/// Writing into a topic the pipeline reads is an endless loop.
void check_no_loop(const pipeline_config& cfg) {
  auto no_loop = [&](const std::string& t, const std::string& option) {
    if (!t.empty() && config::is_source_topic(cfg.source, t) &&
        !cfg.route.allow_source_topic)
      throw config_error(option, "`" + t +
                                     "` is also a source topic: every record written "
                                     "there is read again, endlessly (set "
                                     "route.allowSourceTopic to true if that is meant)");
  };
  no_loop(cfg.route.topic, "route.topic");
  no_loop(cfg.route.default_topic, "route.default");
  for (auto& [value, t] : cfg.route.topics)
    no_loop(t, "route.topics." + value);
  if (cfg.dlq && config::is_source_topic(cfg.source, cfg.dlq->topic))
    throw config_error("dlq.topic",
                       "`" + cfg.dlq->topic +
                           "` is also a source topic: dead letters would be "
                           "read again, fail again and loop (refused even with "
                           "route.allowSourceTopic)");
}

void check_dedup(const pipeline_config& cfg) {
  auto& d = *cfg.dedup;
  auto& fields = cfg.parse.fields;
  auto in_schema = [&](const std::string& name) {
    return std::find_if(fields.begin(), fields.end(),
                        [&](auto& f) { return f.name == name; });
  };
  if (d.key.empty())
    throw config_error("dedup.key", "required: the field (or list of fields) whose "
                                    "values identify a record, e.g. [\"order_id\"]");
  for (auto i = d.key.begin(); i != d.key.end(); ++i) {
    if (i->empty())
      throw config_error("dedup.key", "expected field names, got an empty string");
    if (std::find(d.key.begin(), i, *i) != i)
      throw config_error("dedup.key", "field `" + *i + "` is named twice");
    if (!fields.empty() && in_schema(*i) == fields.end())
      throw config_error("dedup.key", "field `" + *i + "` is not in parse.schema");
  }
  if (d.within.count() <= 0)
    throw config_error("dedup.within", "expected a positive duration");
  if (d.allowed_lateness)
    check_not_negative(*d.allowed_lateness, "dedup.allowedLateness");
  // As a pipeline file's durations are: far beyond any real window, the
  // window arithmetic (within + allowedLateness, in ms) would overflow.
  constexpr std::chrono::milliseconds ten_years{10LL * 366 * 24 * 3600 * 1000};
  for (auto [value, option] : {std::pair{d.within, "dedup.within"},
                               std::pair{d.lateness(), "dedup.allowedLateness"}})
    if (value > ten_years)
      throw config_error(option, "expected at most 10 years, got " +
                                     std::to_string(value.count()) + " ms");
  if (d.late_records == late_policy::dlq && !cfg.dlq)
    throw config_error("dedup.lateRecords",
                       "dlq needs a `dlq` section (its topic) to "
                       "send late records to; or choose pass or drop");
  if (!d.time_field.empty()) {
    auto f = in_schema(d.time_field);
    if (f == fields.end() ||
        (f->type != field_type::timestamp_t && f->type != field_type::long_t))
      throw config_error("dedup.timeField",
                         "expected a field of parse.schema typed timestamp or long "
                         "(epoch milliseconds), got `" +
                             d.time_field + "`");
  }
  if (config::is_blank(d.state_dir))
    throw config_error("dedup.stateDir", "expected a directory, got an empty string");
  auto changelog = d.changelog_topic();
  if (!changelog.empty()) {
    checked_topic(changelog, "dedup.changelog");
    if (cfg.dlq && changelog == cfg.dlq->topic)
      throw config_error("dedup.changelog", "`" + changelog + "` is also the DLQ topic");
    auto& r = cfg.route;
    if (changelog == r.topic || changelog == r.default_topic ||
        std::any_of(r.topics.begin(), r.topics.end(),
                    [&](auto& e) { return e.second == changelog; }))
      throw config_error("dedup.changelog",
                         "`" + changelog + "` is also an output topic of `route`");
  }
  if (cfg.source.min_partitions)
    throw config_error("source.minPartitions",
                       "cannot be combined with dedup yet: lanes would see one key's "
                       "records out of order (remove one of them)");
  if (!changelog.empty() && config::is_source_topic(cfg.source, changelog))
    throw config_error("dedup.changelog", "`" + changelog +
                                              "` is also a source topic: the "
                                              "changelog would be read as input");
}

void check_runtime(const runtime_options& r) {
  auto positive = [](std::size_t n, const char* option) {
    if (n == 0) throw config_error(option, positive_error(0));
  };
  positive(r.max_in_flight_per_partition, "runtime.maxInFlightPerPartition");
  positive(r.max_in_flight_bytes, "runtime.maxInFlightBytes");
  positive(r.max_batch_records, "runtime.maxBatchRecords");
  check_positive(r.restart_budget, "runtime.restartBudget");
  check_not_negative(r.restart_backoff, "runtime.restartBackoff");
  check_not_negative(r.restart_window, "runtime.restartWindow");
  if (r.broker_timeout < std::chrono::seconds(1))
    throw config_error("runtime.brokerTimeout", "expected at least 1 second");
  if (r.memory_budget < (16u << 20))
    throw config_error("runtime.memoryBudget",
                       "expected at least 16777216 (16 MiB), got " +
                           std::to_string(r.memory_budget));
}

} // namespace

void fill_defaults(pipeline_config& cfg) {
  if (cfg.source.group_id.empty()) cfg.source.group_id = "sluice-" + cfg.name;
  if (cfg.dedup && cfg.dedup->state_dir.empty())
    cfg.dedup->state_dir = "sluice-state/" + cfg.name;
  if (cfg.dedup && !cfg.dedup->changelog)
    cfg.dedup->changelog = cfg.name + "-dedup-changelog";
  // A batch is at most a partition's credit of records (the file reader has
  // always capped it so).
  cfg.runtime.max_batch_records =
      std::min(cfg.runtime.max_batch_records, cfg.runtime.max_in_flight_per_partition);
}

namespace {

/// `transactional`: the pipeline runs Kafka transactions with this sink.
void check_sink(const sink_options& sink, bool transactional) {
  if (config::is_blank(sink.bootstrap_servers))
    throw config_error("sink.kafka.bootstrap.servers",
                       "required: the brokers to write to, like \"host1:9092\"");
  check_kafka_properties(sink.kafka, "sink", false, transactional);
}

} // namespace

void validate(const sink_options& sink) {
  check_sink(sink, false);
}

namespace {

/// What exactly-once rests on: every write in the run's transaction, reads
/// that skip aborted records, the eager group protocol (../README.md
/// "Guarantees"); and transactional ids only where transactions run.
void check_guarantee(const pipeline_config& cfg) {
  auto word = [](const std::map<std::string, std::string>& props, const char* name) {
    auto it = props.find(name);
    std::string out;
    if (it != props.end())
      for (char c : it->second)
        if (c != ' ' && c != '\t')
          out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  if (cfg.guarantee != delivery_guarantee::exactly_once) return;
  if (!cfg.route.delivered_by.empty())
    throw config_error("guarantee", "exactly-once covers what the sink writes, but the "
                                    "stage `" +
                                        cfg.route.delivered_by +
                                        "` writes the records itself");
  if (word(cfg.source.kafka, "isolation.level") == "read_uncommitted")
    throw config_error("source.kafka.isolation.level",
                       "exactly-once reads read_committed (records of aborted "
                       "transactions are never inputs); leave it out");
  if (word(cfg.source.kafka, "partition.assignment.strategy").find("cooperative") !=
      std::string::npos)
    throw config_error("source.kafka.partition.assignment.strategy",
                       "exactly-once needs the eager protocol (range or roundrobin): a "
                       "cooperative rebalance revokes some partitions while the others "
                       "write into the same transaction, and librdkafka before 2.10 "
                       "loses the assignment on a commit refused during one "
                       "(librdkafka#4059)");
  // The broker aborts a transaction open longer than its timeout: an epoch
  // (one transaction) must end well within it.
  if (cfg.trigger.mode == trigger_options::kind::once)
    throw config_error(
        "trigger.once",
        "not with exactly-once: its one epoch is one transaction, which the "
        "broker aborts after sink.kafka.transaction.timeout.ms; use "
        "availableNow (epochs of 1 s)");
  std::int64_t timeout_ms = 10000; // the pipeline's default
  if (auto it = cfg.sink.kafka.find("transaction.timeout.ms");
      it != cfg.sink.kafka.end()) {
    auto& text = it->second;
    if (text.empty() || text.size() > 9 ||
        !std::all_of(text.begin(), text.end(),
                     [](char c) { return c >= '0' && c <= '9'; }))
      throw config_error("sink.kafka.transaction.timeout.ms",
                         "expected whole milliseconds, like 60000, got `" + text + "`");
    timeout_ms = std::stoll(text);
  }
  auto epoch_ms = cfg.trigger.interval.count();
  if (epoch_ms * 2 > timeout_ms) {
    auto why =
        " under exactly-once: each epoch is one transaction, which the broker "
        "aborts when it stays open longer than sink.kafka.transaction.timeout.ms (" +
        std::to_string(timeout_ms) + " ms); raise it to at least " +
        std::to_string(2 * epoch_ms) + " or shorten the epoch";
    if (cfg.trigger.mode == trigger_options::kind::processing_time)
      throw config_error("trigger.processingTime",
                         "at most half of the transaction timeout (" +
                             std::to_string(epoch_ms) + " ms given)" + why);
    throw config_error("sink.kafka.transaction.timeout.ms", "at least twice the epoch (" +
                                                                std::to_string(epoch_ms) +
                                                                " ms)" + why);
  }
  if (auto it = cfg.sink.kafka.find("transactional.id");
      it != cfg.sink.kafka.end() && config::is_blank(it->second))
    throw config_error("sink.kafka.transactional.id",
                       "expected an id unique to this instance, got an empty string");
}

} // namespace

void validate(const pipeline_config& cfg) {
  if (config::is_blank(cfg.name))
    throw config_error("name", "expected a pipeline name, got an empty string");
  check_source(cfg.source);
  check_parse(cfg.parse);
  check_route(cfg);
  check_sink(cfg.sink, cfg.guarantee == delivery_guarantee::exactly_once);
  if (cfg.dlq) checked_topic(cfg.dlq->topic, "dlq.topic");
  check_no_loop(cfg);
  if (cfg.dedup) check_dedup(cfg);
  check_not_negative(cfg.trigger.interval, "trigger.processingTime");
  check_runtime(cfg.runtime);
  check_guarantee(cfg);
}

} // namespace sluice
