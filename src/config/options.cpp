// The pipeline file's reader: JSON to pipeline_config, `--set` overrides,
// and the messages that name an option and its expected form. What the
// options mean together is validate()'s (validate.cpp).
#include "config/checks.hpp"
#include "config/json_text.hpp"
#include "core/json_writer.hpp"

#include <sluice/config.hpp>
#include <sluice/errors.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <utility>

namespace json = boost::json;

namespace sluice {

using config::find_duplicate_key;
using config::given_twice;
using config::position_in;

namespace {

std::string describe(const json::value& v) {
  std::string s;
  write_json(v, s); // numbers as written: 1.5, not 1.5E0

  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string as_string(const json::value& v, const std::string& option,
                      const std::string& expected = "a string") {
  if (v.is_string()) return std::string(v.get_string());
  throw config_error(option, "expected " + expected + ", got " + describe(v));
}

/// A string option whose empty value means "not set" in pipeline_config (a
/// route topic, a state directory): written out empty, it is a slip.
/// `expected` is the form named when the value is not a string at all.
std::string as_named(const json::value& v, const std::string& option,
                     const std::string& what, const std::string& expected = "a string") {
  auto s = as_string(v, option, expected);
  if (s.empty()) throw config_error(option, "expected " + what + ", got an empty string");
  return s;
}

/// A duration: text for parse_duration(), or the number 0, which needs no
/// unit. Another bare number is refused: 5 could be seconds or milliseconds.
std::chrono::milliseconds
as_duration(const json::value& v, const std::string& option,
            const std::string& expected = "a duration like \"1 second\"") {
  if (v.is_string()) return parse_duration(v.get_string(), option);
  bool zero = (v.is_int64() && v.get_int64() == 0) ||
              (v.is_uint64() && v.get_uint64() == 0) ||
              (v.is_double() && v.get_double() == 0);
  if (zero) return std::chrono::milliseconds(0);
  if (v.is_number()) {
    auto n = describe(v);
    throw config_error(option, "expected " + expected + ", got " + n +
                                   ": a number needs a unit, like \"" + n +
                                   " seconds\" or \"" + n + " ms\"");
  }
  throw config_error(option, "expected " + expected + ", got " + describe(v));
}

/// kafka.* values may be written as JSON strings, numbers or booleans.
std::string as_property(const json::value& v, const std::string& option) {
  if (v.is_string()) return std::string(v.get_string());
  // librdkafka's integer properties take no fraction: 5.0 is passed as 5.
  if (v.is_double() && std::trunc(v.get_double()) == v.get_double() &&
      std::abs(v.get_double()) < 1e15)
    return std::to_string(static_cast<std::int64_t>(v.get_double()));
  if (v.is_int64() || v.is_uint64() || v.is_double() || v.is_bool()) {
    std::string out;
    write_json(v, out);
    return out;
  }
  throw config_error(
      option,
      "expected a string, number or boolean, got " +
          (is_secret_property(option) ? std::string("(value not shown)") : describe(v)));
}

/// A keyword as Spark reads it: trimmed, without regard to case.
std::string word_of(std::string_view text) {
  auto first = text.find_first_not_of(" \t");
  auto last = text.find_last_not_of(" \t");
  std::string out(first == std::string_view::npos ? std::string_view{}
                                                  : text.substr(first, last - first + 1));
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// One of a few keywords (as Spark reads them: trimmed, in any case), as its
/// enum value; else a config_error naming `option` and the words, in order.
template <class E>
E keyword_of(const json::value& v, const std::string& option,
             std::initializer_list<std::pair<const char*, E>> words) {
  std::string expected;
  std::size_t i = 0;
  for (auto& [word, value] : words)
    expected += (i++ == 0 ? "" : i == words.size() ? " or " : ", ") + std::string(word);
  auto text = as_string(v, option, expected);
  auto word = word_of(text);
  for (auto& [w, value] : words)
    if (word == w) return value;
  throw config_error(option, "expected " + expected + ", got `" + text + "`");
}

bool as_bool(const json::value& v, const std::string& option) {
  if (v.is_bool()) return v.get_bool();
  if (v.is_string()) {
    auto word = word_of(v.get_string());
    if (word == "true") return true;
    if (word == "false") return false;
  }
  throw config_error(option, "expected true or false, got " + describe(v));
}

/// A whole number for a count option, which validate() then requires to be
/// positive. Here only what no count can be: not a whole number, or outside
/// what `T` holds (a negative size). Both get validate()'s message.
template <class T = std::int64_t>
T as_count(const json::value& v, const std::string& option) {
  std::optional<std::int64_t> n;
  if (v.is_int64())
    n = v.get_int64();
  else if (v.is_uint64() && v.get_uint64() < (1ull << 62))
    n = static_cast<std::int64_t>(v.get_uint64());
  else if (v.is_double() && std::trunc(v.get_double()) == v.get_double() &&
           std::abs(v.get_double()) < 1e15)
    n = static_cast<std::int64_t>(v.get_double()); // 2.25e3 is 2250
  else if (v.is_string()) {
    try {
      std::size_t used = 0;
      auto parsed = std::stoll(std::string(v.get_string()), &used);
      if (used == v.get_string().size()) n = parsed;
    } catch (...) {
    }
  }
  if (!n || std::cmp_less(*n, std::numeric_limits<T>::min()) ||
      std::cmp_greater(*n, std::numeric_limits<T>::max()))
    throw config_error(option, "expected a positive integer, got " + describe(v));
  return static_cast<T>(*n);
}

const json::object& as_object(const json::value& v, const std::string& option) {
  if (!v.is_object())
    throw config_error(option, "expected a JSON object, got " + describe(v));
  return v.get_object();
}

/// Spark options Sluice does not implement (yet), with what to do meanwhile.
/// Named as such, a Spark user is not told their option does not exist.
const char* not_supported_yet(const std::string& option) {
  static const std::map<std::string, const char*, std::less<>> hints = {
      {"source.groupIdPrefix", "set `kafka.group.id`"},
      {"source.kafkaConsumer.pollTimeoutMs", "remove it (no equivalent in Sluice)"},
      {"source.fetchOffset.numRetries",
       "remove it; `runtime.brokerTimeout` bounds offset lookups"},
      {"source.fetchOffset.retryIntervalMs",
       "remove it; `runtime.brokerTimeout` bounds offset lookups"},
      {"trigger.continuous", "leave `trigger` out: runs are continuous by default"},
  };
  auto it = hints.find(option);
  return it == hints.end() ? nullptr : it->second;
}

void reject_unknown(const json::object& obj, const std::string& section,
                    std::initializer_list<std::string_view> known, bool allow_kafka) {
  for (auto& [k, v] : obj) {
    std::string_view key = k;
    if (allow_kafka && key.starts_with("kafka.")) continue;
    auto option = section.empty() ? std::string(key) : section + "." + std::string(key);
    if (auto* hint = not_supported_yet(option))
      throw config_error(option, std::string("not supported yet; ") + hint);
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (auto n : known)
        list += (list.empty() ? "" : ", ") + std::string(n);
      if (allow_kafka) list += ", kafka.*";
      throw config_error(option, "unknown option; expected one of " + list);
    }
  }
}

/// Maps a JAAS line pasted from a Java client to librdkafka's SASL properties.
void translate_jaas(std::map<std::string, std::string>& kafka,
                    const std::string& option) {
  auto it = kafka.find("sasl.jaas.config");
  if (it == kafka.end()) return;
  std::string jaas = it->second;
  kafka.erase(it);
  for (const char* own : {"sasl.username", "sasl.password"})
    if (kafka.contains(own))
      throw config_error(option, std::string("given together with kafka.") + own +
                                     ": set the credentials one way, not both");
  bool plain = jaas.find("PlainLoginModule") != std::string::npos;
  bool scram = jaas.find("ScramLoginModule") != std::string::npos;
  if (!plain && !scram)
    throw config_error(option,
                       "only PlainLoginModule and ScramLoginModule have librdkafka "
                       "equivalents; use kafka.sasl.oauthbearer.* or "
                       "kafka.sasl.kerberos.* for other mechanisms");
  auto field = [&](const char* name) {
    std::regex re(std::string(name) + R"(\s*=\s*\"([^\"]*)\")");
    std::smatch m;
    if (!std::regex_search(jaas, m, re))
      throw config_error(option, std::string("expected ") + name +
                                     "=\"...\" in the JAAS line (value not shown)");
    return m[1].str();
  };
  kafka["sasl.username"] = field("username");
  kafka["sasl.password"] = field("password");
  if (!kafka.contains("sasl.mechanism") && !kafka.contains("sasl.mechanisms"))
    kafka["sasl.mechanisms"] = plain ? "PLAIN" : "SCRAM-SHA-512";
}

/// The `kafka.*` options of a section as librdkafka properties, prefix
/// stripped, values as text; a JAAS line becomes librdkafka's SASL properties.
std::map<std::string, std::string>
kafka_properties(const json::object& obj, const std::string& section, bool consumer) {
  std::map<std::string, std::string> out;
  for (auto& [k, v] : obj) {
    std::string_view key = k;
    if (!key.starts_with("kafka.")) continue;
    auto name = std::string(key.substr(6));
    auto option = section + "." + std::string(key);
    if (name == "bootstrap.servers" || (consumer && name == "group.id"))
      continue; // read as options of their own
    out[name] = as_property(v, option);
  }
  // Which properties Sluice refuses is validate()'s to say.
  translate_jaas(out, section + ".kafka.sasl.jaas.config");
  return out;
}

field_type parse_field_type(const json::value& v, const std::string& option) {
  static const std::map<std::string, field_type, std::less<>> types = {
      {"string", field_type::string_t},   {"int", field_type::int_t},
      {"long", field_type::long_t},       {"double", field_type::double_t},
      {"boolean", field_type::boolean_t}, {"timestamp", field_type::timestamp_t},
  };
  const std::string expected = "one of string, int, long, double, boolean, timestamp";
  auto name = as_string(v, option, expected);
  auto it = types.find(name);
  if (it == types.end())
    throw config_error(option, "expected " + expected + ", got `" + name + "`");
  return it->second;
}

/// A JSON object given as an object or as a JSON string (Spark takes both).
json::object as_json_object(const json::value& v, const std::string& option,
                            const std::string& expected) {
  if (v.is_object()) return v.get_object();
  if (v.is_string()) {
    std::error_code ec;
    auto parsed = json::parse(v.get_string(), ec);
    if (!ec && parsed.is_object()) {
      if (auto dup = find_duplicate_key(v.get_string(), option, {}))
        throw config_error(dup->first, given_twice);
      return parsed.get_object();
    }
  }
  throw config_error(option, "expected " + expected + ", got " + describe(v));
}

std::int64_t as_integer(const json::value& v, const std::string& option,
                        const std::string& expected) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() < (1ull << 63))
    return static_cast<std::int64_t>(v.get_uint64());
  if (v.is_string()) {
    std::string text(v.get_string());
    std::size_t used = 0;
    try {
      auto n = std::stoll(text, &used);
      if (used == text.size() && !text.empty()) return n;
    } catch (...) {
    }
  }
  throw config_error(option, "expected " + expected + ", got " + describe(v));
}

/// A partition number as a JSON key ("0"); validate() refuses negative ones.
std::int32_t as_partition(std::string_view text, const std::string& option) {
  std::int32_t n = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size())
    throw config_error(option,
                       "expected a partition number, got `" + std::string(text) + "`");
  return n;
}

/// Spark's per-partition JSON: {"topic": {"0": value, ...}, ...}. Which
/// topics, partitions and values make sense is validate()'s to say.
partition_offsets parse_partition_values(const json::value& v, const std::string& option,
                                         bool timestamps, bool allow_earliest) {
  const std::string expected =
      timestamps ? R"(JSON like {"orders": {"0": 1700000000000}} (ms since the epoch))"
      : allow_earliest
          ? R"(JSON like {"orders": {"0": 42, "1": -2}} (-2 earliest, -1 latest))"
          : R"(JSON like {"orders": {"0": 42, "1": -1}} (-1 latest))";
  partition_offsets out;
  for (auto& [topic, parts] : as_json_object(v, option, expected)) {
    std::string name(topic);
    if (!parts.is_object())
      throw config_error(option, "expected " + expected + ", got " + describe(parts) +
                                     " for `" + name + "`");
    for (auto& [partition, value] : parts.get_object()) {
      kafka::topic_partition tp{name, as_partition(partition, option)};
      // "1" and "01" are one partition: which value was meant?
      if (out.contains(tp))
        throw config_error(option, "`" + tp.str() + "` is given twice");
      out[tp] = as_integer(value, option, expected);
    }
  }
  if (out.empty())
    throw config_error(option, "expected " + expected + ", got no partition");
  return out;
}

/// Reads subscribe, subscribePattern or assign; validate() checks the topics,
/// the pattern and the partitions.
void parse_subscription(const json::object& obj, source_options& src) {
  auto given = std::count_if(obj.begin(), obj.end(), [](auto& kv) {
    return kv.key() == "subscribe" || kv.key() == "subscribePattern" ||
           kv.key() == "assign";
  });
  if (given > 1)
    throw config_error("source", "choose one of subscribe, subscribePattern and assign");
  if (auto* v = obj.if_contains("subscribe")) {
    src.subscription = subscription_kind::subscribe;
    auto list = as_string(*v, "source.subscribe", "a comma-separated topic list");
    if (list.empty())
      throw config_error("source.subscribe", "expected a comma-separated topic list, "
                                             "like \"orders\" or \"orders,returns\"");
    // Every name between commas, empty ones too ("a,,b", "a,"): validate()
    // refuses those.
    for (std::size_t from = 0;;) {
      auto comma = std::min(list.find(',', from), list.size());
      auto t = list.substr(from, comma - from);
      t.erase(0, t.find_first_not_of(" \t"));
      t.erase(t.find_last_not_of(" \t") + 1);
      src.subscribe.push_back(t);
      if (comma == list.size()) break;
      from = comma + 1;
    }
  }
  if (auto* v = obj.if_contains("subscribePattern")) {
    src.subscription = subscription_kind::pattern;
    src.pattern = as_string(*v, "source.subscribePattern", "a regular expression");
  }
  if (auto* v = obj.if_contains("assign")) {
    src.subscription = subscription_kind::assign;
    const std::string expected = R"(JSON like {"orders": [0, 1]})";
    for (auto& [topic, parts] : as_json_object(*v, "source.assign", expected)) {
      std::string name(topic);
      if (!parts.is_array() || parts.get_array().empty())
        throw config_error("source.assign", "expected " + expected + ", got " +
                                                describe(parts) + " for `" + name + "`");
      for (auto& p : parts.get_array()) {
        auto n = as_integer(p, "source.assign", "partition numbers");
        if (n < std::numeric_limits<std::int32_t>::min() ||
            n > std::numeric_limits<std::int32_t>::max())
          throw config_error("source.assign", "expected partition numbers, got " +
                                                  describe(p) + " for `" + name + "`");
        kafka::topic_partition tp{name, static_cast<std::int32_t>(n)};
        if (std::find(src.assign.begin(), src.assign.end(), tp) == src.assign.end())
          src.assign.push_back(tp);
      }
    }
    if (src.assign.empty())
      throw config_error("source.assign", "expected " + expected + ", got no partition");
  }
}

void parse_source(const json::object& obj, pipeline_config& cfg) {
  reject_unknown(obj, "source",
                 {"subscribe", "subscribePattern", "assign", "startingOffsets",
                  "startingOffsetsByTimestamp", "startingTimestamp",
                  "startingOffsetsByTimestampStrategy", "endingOffsets",
                  "endingOffsetsByTimestamp", "endingTimestamp", "failOnDataLoss",
                  "maxOffsetsPerTrigger", "minOffsetsPerTrigger", "maxTriggerDelay",
                  "minPartitions", "includeHeaders"},
                 true);
  auto& src = cfg.source;
  if (auto* v = obj.if_contains("kafka.bootstrap.servers"))
    src.bootstrap_servers = as_string(*v, "source.kafka.bootstrap.servers");
  parse_subscription(obj, src);

  if (auto* v = obj.if_contains("startingOffsets")) {
    const std::string expected =
        R"(earliest, latest or JSON like {"orders": {"0": 42, "1": -2}})";
    // Spark compares these words without regard to case.
    auto word = v->is_string() ? word_of(v->get_string()) : std::string();
    if (word == "earliest")
      src.starting = starting_offsets::earliest;
    else if (word == "latest")
      src.starting = starting_offsets::latest;
    else if (v->is_object() || (v->is_string() && v->get_string().starts_with("{"))) {
      src.starting = starting_offsets::specific;
      src.starting_specific =
          parse_partition_values(*v, "source.startingOffsets", false, true);
    } else
      throw config_error(
          "source.startingOffsets",
          "expected " + expected + ", got " +
              (v->is_string() ? "`" + std::string(v->get_string()) + "`" : describe(*v)));
  }
  // The per-partition and all-partition timestamp forms, start and end alike.
  auto by_partition = [&](const char* name, partition_offsets& out) {
    if (auto* v = obj.if_contains(name)) {
      auto option = std::string("source.") + name;
      out = parse_partition_values(*v, option, true, false);
    }
  };
  auto timestamp = [&](const char* name, std::optional<std::int64_t>& out) {
    if (auto* v = obj.if_contains(name)) {
      auto option = std::string("source.") + name;
      out = as_integer(*v, option, "a timestamp in ms since the epoch");
    }
  };
  by_partition("startingOffsetsByTimestamp", src.starting_by_timestamp);
  timestamp("startingTimestamp", src.starting_timestamp);
  if (auto* v = obj.if_contains("startingOffsetsByTimestampStrategy"))
    src.starting_strategy = keyword_of<timestamp_strategy>(
        *v, "source.startingOffsetsByTimestampStrategy",
        {{"error", timestamp_strategy::error}, {"latest", timestamp_strategy::latest}});
  if (auto* v = obj.if_contains("endingOffsets")) {
    auto word = v->is_string() ? word_of(v->get_string()) : std::string();
    if (word == "latest")
      src.ending_latest = true;
    else if (word == "earliest")
      throw config_error("source.endingOffsets",
                         "earliest is not an end (Spark refuses it too): use latest or "
                         "per-partition offsets");
    else {
      src.ending_specific =
          parse_partition_values(*v, "source.endingOffsets", false, false);
    }
  }
  by_partition("endingOffsetsByTimestamp", src.ending_by_timestamp);
  timestamp("endingTimestamp", src.ending_timestamp);
  if (auto* v = obj.if_contains("failOnDataLoss"))
    src.fail_on_data_loss = as_bool(*v, "source.failOnDataLoss");
  if (auto* v = obj.if_contains("maxOffsetsPerTrigger"))
    src.max_offsets_per_trigger = as_count(*v, "source.maxOffsetsPerTrigger");
  if (auto* v = obj.if_contains("minOffsetsPerTrigger"))
    src.min_offsets_per_trigger = as_count(*v, "source.minOffsetsPerTrigger");
  if (auto* v = obj.if_contains("maxTriggerDelay"))
    src.max_trigger_delay =
        as_duration(*v, "source.maxTriggerDelay", "a duration like \"15 minutes\"");
  if (auto* v = obj.if_contains("minPartitions"))
    src.min_partitions = as_count(*v, "source.minPartitions");
  // An end makes the run a batch query, and Spark's batch queries start at
  // earliest unless told otherwise.
  if (has_ending(src) && !obj.contains("startingOffsets"))
    src.starting = starting_offsets::earliest;

  if (auto* v = obj.if_contains("kafka.group.id")) {
    src.group_id = as_string(*v, "source.kafka.group.id");
    // Empty means "the default" to fill_defaults(); written out, it is a slip.
    if (src.group_id.empty())
      throw config_error("source.kafka.group.id",
                         "expected a group name, got an empty string (leave the option "
                         "out for the default sluice-<name>)");
  }
  if (auto* v = obj.if_contains("includeHeaders"))
    src.include_headers = as_bool(*v, "source.includeHeaders");
  src.kafka = kafka_properties(obj, "source", true);
}

void parse_parse(const json::object& obj, pipeline_config& cfg) {
  reject_unknown(obj, "parse", {"format", "schema", "required", "tombstones"}, false);
  if (auto* v = obj.if_contains("tombstones")) {
    cfg.parse.tombstones =
        keyword_of<tombstone_policy>(*v, "parse.tombstones",
                                     {{"dlq", tombstone_policy::dlq},
                                      {"pass", tombstone_policy::pass},
                                      {"drop", tombstone_policy::drop}});
  }
  if (auto* v = obj.if_contains("format")) {
    auto f = as_string(*v, "parse.format", "json");
    if (f != "json")
      throw config_error("parse.format",
                         "expected json (the only format so far), got `" + f + "`");
  }
  if (auto* v = obj.if_contains("schema")) {
    for (auto& [name, type] : as_object(*v, "parse.schema"))
      cfg.parse.fields.push_back(
          {std::string(name),
           parse_field_type(type, "parse.schema." + std::string(name))});
  }
  if (auto* v = obj.if_contains("required")) {
    if (!v->is_array())
      throw config_error("parse.required",
                         "expected a list of field names, got " + describe(*v));
    for (auto& f : v->get_array())
      cfg.parse.required.push_back(
          as_string(f, "parse.required", "a list of field names"));
  }
}

void parse_route(const json::object& obj, pipeline_config& cfg) {
  reject_unknown(obj, "route",
                 {"topic", "field", "topics", "default", "allowSourceTopic"}, false);
  auto& r = cfg.route;
  if (auto* v = obj.if_contains("topic"))
    r.topic = as_named(*v, "route.topic", "a topic name");
  if (auto* v = obj.if_contains("field"))
    r.field = as_named(*v, "route.field", "a field name");
  if (auto* v = obj.if_contains("topics"))
    for (auto& [value, topic] : as_object(*v, "route.topics"))
      r.topics[std::string(value)] =
          as_string(topic, "route.topics." + std::string(value));
  if (auto* v = obj.if_contains("default"))
    r.default_topic = as_named(*v, "route.default", "a topic name");
  if (auto* v = obj.if_contains("allowSourceTopic"))
    r.allow_source_topic = as_bool(*v, "route.allowSourceTopic");
}

void parse_sink(const json::object& obj, pipeline_config& cfg) {
  reject_unknown(obj, "sink", {}, true);
  if (auto* v = obj.if_contains("kafka.bootstrap.servers"))
    cfg.sink.bootstrap_servers = as_string(*v, "sink.kafka.bootstrap.servers");
  cfg.sink.kafka = kafka_properties(obj, "sink", false);
}

void parse_trigger(const json::object& obj, pipeline_config& cfg) {
  reject_unknown(obj, "trigger", {"processingTime", "availableNow", "once"}, false);
  auto& t = cfg.trigger;
  if (auto* v = obj.if_contains("processingTime")) {
    t.mode = trigger_options::kind::processing_time;
    t.interval =
        as_duration(*v, "trigger.processingTime", "a duration like \"1 second\"");
  }
  if (auto* v = obj.if_contains("availableNow");
      v && as_bool(*v, "trigger.availableNow")) {
    if (t.mode == trigger_options::kind::processing_time)
      throw config_error("trigger", "choose one of processingTime and availableNow");
    t.mode = trigger_options::kind::available_now;
  }
  if (auto* v = obj.if_contains("once"); v && as_bool(*v, "trigger.once")) {
    if (t.mode != trigger_options::kind::continuous)
      throw config_error("trigger",
                         "choose one of processingTime, availableNow and once");
    t.mode = trigger_options::kind::once;
    // One epoch: it ends, and commits, when the run does.
    t.interval = std::chrono::hours(24 * 365);
  }
}

void parse_dedup(const json::object& obj, pipeline_config& cfg) {
  reject_unknown(obj, "dedup",
                 {"key", "within", "allowedLateness", "lateRecords", "timeField",
                  "stateDir", "changelog"},
                 false);
  dedup_options d;
  if (auto* key = obj.if_contains("key")) { // without: validate() says it is required
    if (key->is_string()) {
      d.key.push_back(std::string(key->get_string()));
    } else if (key->is_array() && !key->get_array().empty()) {
      for (auto& f : key->get_array())
        d.key.push_back(as_string(f, "dedup.key", "a list of field names"));
    } else {
      throw config_error("dedup.key", "expected a field name or a non-empty list of "
                                      "field names, got " +
                                          describe(*key));
    }
  }
  // Left out, it would reach validate() as 0, "not a positive duration": say
  // what is missing instead.
  auto* within = obj.if_contains("within");
  if (!within)
    throw config_error("dedup.within",
                       "required: how long a key is remembered, e.g. \"1 hour\"");
  d.within = as_duration(*within, "dedup.within", "a duration");
  if (auto* v = obj.if_contains("allowedLateness"); v && !v->is_null())
    d.allowed_lateness = as_duration(*v, "dedup.allowedLateness", "a duration");
  if (auto* v = obj.if_contains("lateRecords"); v && !v->is_null())
    d.late_records = keyword_of<late_policy>(*v, "dedup.lateRecords",
                                             {{"pass", late_policy::pass},
                                              {"drop", late_policy::drop},
                                              {"dlq", late_policy::dlq}});
  if (auto* v = obj.if_contains("timeField"); v && !v->is_null()) {
    d.time_field = as_string(*v, "dedup.timeField", "a field name");
    if (d.time_field.empty()) // empty would mean the Kafka timestamp
      throw config_error("dedup.timeField",
                         "expected a field of parse.schema typed timestamp or long "
                         "(epoch milliseconds), got ``");
  }
  if (auto* v = obj.if_contains("stateDir"))
    d.state_dir = as_named(*v, "dedup.stateDir", "a directory", "a directory");
  // The default changelog is named here too (fill_defaults() would), so
  // that an invalid default gets the file's hint.
  d.changelog = cfg.name + "-dedup-changelog";
  // (A blank name is validate()'s to report, as the name's own problem.)
  if (!obj.contains("changelog") && !config::is_blank(cfg.name)) try {
      config::checked_topic(*d.changelog, "dedup.changelog");
    } catch (const config_error&) {
      throw config_error("dedup.changelog",
                         "the default `" + *d.changelog +
                             "` (from `name`) is not a valid topic name: name the "
                             "changelog topic, or set it to false");
    }
  if (auto* v = obj.if_contains("changelog")) {
    if (v->is_bool() && !v->get_bool())
      d.changelog = std::string();
    else if (!v->is_bool())
      d.changelog =
          as_named(*v, "dedup.changelog", "a topic name", "a topic name or false");
  }
  cfg.dedup = std::move(d);
}

void parse_runtime(const json::object& obj, pipeline_config& cfg) {
  reject_unknown(obj, "runtime",
                 {"maxInFlightPerPartition", "maxInFlightBytes", "maxBatchRecords",
                  "restartBudget", "restartWindow", "restartBackoff", "brokerTimeout",
                  "memoryBudget"},
                 false);
  auto& r = cfg.runtime;
  if (auto* v = obj.if_contains("maxInFlightPerPartition"))
    r.max_in_flight_per_partition =
        as_count<std::size_t>(*v, "runtime.maxInFlightPerPartition");
  if (auto* v = obj.if_contains("maxInFlightBytes"))
    r.max_in_flight_bytes = as_count<std::size_t>(*v, "runtime.maxInFlightBytes");
  if (auto* v = obj.if_contains("maxBatchRecords"))
    r.max_batch_records = as_count<std::size_t>(*v, "runtime.maxBatchRecords");
  if (auto* v = obj.if_contains("restartBudget"))
    r.restart_budget = as_count<int>(*v, "runtime.restartBudget");
  if (auto* v = obj.if_contains("restartBackoff"))
    r.restart_backoff = as_duration(*v, "runtime.restartBackoff");
  if (auto* v = obj.if_contains("restartWindow"))
    r.restart_window = as_duration(*v, "runtime.restartWindow");
  if (auto* v = obj.if_contains("brokerTimeout"))
    r.broker_timeout = as_duration(*v, "runtime.brokerTimeout");
  if (auto* v = obj.if_contains("memoryBudget"))
    r.memory_budget = as_count<std::size_t>(*v, "runtime.memoryBudget");
}

/// Options whose value is an object keyed by the user's names: `--set`
/// reaches into them (`parse.schema.amount=double`).
bool is_map_option(const std::string& path) {
  return path == "parse.schema" || path == "route.topics";
}

/// Applies `section.option=value` (or `option=value` at the top, or
/// `section.map.key=value` inside parse.schema and route.topics); the value is
/// JSON when it parses as JSON, otherwise a string. `replaced` holds the
/// sections a `--set` replaces rather than amends (the trigger), so that the
/// file's trigger goes but two `--set trigger.*` both stay.
void apply_override(json::object& root, const std::string& text,
                    std::set<std::string>& replaced) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    // Only the part that names the option: the rest may be a secret.
    auto name = text.substr(0, text.find_first_of(":= \t"));
    throw config_error("--set", "expected section.option=value, got `" + name +
                                    (name.size() < text.size() ? "...`" : "`"));
  }
  auto path = text.substr(0, eq);
  auto raw = text.substr(eq + 1);
  if (path.front() == '.' || path.back() == '.' || path.find("..") != std::string::npos)
    throw config_error("--set " + path, "an empty name between dots");
  auto dot = path.find('.');
  auto section = path.substr(0, dot);
  auto rest = dot == std::string::npos ? std::string() : path.substr(dot + 1);
  json::value value;
  std::error_code ec;
  value = json::parse(raw, ec);
  if (!ec)
    if (auto dup = find_duplicate_key(raw, path, {}))
      throw config_error(dup->first, given_twice);
  // Client properties, names and topics are text: 1e5 or 007 stay as typed.
  bool text_valued = rest.starts_with("kafka.") || section == "route" ||
                     section == "name" || section == "guarantee" || path == "dlq.topic" ||
                     path == "source.subscribe";
  if (ec || (text_valued && value.is_number())) value = json::string(raw);
  if (dot == std::string::npos) {
    if (section == "trigger") replaced.insert(section);
    // `--set dedup=null` takes out a section the file has.
    if (value.is_null() &&
        (section == "dedup" || section == "dlq" || section == "runtime" ||
         section == "trigger" || section == "parse")) {
      root.erase(section);
      return;
    }
    if (value.is_null() &&
        (section == "source" || section == "route" || section == "sink"))
      throw config_error("--set " + path,
                         "`" + section +
                             "` is a required section and cannot be removed; "
                             "set its options instead (--set " +
                             section + ".OPTION=VALUE)");
    root[path] = value;
    return;
  }
  auto& slot = root[section];
  if (slot.is_null() && section != "name" && section != "guarantee")
    slot = json::object();
  if (!slot.is_object())
    throw config_error("--set " + path,
                       "`" + section + "` is not a section, so it has no `" + rest + "`");
  auto* target = &slot.get_object();
  // A trigger given on the command line replaces the file's trigger.
  if (section == "trigger" && replaced.insert(section).second) target->clear();
  // kafka.* names contain dots of their own; so may the keys of a map option.
  if (auto sub = rest.find('.'); sub != std::string::npos &&
                                 !rest.starts_with("kafka.") &&
                                 !not_supported_yet(path)) {
    auto name = rest.substr(0, sub);
    if (!is_map_option(section + "." + name))
      throw config_error("--set " + path,
                         "`" + section + "." + name +
                             "` has no options of its own; --set reaches "
                             "section.option, parse.schema.FIELD and route.topics.VALUE");
    auto& map = (*target)[name];
    if (map.is_null()) map = json::object();
    if (!map.is_object())
      throw config_error(section + "." + name,
                         "expected a JSON object, got " + describe(map));
    target = &map.get_object();
    rest = rest.substr(sub + 1);
  }
  (*target)[rest] = value;
}

} // namespace

pipeline_config parse_pipeline_config(std::string_view json_text,
                                      const std::vector<std::string>& overrides) {
  json::parse_options opts;
  opts.allow_comments = true;
  opts.allow_trailing_commas = true;
  std::error_code ec;
  json::stream_parser parser({}, opts);
  // A byte-order mark some editors write is not JSON, and not an error either.
  if (json_text.starts_with("\xEF\xBB\xBF")) json_text.remove_prefix(3);
  // On an error, the count is where parsing stopped: the offending character.
  auto consumed = parser.write(json_text.data(), json_text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec == json::error::incomplete &&
      json_text.find_first_not_of(" \t\r\n") == std::string_view::npos)
    throw config_error("pipeline", "empty: expected a JSON object with sections source, "
                                   "parse, route, sink, dlq, trigger");
  if (ec == json::error::incomplete)
    throw config_error("pipeline", "not valid JSON: it ends too early (a `{`, `[`, "
                                   "string or comment is still open)");
  if (ec)
    throw config_error("pipeline", "not valid JSON (" + ec.message() + ") " +
                                       position_in(json_text, consumed));
  auto root_value = parser.release();
  if (!root_value.is_object())
    throw config_error("pipeline", "expected a JSON object with sections source, parse, "
                                   "route, sink, dlq, trigger");
  if (auto dup = find_duplicate_key(json_text, "", opts))
    throw config_error(dup->first, std::string(given_twice) + "; the second is " +
                                       position_in(json_text, dup->second));
  auto& root = root_value.get_object();
  std::set<std::string> replaced;
  for (auto& o : overrides)
    apply_override(root, o, replaced);
  reject_unknown(root, "",
                 {"name", "guarantee", "source", "parse", "route", "sink", "dlq", "dedup",
                  "trigger", "runtime"},
                 false);

  pipeline_config cfg;
  if (auto* v = root.if_contains("name")) cfg.name = as_string(*v, "name");
  if (auto* v = root.if_contains("guarantee"); v && !v->is_null())
    cfg.guarantee = keyword_of<delivery_guarantee>(
        *v, "guarantee",
        {{"at-least-once", delivery_guarantee::at_least_once},
         {"exactly-once", delivery_guarantee::exactly_once}});
  static const json::object empty;
  auto section = [&](const char* name) -> const json::object& {
    auto* v = root.if_contains(name);
    return v ? as_object(*v, name) : empty;
  };
  if (!root.contains("source"))
    throw config_error("source", "required section: where to read from");
  parse_source(section("source"), cfg);
  parse_parse(section("parse"), cfg);
  if (!root.contains("route"))
    throw config_error("route",
                       "required section: {\"topic\": T} or {\"field\": F, ...}");
  parse_route(section("route"), cfg);
  if (!root.contains("sink"))
    throw config_error("sink", "required section: where to write to");
  parse_sink(section("sink"), cfg);
  if (root.contains("dlq")) {
    auto& d = section("dlq");
    reject_unknown(d, "dlq", {"topic"}, false);
    dlq_options dlq;
    if (!d.contains("topic"))
      throw config_error("dlq.topic", "required: the dead-letter topic name");
    dlq.topic = as_string(d.at("topic"), "dlq.topic");
    cfg.dlq = dlq;
  }
  if (root.contains("dedup")) parse_dedup(section("dedup"), cfg);
  parse_trigger(section("trigger"), cfg);
  parse_runtime(section("runtime"), cfg);
  // What the values mean together, and whether they make sense, is the
  // same question for a config built in code: one answer for both.
  fill_defaults(cfg);
  validate(cfg);
  return cfg;
}

pipeline_config load_pipeline_config(const std::string& path,
                                     const std::vector<std::string>& overrides) {
  // Read with the C library, so that the reason is the OS's own.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       std::fclose);
  auto unreadable = [&](int error) {
    return config_error("pipeline",
                        "cannot read `" + path + "`: " + std::strerror(error));
  };
  if (!file) throw unreadable(errno);
  // A pipeline is a few kilobytes; a path like /dev/zero must not fill memory.
  constexpr std::size_t limit = 16u << 20;
  std::string text;
  char buf[65536];
  for (;;) {
    auto n = std::fread(buf, 1, sizeof buf, file.get());
    text.append(buf, n);
    if (n < sizeof buf) break;
    if (text.size() > limit)
      throw config_error("pipeline",
                         "`" + path + "` is larger than 16 MiB: not a pipeline");
  }
  if (std::ferror(file.get())) throw unreadable(errno);
  try {
    return parse_pipeline_config(text, overrides);
  } catch (const config_error& e) {
    // Syntax errors point into the file: say which.
    if (e.option() != "pipeline") throw;
    throw config_error("pipeline", "`" + path + "`: " + e.reason());
  }
}

} // namespace sluice
