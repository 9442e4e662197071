#pragma once

#include <sluice/topic_partition.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// Where a run starts reading a partition that has no committed offset.
enum class starting_offsets { earliest, latest, specific };

/// Offsets (or timestamps, in ms) named per partition. In offsets, -2 means
/// earliest and -1 latest (Spark's JSON form).
using partition_offsets = std::map<kafka::topic_partition, std::int64_t>;

/// How a source names what it reads: exactly one of Spark's three options.
enum class subscription_kind { subscribe, pattern, assign };

/// When a starting timestamp matches no offset (every record is older).
enum class timestamp_strategy { error, latest };

/// The types a schema field can have (Spark's names).
enum class field_type { string_t, int_t, long_t, double_t, boolean_t, timestamp_t };

std::string_view to_string(field_type t);

struct source_options {
  std::string bootstrap_servers;
  subscription_kind subscription = subscription_kind::subscribe;
  std::vector<std::string> subscribe; ///< `subscribe`
  std::string pattern;                ///< `subscribePattern` (POSIX ERE, whole name)
  std::vector<kafka::topic_partition> assign; ///< `assign`
  /// Start, for partitions without a committed offset, in Spark's precedence:
  /// `startingTimestamp`, then `startingOffsetsByTimestamp`, then `startingOffsets`.
  starting_offsets starting = starting_offsets::latest;
  partition_offsets starting_specific;     ///< when `starting` is specific
  partition_offsets starting_by_timestamp; ///< ms per partition
  std::optional<std::int64_t> starting_timestamp;
  timestamp_strategy starting_strategy = timestamp_strategy::error;
  /// End: any of them makes the run bounded. Same precedence as the start;
  /// `ending_latest` is `endingOffsets: latest`.
  bool ending_latest = false;
  partition_offsets ending_specific;
  partition_offsets ending_by_timestamp;
  std::optional<std::int64_t> ending_timestamp;
  /// Fail when records were deleted before they were read; else skip them, counted.
  bool fail_on_data_loss = true;
  /// Rate limit: offsets admitted per epoch, over all partitions.
  std::optional<std::int64_t> max_offsets_per_trigger;
  /// An epoch waits for this many offsets, at most `max_trigger_delay`.
  std::optional<std::int64_t> min_offsets_per_trigger;
  std::chrono::milliseconds max_trigger_delay{std::chrono::minutes(15)};
  /// Lanes: at least this many parallel chains over the assigned partitions.
  std::optional<std::int64_t> min_partitions;
  std::string group_id;
  bool include_headers = false;
  /// librdkafka consumer properties, `kafka.` prefix stripped.
  std::map<std::string, std::string> kafka;
  /// In code only: false for an app that keeps its own read positions (with
  /// `starting_specific`), so that the group's commits (still made, for lag
  /// tools) never decide where reading starts.
  bool start_from_commits = true;
};

struct schema_field {
  std::string name;
  field_type type;
};

/// What happens to a record with a null value (a delete on a compacted topic).
enum class tombstone_policy { dlq, pass, drop };

struct parse_options {
  std::vector<schema_field> fields; ///< empty: any JSON object, written byte for byte
  std::vector<std::string> required;
  tombstone_policy tombstones = tombstone_policy::dlq;
};

struct record;

/// Kafka Streams' TopicNameExtractor: the topic a valid record is written to.
/// An empty name, a source topic (without route.allowSourceTopic) or an
/// exception sends the record to the DLQ as `unroutable`.
using topic_extractor = std::function<std::string(const record&)>;

struct route_options {
  std::string topic; ///< fixed target; empty when routing by field
  std::string field;
  std::map<std::string, std::string> topics; ///< field value -> topic
  std::string default_topic;                 ///< empty: unmatched records go to the DLQ
  bool allow_source_topic = false;           ///< writing into a source topic is meant
  /// Routing by a function (pipelines built in code): `topic`, `field`,
  /// `topics` and `default` stay empty.
  topic_extractor extract;
  /// Set by pipeline_builder::build() for a pipeline whose last step is an
  /// actor stage that writes records itself (`actor_stage::delivers`, in
  /// code only): its name. Such a pipeline has no other route, and no dedup.
  std::string delivered_by;
};

struct sink_options {
  std::string bootstrap_servers;
  /// librdkafka producer properties, `kafka.` prefix stripped.
  std::map<std::string, std::string> kafka;
};

struct dlq_options {
  std::string topic;
};

/// What becomes of a record further behind its partition's event-time
/// progress than dedup keeps sightings (`within` + `allowedLateness`), when no
/// kept sighting makes it a duplicate: the state cannot tell whether it is one.
enum class late_policy {
  pass, ///< written unchecked (counted as late)
  drop, ///< dropped (counted as late and dropped), as Spark does
  dlq,  ///< to the DLQ with type `late`
};

/// Drop records whose key was seen within a window, per input partition
/// (../shared/DESIGN.md "Dedup and state").
struct dedup_options {
  std::vector<std::string> key; ///< fields whose values together form the key
  std::chrono::milliseconds within{0};
  /// How long past `within` (behind the partition's event-time progress) a
  /// sighting is kept, so that a duplicate arriving that late is still
  /// caught. Unset: as long as `within`.
  std::optional<std::chrono::milliseconds> allowed_lateness;
  late_policy late_records = late_policy::pass;
  /// A `timestamp` or `long` (epoch ms) field of the schema; empty: the
  /// record's Kafka timestamp.
  std::string time_field;
  std::string state_dir; ///< RocksDB files (a cache of the changelog)
  /// The compacted topic on the sink that holds the state. Unset:
  /// `<name>-dedup-changelog` (filled by fill_defaults(), as from a file);
  /// empty: none, the state lives only in `state_dir` (a warning says so).
  std::optional<std::string> changelog;

  /// The changelog topic, empty for none.
  std::string changelog_topic() const { return changelog.value_or(std::string()); }
  /// `allowed_lateness`, or its default.
  std::chrono::milliseconds lateness() const { return allowed_lateness.value_or(within); }
};

struct trigger_options {
  enum class kind { continuous, processing_time, available_now, once };
  kind mode = kind::continuous;
  /// Epoch length: the processingTime interval, or the commit interval.
  std::chrono::milliseconds interval{1000};
};

/// What a run promises about each input record's effects (../shared/DESIGN.md
/// "Offsets, checkpoints and guarantees").
enum class delivery_guarantee {
  /// Offsets are committed once the outputs they cover are acknowledged: a
  /// crash or a lost partition repeats what was written since the last commit.
  at_least_once,
  /// One Kafka transaction per epoch holds the outputs, the DLQ and changelog
  /// records and the consumed offsets: a read_committed reader sees each
  /// input's effects once, whatever fails.
  exactly_once,
};

/// How the actors run: flow-control and supervision settings.
struct runtime_options {
  std::size_t max_in_flight_per_partition = 10000;
  /// Bytes read but not yet acknowledged, across all partitions.
  std::size_t max_in_flight_bytes = 32u << 20;
  std::size_t max_batch_records = 500;
  int restart_budget = 5;
  /// Restarts older than this no longer count against the budget.
  std::chrono::milliseconds restart_window{std::chrono::minutes(10)};
  std::chrono::milliseconds restart_backoff{200};
  /// How long a cluster may stay unreachable before the run fails.
  std::chrono::milliseconds broker_timeout{std::chrono::seconds(60)};
  /// RocksDB's block cache and memtables together, all partitions.
  std::size_t memory_budget = 256u << 20;
};

/// Spark's description of a Kafka source, as in progress lines:
/// KafkaV2[Subscribe[a,b]], KafkaV2[SubscribePattern[p]], KafkaV2[Assign[a-0, a-1]].
std::string source_description(const source_options& s);

/// Whether the source names an end, which makes any run bounded.
bool has_ending(const source_options& s);

/// A whole pipeline, as read from `sluice run PIPELINE.json`.
struct pipeline_config {
  std::string name = "sluice";
  delivery_guarantee guarantee = delivery_guarantee::at_least_once;
  source_options source;
  parse_options parse;
  route_options route;
  sink_options sink;
  std::optional<dlq_options> dlq;
  std::optional<dedup_options> dedup;
  trigger_options trigger;
  runtime_options runtime;
};

/// One row of the option table: the single source of the README reference.
struct option_doc {
  std::string_view section;
  std::string_view name;
  std::string_view type;
  std::string_view default_value;
  std::string_view doc;
};

/// Whether each epoch admits a fixed range of offsets, as a Spark
/// micro-batch does: with a rate limit. availableNow and once ignore
/// `minOffsetsPerTrigger`, as Spark does.
bool admits_by_epoch(const pipeline_config& c);

/// Every option `sluice run` understands, in the order the README lists them.
const std::vector<option_doc>& option_table();

/// The option table as Markdown: printed by `sluice options`, and found
/// verbatim in README.md (a unit test checks it).
std::string option_reference_markdown();

/// Fills what a pipeline file leaves to defaults, as the file reader does:
/// an empty `source.group_id` becomes `sluice-<name>`, an empty
/// `dedup->state_dir` becomes `sluice-state/<name>`, an unset
/// `dedup->changelog` becomes `<name>-dedup-changelog` (set it to "" for
/// none), and `max_batch_records` is capped at `max_in_flight_per_partition`.
/// Call it on a config built in code before validate().
void fill_defaults(pipeline_config& config);

/// Throws config_error naming the option (e.g. `dedup.key`) and the expected
/// form, for anything a run would refuse at start; needs no JSON. Options are
/// named as a pipeline file spells them. Empty group id and state directory
/// are refused: fill_defaults() gives them their defaults.
void validate(const pipeline_config& config);

/// The sink's part of validate(): also what a topic_writer checks.
void validate(const sink_options& sink);

/// Parses a pipeline from JSON text (comments and trailing commas allowed).
/// Each override is `section.option=value` and replaces or adds that option
/// (`SECTION=null` removes an optional section); then fill_defaults() and
/// validate(). A key given twice in one JSON object is refused. Throws
/// config_error naming the first bad option.
pipeline_config parse_pipeline_config(std::string_view json_text,
                                      const std::vector<std::string>& overrides = {});

/// Reads and parses a pipeline file; config_error when unreadable or invalid.
pipeline_config load_pipeline_config(const std::string& path,
                                     const std::vector<std::string>& overrides = {});

/// Parses Spark-style durations: "1 second", "500 milliseconds", "2 minutes",
/// "250ms", "5s", decimals like "1.5 seconds" (rounded to whole milliseconds),
/// and "0" without a unit. Throws config_error naming `option`.
std::chrono::milliseconds parse_duration(std::string_view text,
                                         const std::string& option);

/// True when a client property holds a secret that must never be printed.
bool is_secret_property(std::string_view name);

/// True for librdkafka properties only a producer takes (acks, linger.ms, ...).
bool is_producer_property(std::string_view name);

/// True for librdkafka properties only a consumer takes (session.timeout.ms, ...).
bool is_consumer_property(std::string_view name);

} // namespace sluice
