#include "kafka/consumer.hpp"

#include <sluice/config.hpp>
#include <sluice/errors.hpp>

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

using namespace sluice;

namespace {

const char* minimal = R"({
  // comments are allowed
  "source": {"kafka.bootstrap.servers": "b:9092", "subscribe": "orders, returns"},
  "route": {"topic": "out"},
  "sink": {"kafka.bootstrap.servers": "s:9092"},
})";

/// The message of the config_error that parsing `text` throws.
std::string error_of(const std::string& text,
                     const std::vector<std::string>& overrides = {}) {
  try {
    parse_pipeline_config(text, overrides);
  } catch (const config_error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string with(const std::string& section_json) {
  return R"({"source": {"kafka.bootstrap.servers": "b:9092", "subscribe": "orders"},
             "route": {"topic": "out"}, "sink": {"kafka.bootstrap.servers": "s:9092"}, )" +
         section_json + "}";
}

} // namespace

BOOST_AUTO_TEST_SUITE(options)

BOOST_AUTO_TEST_CASE(minimal_pipeline_gets_spark_defaults) {
  auto cfg = parse_pipeline_config(minimal);
  BOOST_TEST(cfg.source.bootstrap_servers == "b:9092");
  BOOST_TEST(cfg.source.subscribe == (std::vector<std::string>{"orders", "returns"}));
  BOOST_TEST((cfg.source.starting == starting_offsets::latest));
  BOOST_TEST(cfg.source.group_id == "sluice-sluice");
  BOOST_TEST(!cfg.source.include_headers);
  BOOST_TEST(!cfg.dlq.has_value());
  BOOST_TEST((cfg.trigger.mode == trigger_options::kind::continuous));
  BOOST_TEST(cfg.trigger.interval.count() == 1000);
  BOOST_TEST(cfg.runtime.max_in_flight_per_partition == 10000u);
}

BOOST_AUTO_TEST_CASE(kafka_properties_pass_through_without_prefix) {
  auto cfg = parse_pipeline_config(R"({
    "source": {"kafka.bootstrap.servers": "b:9092", "subscribe": "t", "kafka.group.id": "g",
               "kafka.session.timeout.ms": 6000, "kafka.fetch.wait.max.ms": "10"},
    "route": {"topic": "out"},
    "sink": {"kafka.bootstrap.servers": "s:9092", "kafka.acks": "all", "kafka.linger.ms": 5}})");
  BOOST_TEST(cfg.source.group_id == "g");
  BOOST_TEST(cfg.source.kafka.at("session.timeout.ms") == "6000");
  BOOST_TEST(cfg.source.kafka.at("fetch.wait.max.ms") == "10");
  BOOST_TEST(!cfg.source.kafka.contains("group.id"));
  BOOST_TEST(!cfg.source.kafka.contains("bootstrap.servers"));
  BOOST_TEST(cfg.sink.kafka.at("acks") == "all");
  BOOST_TEST(cfg.sink.kafka.at("linger.ms") == "5");
}

BOOST_AUTO_TEST_CASE(routing_by_field_reads_topics_and_default) {
  auto cfg = parse_pipeline_config(R"({
    "source": {"kafka.bootstrap.servers": "b", "subscribe": "t"},
    "route": {"field": "priority", "topics": {"high": "h", "low": "l"}, "default": "d"},
    "sink": {"kafka.bootstrap.servers": "s"}})");
  BOOST_TEST(cfg.route.field == "priority");
  BOOST_TEST(cfg.route.topics.at("high") == "h");
  BOOST_TEST(cfg.route.default_topic == "d");
}

BOOST_AUTO_TEST_CASE(schema_types_and_required_fields_are_read) {
  auto cfg = parse_pipeline_config(with(
      R"("parse": {"format": "json", "schema": {"id": "string", "n": "int", "t": "timestamp"},
                 "required": ["id"]})"));
  BOOST_TEST(cfg.parse.fields.size() == 3u);
  BOOST_TEST(cfg.parse.fields[1].name == "n");
  BOOST_TEST((cfg.parse.fields[1].type == field_type::int_t));
  BOOST_TEST((cfg.parse.fields[2].type == field_type::timestamp_t));
  BOOST_TEST(cfg.parse.required == std::vector<std::string>{"id"});
}

BOOST_AUTO_TEST_CASE(triggers_parse_durations_and_available_now) {
  auto pt = parse_pipeline_config(with(R"("trigger": {"processingTime": "2 seconds"})"));
  BOOST_TEST((pt.trigger.mode == trigger_options::kind::processing_time));
  BOOST_TEST(pt.trigger.interval.count() == 2000);
  auto an = parse_pipeline_config(with(R"("trigger": {"availableNow": true})"));
  BOOST_TEST((an.trigger.mode == trigger_options::kind::available_now));
  BOOST_TEST(parse_duration("500 milliseconds", "x").count() == 500);
  BOOST_TEST(parse_duration("1 minute", "x").count() == 60000);
  BOOST_TEST(parse_duration("250ms", "x").count() == 250);
}

BOOST_AUTO_TEST_CASE(overrides_replace_and_add_options) {
  auto cfg = parse_pipeline_config(
      minimal, {"source.startingOffsets=earliest", "source.kafka.group.id=g2",
                "trigger.availableNow=true", "dlq.topic=dead", "name=orders-job"});
  BOOST_TEST((cfg.source.starting == starting_offsets::earliest));
  BOOST_TEST(cfg.source.group_id == "g2");
  BOOST_TEST((cfg.trigger.mode == trigger_options::kind::available_now));
  BOOST_TEST(cfg.dlq->topic == "dead");
  BOOST_TEST(cfg.name == "orders-job");
}

BOOST_AUTO_TEST_CASE(a_trigger_override_replaces_the_files_trigger) {
  auto cfg = parse_pipeline_config(with(R"("trigger": {"processingTime": "5 seconds"})"),
                                   {"trigger.availableNow=true"});
  BOOST_TEST((cfg.trigger.mode == trigger_options::kind::available_now));
}

BOOST_AUTO_TEST_CASE(errors_name_the_option_and_the_expected_form) {
  auto e = error_of(minimal, {"source.startingOffsets=earlist"});
  BOOST_TEST(e.find("option `source.startingOffsets`") != std::string::npos, e);
  BOOST_TEST(e.find("earliest, latest or JSON") != std::string::npos, e);
  BOOST_TEST(e.find("earlist") != std::string::npos, e);

  e = error_of(R"({"source": {"subscribe": "t"}, "route": {"topic": "o"},
                   "sink": {"kafka.bootstrap.servers": "s"}})");
  BOOST_TEST(e.find("`source.kafka.bootstrap.servers`") != std::string::npos, e);

  e = error_of(R"({"source": {"kafka.bootstrap.servers": "b"}, "route": {"topic": "o"},
                   "sink": {"kafka.bootstrap.servers": "s"}})");
  BOOST_TEST(e.find("`source.subscribe`") != std::string::npos, e);

  e = error_of(with(R"("sourc": {})"));
  BOOST_TEST(e.find("`sourc`") != std::string::npos, e);
  BOOST_TEST(e.find("unknown option") != std::string::npos, e);

  e = error_of(minimal, {"source.startOffsets=earliest"});
  BOOST_TEST(e.find("`source.startOffsets`") != std::string::npos, e);

  e = error_of(with(R"("parse": {"schema": {"n": "integer"}})"));
  BOOST_TEST(e.find("`parse.schema.n`") != std::string::npos, e);
  BOOST_TEST(e.find("string, int, long, double, boolean, timestamp") != std::string::npos,
             e);

  e = error_of(with(R"("trigger": {"processingTime": "soon"})"));
  BOOST_TEST(e.find("`trigger.processingTime`") != std::string::npos, e);

  e = error_of(with(R"("runtime": {"maxInFlightPerPartition": 0})"));
  BOOST_TEST(e.find("`runtime.maxInFlightPerPartition`") != std::string::npos, e);

  e = error_of(R"({"source": {"kafka.bootstrap.servers": "b", "subscribe": "t"},
                   "route": {"field": "p"}, "sink": {"kafka.bootstrap.servers": "s"}})");
  BOOST_TEST(e.find("`route.topics`") != std::string::npos, e);

  e = error_of("{ not json");
  BOOST_TEST(e.find("not valid JSON") != std::string::npos, e);

  e = error_of(minimal, {"nonsense"});
  BOOST_TEST(e.find("`--set`") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(tombstone_policy_is_read_and_checked) {
  BOOST_TEST((parse_pipeline_config(minimal).parse.tombstones == tombstone_policy::dlq));
  BOOST_TEST(
      (parse_pipeline_config(minimal, {"parse.tombstones=drop"}).parse.tombstones ==
       tombstone_policy::drop));
  BOOST_TEST(
      (parse_pipeline_config(minimal, {"parse.tombstones=pass"}).parse.tombstones ==
       tombstone_policy::pass));
  auto e = error_of(minimal, {"parse.tombstones=keep"});
  BOOST_TEST(e == "option `parse.tombstones`: expected dlq, pass or drop, got `keep`", e);
  // pass needs a topic that does not depend on a field of the (absent) value.
  e = error_of(R"({"source": {"kafka.bootstrap.servers": "b:9092", "subscribe": "orders"},
      "parse": {"tombstones": "pass"},
      "route": {"field": "p", "topics": {"a": "t"}}, "sink": {"kafka.bootstrap.servers": "s"}})");
  BOOST_TEST(e.find("option `parse.tombstones`: pass needs") == 0u, e);
}

BOOST_AUTO_TEST_CASE(topic_names_follow_kafkas_rules) {
  auto e = error_of(minimal, {"route.topic=bad topic/name!"});
  BOOST_TEST(
      e == "option `route.topic`: `bad topic/name!` is not a valid Kafka topic name: "
           "use letters, digits, `.`, `_` and `-`, at most 249 characters",
      e);
  e = error_of(minimal, {"route.topic="});
  BOOST_TEST(e == "option `route.topic`: expected a topic name, got an empty string", e);
  e = error_of(minimal, {"dlq.topic=" + std::string(250, 'x')});
  BOOST_TEST(e.find("option `dlq.topic`: `xxx") == 0u, e);
  e = error_of(minimal, {"source.subscribe=orders,,returns"});
  BOOST_TEST(e == "option `source.subscribe`: expected a topic name, got an empty string",
             e);
  e = error_of(minimal, {"source.subscribe=or ders"});
  BOOST_TEST(e.find("option `source.subscribe`: `or ders` is not a valid") == 0u, e);
  e = error_of(R"({"source": {"kafka.bootstrap.servers": "b", "subscribe": "in"},
      "route": {"field": "p", "topics": {"a": ".."}}, "sink": {"kafka.bootstrap.servers": "s"}})");
  BOOST_TEST(e.find("option `route.topics.a`: `..` is not a valid") == 0u, e);
  BOOST_TEST(parse_pipeline_config(minimal, {"route.topic=a.b_c-9"}).route.topic ==
             "a.b_c-9");
}

BOOST_AUTO_TEST_CASE(writing_into_a_source_topic_is_refused_unless_allowed) {
  auto e = error_of(minimal, {"route.topic=returns"});
  BOOST_TEST(e.find("option `route.topic`: `returns` is also a source topic") == 0u, e);
  BOOST_TEST(e.find("route.allowSourceTopic") != std::string::npos, e);
  e = error_of(minimal, {"dlq.topic=orders"});
  BOOST_TEST(e.find("option `dlq.topic`: `orders` is also a source topic") == 0u, e);
  auto cfg = parse_pipeline_config(minimal,
                                   {"route.topic=orders", "route.allowSourceTopic=true"});
  BOOST_TEST(cfg.route.allow_source_topic);
}

BOOST_AUTO_TEST_CASE(empty_names_are_errors_not_defaults) {
  auto e = error_of(minimal, {"name="});
  BOOST_TEST(e == "option `name`: expected a pipeline name, got an empty string", e);
  e = error_of(minimal, {"source.kafka.group.id="});
  BOOST_TEST(e.find("option `source.kafka.group.id`: expected a group name, got an empty "
                    "string") == 0u,
             e);
}

BOOST_AUTO_TEST_CASE(producer_settings_that_break_the_guarantee_are_rejected) {
  auto e = error_of(minimal, {"sink.kafka.enable.idempotence=false"});
  BOOST_TEST(e.find("option `sink.kafka.enable.idempotence`: must stay true") == 0u, e);
  e = error_of(minimal, {"sink.kafka.acks=1"});
  BOOST_TEST(e.find("option `sink.kafka.acks`: must be all (or -1)") == 0u, e);
  BOOST_TEST(
      parse_pipeline_config(minimal, {"sink.kafka.acks=-1"}).sink.kafka.at("acks") ==
      "-1");
}

BOOST_AUTO_TEST_CASE(properties_of_the_other_client_kind_are_rejected) {
  auto e = error_of(minimal, {"sink.kafka.session.timeout.ms=6000"});
  BOOST_TEST(e ==
                 "option `sink.kafka.session.timeout.ms`: a consumer property: set it on "
                 "the source (`source.kafka.session.timeout.ms`)",
             e);
  e = error_of(minimal, {"source.kafka.linger.ms=5"});
  BOOST_TEST(
      e == "option `source.kafka.linger.ms`: a producer property: set it on the sink "
           "(`sink.kafka.linger.ms`)",
      e);
}

BOOST_AUTO_TEST_CASE(java_only_properties_are_rejected_or_translated) {
  auto e =
      error_of(minimal, {"source.kafka.key.deserializer=org.apache.StringDeserializer"});
  BOOST_TEST(e.find("`source.kafka.key.deserializer`") != std::string::npos, e);
  e = error_of(minimal, {"source.kafka.enable.auto.commit=true"});
  BOOST_TEST(e.find("commits offsets itself") != std::string::npos, e);
  e = error_of(minimal, {"source.kafka.auto.offset.reset=earliest"});
  BOOST_TEST(e.find("startingOffsets") != std::string::npos, e);

  auto cfg = parse_pipeline_config(
      minimal, {"source.kafka.security.protocol=SASL_SSL",
                "source.kafka.sasl.jaas.config=org.apache.kafka.common.security.plain."
                "PlainLoginModule required username=\"alice\" password=\"s3cret\";"});
  BOOST_TEST(cfg.source.kafka.at("sasl.username") == "alice");
  BOOST_TEST(cfg.source.kafka.at("sasl.password") == "s3cret");
  BOOST_TEST(cfg.source.kafka.at("sasl.mechanisms") == "PLAIN");
  BOOST_TEST(!cfg.source.kafka.contains("sasl.jaas.config"));

  e = error_of(minimal, {"source.kafka.sasl.jaas.config=com.sun.security.auth.module."
                         "Krb5LoginModule required password=\"topsecret\";"});
  BOOST_TEST(e.find("`source.kafka.sasl.jaas.config`") != std::string::npos, e);
  BOOST_TEST(e.find("topsecret") == std::string::npos, "a secret leaked into: " + e);
}

BOOST_AUTO_TEST_CASE(sasl_credentials_need_a_sasl_protocol_and_one_source) {
  const std::string jaas =
      "source.kafka.sasl.jaas.config=org.apache.kafka.common.security."
      "plain.PlainLoginModule required username=\"alice\" "
      "password=\"s3cret\";";
  // Without a SASL protocol librdkafka ignores the credentials and the broker drops the
  // connection without a reason: refused at start instead.
  auto e = error_of(minimal, {jaas});
  BOOST_TEST(e.find("`source.kafka.security.protocol`") != std::string::npos, e);
  BOOST_TEST(e.find("SASL_SSL or SASL_PLAINTEXT") != std::string::npos, e);
  BOOST_TEST(e.find("s3cret") == std::string::npos, "a secret leaked into: " + e);
  e = error_of(minimal, {"sink.kafka.sasl.username=bob", "sink.kafka.sasl.password=pw",
                         "sink.kafka.security.protocol=ssl"});
  BOOST_TEST(e.find("`sink.kafka.security.protocol`") != std::string::npos, e);
  BOOST_TEST(e.find("`ssl`") != std::string::npos, e);
  // A JAAS line and properties would disagree on who connects.
  e = error_of(minimal, {jaas, "source.kafka.security.protocol=sasl_plaintext",
                         "source.kafka.sasl.username=bob"});
  BOOST_TEST(e.find("`source.kafka.sasl.jaas.config`") != std::string::npos, e);
  BOOST_TEST(e.find("kafka.sasl.username") != std::string::npos, e);
  auto cfg = parse_pipeline_config(
      minimal, {jaas, "source.kafka.security.protocol=sasl_plaintext"});
  BOOST_TEST(cfg.source.kafka.at("sasl.username") == "alice");
}

BOOST_AUTO_TEST_CASE(json_syntax_errors_give_line_and_column) {
  auto e = error_of("{\n  \"source\": {\"subscribe\": \"a\",, \"x\": 1}\n}\n");
  BOOST_TEST(e.find("not valid JSON (syntax error) at line 2, column 31") !=
                 std::string::npos,
             e);
  // The line itself, with a caret under the offending comma.
  BOOST_TEST(e.find("\n      \"source\": {\"subscribe\": \"a\",, \"x\": 1}\n" +
                    std::string(4 + 30, ' ') + "^") != std::string::npos,
             e);
  e = error_of("{\"a\": tru}");
  BOOST_TEST(e.find("at line 1, column 7") != std::string::npos, e);
  // Columns count characters: "é" is two bytes, one column.
  e = error_of("{\"\xc3\xa9\": 1,, }");
  BOOST_TEST(e.find("at line 1, column 9") != std::string::npos, e);
  // A line that may hold a secret is never echoed.
  e = error_of("{\"sink\": {\"kafka.sasl.password\": \"hunter2\",, }}");
  BOOST_TEST(e.find("at line 1, column 44") != std::string::npos, e);
  BOOST_TEST(e.find("hunter2") == std::string::npos, e);
  e = error_of("{\"source\": {\n");
  BOOST_TEST(e.find("ends too early (a `{`, `[`, string or comment is still open)") !=
                 std::string::npos,
             e);
  e = error_of(" \n");
  BOOST_TEST(e.find("option `pipeline`: empty") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(unreadable_files_give_the_os_reason) {
  auto error_loading = [](const std::string& path) -> std::string {
    try {
      load_pipeline_config(path);
    } catch (const config_error& e) {
      return e.what();
    }
    return "(no error)";
  };
  auto e = error_loading("/nonexistent/pipeline.json");
  BOOST_TEST(e == "option `pipeline`: cannot read `/nonexistent/pipeline.json`: No such "
                  "file or directory",
             e);
  e = error_loading(SLUICE_SOURCE_DIR);
  BOOST_TEST(e.find("Is a directory") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(offset_words_are_read_without_regard_to_case_as_in_spark) {
  auto cfg = parse_pipeline_config(
      minimal, {"source.startingOffsets=EARLIEST", "source.endingOffsets=Latest",
                "source.startingOffsetsByTimestampStrategy=LATEST"});
  BOOST_TEST((cfg.source.starting == starting_offsets::earliest));
  BOOST_TEST(cfg.source.ending_latest);
  BOOST_TEST((cfg.source.starting_strategy == timestamp_strategy::latest));
  auto e = error_of(minimal, {"source.endingOffsets=EARLIEST"});
  BOOST_TEST(e.find("earliest is not an end") != std::string::npos, e);
  cfg = parse_pipeline_config(minimal, {"source.startingOffsets= latest ",
                                        "source.failOnDataLoss=False",
                                        "trigger.availableNow=TRUE"});
  BOOST_TEST((cfg.source.starting == starting_offsets::latest));
  BOOST_TEST(!cfg.source.fail_on_data_loss);
  BOOST_TEST((cfg.trigger.mode == trigger_options::kind::available_now));
}

BOOST_AUTO_TEST_CASE(rate_limits_and_lanes_take_positive_counts_and_a_duration) {
  auto cfg = parse_pipeline_config(
      minimal, {"source.maxOffsetsPerTrigger=1000", "source.minOffsetsPerTrigger=\"200\"",
                "source.maxTriggerDelay=30 seconds", "source.minPartitions=8"});
  BOOST_TEST(*cfg.source.max_offsets_per_trigger == 1000);
  BOOST_TEST(*cfg.source.min_offsets_per_trigger == 200);
  BOOST_TEST(cfg.source.max_trigger_delay.count() == 30000);
  BOOST_TEST(*cfg.source.min_partitions == 8);
  BOOST_TEST(admits_by_epoch(cfg));
  auto plain = parse_pipeline_config(minimal);
  BOOST_TEST(!admits_by_epoch(plain));
  // availableNow and once ignore minOffsetsPerTrigger, as Spark does.
  BOOST_TEST(!admits_by_epoch(parse_pipeline_config(
      minimal, {"source.minOffsetsPerTrigger=10", "trigger.availableNow=true"})));
  BOOST_TEST(admits_by_epoch(parse_pipeline_config(
      minimal, {"source.maxOffsetsPerTrigger=10", "trigger.once=true"})));
  BOOST_TEST(plain.source.max_trigger_delay.count() == 15 * 60 * 1000); // Spark's 15m
  BOOST_TEST(!plain.source.min_partitions.has_value());

  for (const char* option :
       {"maxOffsetsPerTrigger", "minOffsetsPerTrigger", "minPartitions"}) {
    for (const char* bad : {"0", "-5", "1.5", "\"many\""}) {
      auto e = error_of(minimal, {std::string("source.") + option + "=" + bad});
      BOOST_TEST(e.find("option `source." + std::string(option) +
                        "`: expected a positive integer") != std::string::npos,
                 e);
    }
  }
  auto e = error_of(minimal, {"source.maxTriggerDelay=soon"});
  BOOST_TEST(e.find("option `source.maxTriggerDelay`") != std::string::npos, e);
  e = error_of(minimal,
               {"source.maxOffsetsPerTrigger=100", "source.minOffsetsPerTrigger=500"});
  BOOST_TEST(e == "option `source.minOffsetsPerTrigger`: must not exceed "
                  "source.maxOffsetsPerTrigger (100), got 500",
             e);
}

BOOST_AUTO_TEST_CASE(dedup_lateness_and_late_records) {
  auto cfg =
      parse_pipeline_config(with(R"("dedup": {"key": "order_id", "within": "1 hour"})"));
  BOOST_TEST(!cfg.dedup->allowed_lateness.has_value());
  BOOST_TEST(cfg.dedup->lateness().count() == 3600000); // as long as within
  BOOST_TEST((cfg.dedup->late_records == late_policy::pass));
  cfg = parse_pipeline_config(
      with(R"("dlq": {"topic": "bad"}, "dedup": {"key": "order_id", "within": "1 hour",
               "allowedLateness": "0 seconds", "lateRecords": "dlq"})"));
  BOOST_TEST(cfg.dedup->lateness().count() == 0);
  BOOST_TEST((cfg.dedup->late_records == late_policy::dlq));
  cfg = parse_pipeline_config(with(R"("dedup": {"key": "order_id", "within": "1 hour"})"),
                              {"dedup.lateRecords=drop", "dedup.allowedLateness=2 days"});
  BOOST_TEST((cfg.dedup->late_records == late_policy::drop));
  BOOST_TEST(cfg.dedup->lateness().count() == 2 * 86400000LL);
  // Keywords as Spark reads them: trimmed, in any case.
  cfg = parse_pipeline_config(with(R"("dedup": {"key": "order_id", "within": "1 hour"})"),
                              {"dedup.lateRecords= DLQ ", "dlq.topic=bad"});
  BOOST_TEST((cfg.dedup->late_records == late_policy::dlq));
  BOOST_TEST(error_of(with(R"("dedup": {"key": "order_id", "within": "1 hour",
                                        "lateRecords": "keep"})")) ==
             "option `dedup.lateRecords`: expected pass, drop or dlq, got `keep`");
  BOOST_TEST(error_of(with(R"("dedup": {"key": "order_id", "within": "1 hour",
                                        "allowedLateness": "soon"})"))
                 .starts_with("option `dedup.allowedLateness`:"));
  BOOST_TEST(
      error_of(with(R"("dedup": {"key": "order_id", "within": "1 hour",
                                        "lateRecords": "dlq"})")) ==
      "option `dedup.lateRecords`: dlq needs a `dlq` section (its topic) to send late "
      "records to; or choose pass or drop");
}

BOOST_AUTO_TEST_CASE(dedup_options_have_defaults_and_bad_values_name_the_option) {
  auto cfg =
      parse_pipeline_config(with(R"("dedup": {"key": "order_id", "within": "1 hour"})"));
  BOOST_REQUIRE(cfg.dedup.has_value());
  BOOST_TEST(cfg.dedup->key == std::vector<std::string>{"order_id"});
  BOOST_TEST(cfg.dedup->within.count() == 3600000);
  BOOST_TEST(cfg.dedup->time_field.empty());
  BOOST_TEST(cfg.dedup->state_dir == "sluice-state/" + cfg.name);
  BOOST_TEST(cfg.dedup->changelog_topic() == cfg.name + "-dedup-changelog");
  BOOST_TEST(cfg.runtime.memory_budget == 256u << 20);
  const std::string schema =
      R"("parse": {"schema": {"order_id": "string", "customer_id": "string",
                               "priority": "string", "order_time": "timestamp"}}, )";
  cfg = parse_pipeline_config(
      with(schema +
           R"("dedup": {"key": ["order_id", "customer_id"], "within": "10 minutes",
               "timeField": "order_time", "stateDir": "/tmp/x", "changelog": false})"),
      {"runtime.memoryBudget=33554432"});
  BOOST_TEST(cfg.dedup->key.size() == 2u);
  BOOST_TEST(parse_duration("7 days", "x").count() == 7 * 86400000LL);
  BOOST_TEST(parse_duration("2 weeks", "x").count() == 14 * 86400000LL);
  BOOST_TEST(error_of(minimal, {"trigger.processingTime=999999999999 weeks"})
                 .find("longer than 10 years") != std::string::npos);
  BOOST_TEST(cfg.dedup->time_field == "order_time");
  BOOST_TEST(cfg.dedup->changelog_topic().empty());
  BOOST_TEST(cfg.runtime.memory_budget == 32u << 20);
  auto dedup = [&](const std::string& body) {
    return error_of(with(schema + R"("dedup": )" + body));
  };
  BOOST_TEST(
      dedup(R"({"within": "1 hour"})").starts_with("option `dedup.key`: required"));
  BOOST_TEST(dedup(R"({"key": [], "within": "1 hour"})") ==
             "option `dedup.key`: expected a field name or a non-empty list of field "
             "names, got []");
  BOOST_TEST(dedup(R"({"key": ["nope"], "within": "1 hour"})") ==
             "option `dedup.key`: field `nope` is not in parse.schema");
  BOOST_TEST(dedup(R"({"key": ["order_id", "order_id"], "within": "1 hour"})") ==
             "option `dedup.key`: field `order_id` is named twice");
  BOOST_TEST(
      dedup(R"({"key": ["order_id"]})").starts_with("option `dedup.within`: required"));
  BOOST_TEST(dedup(R"({"key": ["order_id"], "within": "soon"})")
                 .starts_with("option `dedup.within`:"));
  BOOST_TEST(
      dedup(R"({"key": ["order_id"], "within": "1 hour", "timeField": "priority"})")
          .starts_with("option `dedup.timeField`: expected a field of parse.schema "
                       "typed timestamp or long"));
  BOOST_TEST(
      dedup(R"({"key": ["order_id"], "within": "1 hour", "changelog": "bad name"})")
          .starts_with("option `dedup.changelog`:"));
  BOOST_TEST(error_of(with(schema + R"("dedup": {"key": "order_id", "within": "1 hour",
                                                   "changelog": "out"})")) ==
             "option `dedup.changelog`: `out` is also an output topic of `route`");
  BOOST_TEST(
      error_of(with(schema + R"("dedup": {"key": "order_id", "within": "1 hour"})"),
               {"name=my pipeline"})
          .starts_with("option `dedup.changelog`: the default `my "
                       "pipeline-dedup-changelog` (from `name`) is not a valid"));
  BOOST_TEST(dedup(R"({"key": ["order_id"], "within": "1 hour", "stateDir": ""})") ==
             "option `dedup.stateDir`: expected a directory, got an empty string");
  BOOST_TEST(dedup(R"({"key": ["order_id"], "within": "1 hour", "ttl": 5})")
                 .starts_with("option `dedup.ttl`: unknown option"));
  BOOST_TEST(
      error_of(minimal, {"runtime.memoryBudget=1000"}) ==
      "option `runtime.memoryBudget`: expected at least 16777216 (16 MiB), got 1000");
  BOOST_TEST(error_of(with(R"("dedup": {"key": "order_id", "within": "1 hour"})"),
                      {"source.minPartitions=8"})
                 .starts_with("option `source.minPartitions`: cannot be combined with "
                              "dedup yet"));
}

BOOST_AUTO_TEST_CASE(spark_options_not_implemented_say_so) {
  for (const char* option : {"groupIdPrefix", "kafkaConsumer.pollTimeoutMs",
                             "fetchOffset.numRetries", "fetchOffset.retryIntervalMs"}) {
    auto e = error_of(minimal, {std::string("source.") + option + "=x"});
    BOOST_TEST(e.find("option `source." + std::string(option) +
                      "`: not supported yet; ") != std::string::npos,
               e);
  }
  auto e = error_of(minimal, {"trigger.continuous=1 second"});
  BOOST_TEST(
      e.find("option `trigger.continuous`: not supported yet") != std::string::npos, e);
  // A real typo is still an unknown option.
  e = error_of(minimal, {"source.subscribePatern=x"});
  BOOST_TEST(e.find("unknown option") != std::string::npos, e);
}

namespace {
const char* base = R"({"source": {"kafka.bootstrap.servers": "b"},
  "route": {"topic": "out"}, "sink": {"kafka.bootstrap.servers": "s"}})";
}

BOOST_AUTO_TEST_CASE(exactly_one_subscription_option) {
  auto cfg = parse_pipeline_config(base, {"source.subscribePattern=orders-[0-9]+"});
  BOOST_TEST((cfg.source.subscription == subscription_kind::pattern));
  BOOST_TEST(cfg.source.pattern == "orders-[0-9]+");
  BOOST_TEST(source_description(cfg.source) ==
             "KafkaV2[SubscribePattern[orders-[0-9]+]]");
  // assign: a JSON object, or a JSON string as Spark takes it.
  for (auto assign : {R"(source.assign={"orders": [1, 0], "returns": [2]})",
                      R"(source.assign="{\"orders\": [1, 0], \"returns\": [2]}")"}) {
    cfg = parse_pipeline_config(base, {assign});
    BOOST_TEST((cfg.source.subscription == subscription_kind::assign));
    BOOST_TEST((cfg.source.assign == std::vector<kafka::topic_partition>{
                                         {"orders", 1}, {"orders", 0}, {"returns", 2}}));
  }
  BOOST_TEST(source_description(cfg.source) ==
             "KafkaV2[Assign[orders-1, orders-0, returns-2]]");
  auto e = error_of(base);
  BOOST_TEST(e.find("option `source.subscribe`: required: one of subscribe") == 0u, e);
  e = error_of(base, {"source.subscribe=a", "source.subscribePattern=b"});
  BOOST_TEST(e == "option `source`: choose one of subscribe, subscribePattern and assign",
             e);
  e = error_of(base, {"source.subscribePattern=orders-[0-9"});
  BOOST_TEST(
      e.find("option `source.subscribePattern`: `orders-[0-9` is not a valid regular "
             "expression") == 0u,
      e);
  e = error_of(base, {R"(source.assign={"orders": []})"});
  BOOST_TEST(
      e.find("option `source.assign`: expected JSON like {\"orders\": [0, 1]}") == 0u, e);
  e = error_of(base, {R"(source.assign={"orders": [-1]})"});
  BOOST_TEST(e.find("option `source.assign`: expected partition numbers, got -1") == 0u,
             e);
  e = error_of(base, {R"(source.assign={"bad topic": [0]})"});
  BOOST_TEST(e.find("is not a valid Kafka topic name") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(starting_and_ending_offsets_take_sparks_forms) {
  auto cfg = parse_pipeline_config(
      base, {"source.subscribe=orders",
             R"(source.startingOffsets={"orders": {"0": 42, "1": -2, "2": -1}})",
             R"(source.endingOffsets="{\"orders\": {\"0\": 50, \"1\": -1}}")",
             "source.startingOffsetsByTimestampStrategy=latest",
             "source.failOnDataLoss=false"});
  BOOST_TEST((cfg.source.starting == starting_offsets::specific));
  BOOST_TEST(cfg.source.starting_specific.at({"orders", 0}) == 42);
  BOOST_TEST(cfg.source.starting_specific.at({"orders", 1}) == -2);
  BOOST_TEST(cfg.source.starting_specific.at({"orders", 2}) == -1);
  BOOST_TEST(cfg.source.ending_specific.at({"orders", 0}) == 50);
  BOOST_TEST(cfg.source.ending_specific.at({"orders", 1}) == -1);
  BOOST_TEST((cfg.source.starting_strategy == timestamp_strategy::latest));
  BOOST_TEST(!cfg.source.fail_on_data_loss);
  BOOST_TEST(has_ending(cfg.source));
  BOOST_TEST(
      !has_ending(parse_pipeline_config(base, {"source.subscribe=orders"}).source));
  // An end makes a batch query: earliest unless said otherwise.
  BOOST_TEST((parse_pipeline_config(
                  base, {"source.subscribe=orders", "source.endingOffsets=latest"})
                  .source.starting == starting_offsets::earliest));
  BOOST_TEST((parse_pipeline_config(base, {"source.subscribe=orders",
                                           "source.endingOffsets=latest",
                                           "source.startingOffsets=latest"})
                  .source.starting == starting_offsets::latest));

  cfg = parse_pipeline_config(
      base, {"source.subscribe=orders", "source.startingTimestamp=1700000000000",
             R"(source.startingOffsetsByTimestamp={"orders": {"3": 1700000000000}})",
             "source.endingTimestamp=\"1800000000000\"", "source.endingOffsets=latest"});
  BOOST_TEST(*cfg.source.starting_timestamp == 1700000000000);
  BOOST_TEST(cfg.source.starting_by_timestamp.at({"orders", 3}) == 1700000000000);
  BOOST_TEST(*cfg.source.ending_timestamp == 1800000000000);
  BOOST_TEST(cfg.source.ending_latest);

  auto e = error_of(base, {"source.subscribe=orders",
                           R"(source.startingOffsets={"returns": {"0": 1}})"});
  BOOST_TEST(e == "option `source.startingOffsets`: `returns/0` is not part of what the "
                  "source reads (subscribe, subscribePattern or assign)",
             e);
  e = error_of(base, {R"(source.assign={"orders": [0]})",
                      R"(source.endingOffsets={"orders": {"1": 5}})"});
  BOOST_TEST(
      e.find("`orders/1` is not part of what the source reads") != std::string::npos, e);
  e = error_of(base, {"source.subscribePattern=ord.*",
                      R"(source.startingOffsets={"orders": {"0": 1}, "evt": {"0": 1}})"});
  BOOST_TEST(e.find("`evt/0` is not part of") != std::string::npos, e);
  e = error_of(base, {"source.subscribe=orders",
                      R"(source.startingOffsets={"orders": {"0": -3}})"});
  BOOST_TEST(e.find("`orders/0`: -3 is not an offset (>= 0, -2 earliest, -1 latest)") !=
                 std::string::npos,
             e);
  e = error_of(
      base, {"source.subscribe=orders", R"(source.endingOffsets={"orders": {"0": -2}})"});
  BOOST_TEST(e.find("-2 is not an offset (>= 0, -1 latest)") != std::string::npos, e);
  e = error_of(base, {"source.subscribe=orders", "source.endingOffsets=earliest"});
  BOOST_TEST(e.find("earliest is not an end") != std::string::npos, e);
  e = error_of(base, {"source.subscribe=orders",
                      R"(source.startingOffsets={"orders": {"x": 1}})"});
  BOOST_TEST(e.find("expected a partition number, got `x`") != std::string::npos, e);
  e = error_of(base, {"source.subscribe=orders", "source.startingOffsets=earlist"});
  BOOST_TEST(e.find("expected earliest, latest or JSON like") != std::string::npos, e);
  e = error_of(base, {"source.subscribe=orders", "source.startingTimestamp=-5"});
  BOOST_TEST(
      e.find("option `source.startingTimestamp`: expected a timestamp in ms") == 0u, e);
  e = error_of(base, {"source.subscribe=orders",
                      "source.startingOffsetsByTimestampStrategy=earliest"});
  BOOST_TEST(e == "option `source.startingOffsetsByTimestampStrategy`: expected error or "
                  "latest, got `earliest`",
             e);
}

BOOST_AUTO_TEST_CASE(trigger_once_is_one_epoch) {
  auto cfg = parse_pipeline_config(minimal, {"trigger.once=true"});
  BOOST_TEST((cfg.trigger.mode == trigger_options::kind::once));
  BOOST_TEST((cfg.trigger.interval > std::chrono::hours(24)));
  auto e = error_of(minimal, {"trigger.once=true", "trigger.availableNow=true"});
  BOOST_TEST(e.find("choose one of") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(set_reaches_schema_fields_and_route_values) {
  auto cfg = parse_pipeline_config(
      with(R"("parse": {"schema": {"id": "string"}})"),
      {"parse.schema.amount=double", "parse.schema.id=long", "parse.schema.a.b=int"});
  BOOST_REQUIRE(cfg.parse.fields.size() == 3u);
  BOOST_TEST(cfg.parse.fields[0].name == "id");
  BOOST_TEST((cfg.parse.fields[0].type == field_type::long_t));
  BOOST_TEST(cfg.parse.fields[1].name == "amount");
  BOOST_TEST((cfg.parse.fields[1].type == field_type::double_t));
  // Field names may hold dots: all after `schema.` is the name.
  BOOST_TEST(cfg.parse.fields[2].name == "a.b");

  cfg = parse_pipeline_config(
      R"({
    "source": {"kafka.bootstrap.servers": "b", "subscribe": "orders"},
    "route": {"field": "priority"}, "sink": {"kafka.bootstrap.servers": "s"}})",
      {"route.topics.high=orders-high", "route.topics.v1.2=orders-v12"});
  BOOST_TEST(cfg.route.topics.at("high") == "orders-high");
  BOOST_TEST(cfg.route.topics.at("v1.2") == "orders-v12");

  // kafka.* names keep their dots.
  cfg = parse_pipeline_config(minimal, {"source.kafka.fetch.wait.max.ms=10"});
  BOOST_TEST(cfg.source.kafka.at("fetch.wait.max.ms") == "10");

  auto e = error_of(minimal, {"runtime.restart.budget=3"});
  BOOST_TEST(e.find("option `--set runtime.restart.budget`: `runtime.restart` has no "
                    "options of its own") != std::string::npos,
             e);
  e = error_of(minimal, {"name.x=1"});
  BOOST_TEST(e.find("`name` is not a section") != std::string::npos, e);
  e = error_of(minimal, {"route.topics.=x"});
  BOOST_TEST(e.find("option `--set route.topics.`: an empty name between dots") !=
                 std::string::npos,
             e);
  e = error_of(minimal, {"parse..schema=x"});
  BOOST_TEST(e.find("an empty name between dots") != std::string::npos, e);
  e = error_of(with(R"("parse": {"schema": "oops"})"), {"parse.schema.n=double"});
  BOOST_TEST(e.find("option `parse.schema`: expected a JSON object") != std::string::npos,
             e);
}

BOOST_AUTO_TEST_CASE(several_trigger_overrides_all_apply) {
  // The file's trigger goes; the command line's options stay together.
  auto e = error_of(with(R"("trigger": {"processingTime": "5 seconds"})"),
                    {"trigger.processingTime=1 second", "trigger.availableNow=true"});
  BOOST_TEST(e.find("choose one of processingTime and availableNow") != std::string::npos,
             e);
  // A whole trigger object on the command line is not wiped by a later option.
  e = error_of(
      with(R"("trigger": {"processingTime": "5 seconds"})"),
      {R"(trigger={"processingTime": "1 second"})", "trigger.availableNow=true"});
  BOOST_TEST(e.find("choose one of processingTime and availableNow") != std::string::npos,
             e);
  auto cfg = parse_pipeline_config(with(R"("trigger": {"availableNow": true})"),
                                   {"trigger.processingTime=2 seconds"});
  BOOST_TEST((cfg.trigger.mode == trigger_options::kind::processing_time));
  BOOST_TEST(cfg.trigger.interval.count() == 2000);
}

BOOST_AUTO_TEST_CASE(secrets_are_never_echoed) {
  // The value on another line than its key: string contents are masked.
  auto e = error_of("{\"sink\": {\"kafka.sasl.password\":\n     \"hunter2\" \"x\": 1}}");
  BOOST_TEST(e.find("at line 2, column 16") != std::string::npos, e);
  BOOST_TEST(e.find("hunter2") == std::string::npos, e);
  BOOST_TEST(e.find("\"*******\" \"*\": 1}}") != std::string::npos, e);
  e = error_of(R"({"source": {"kafka.bootstrap.servers": "b", "subscribe": "orders"},
                   "route": {"topic": "out"},
                   "sink": {"kafka.bootstrap.servers": "s",
                            "kafka.sasl.password": ["hunter2"]}})");
  BOOST_TEST(e.find("`sink.kafka.sasl.password`: expected a string, number or boolean, "
                    "got (value not shown)") != std::string::npos,
             e);
  BOOST_TEST(e.find("hunter2") == std::string::npos, e);
  // A --set without `=`: only the part naming the option is repeated.
  e = error_of(minimal, {"sink.kafka.sasl.password:hunter2"});
  BOOST_TEST(e.find("got `sink.kafka.sasl.password...`") != std::string::npos, e);
  BOOST_TEST(e.find("hunter2") == std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(json_excerpts_handle_boms_crlf_and_long_lines) {
  // A byte-order mark is skipped.
  auto cfg = parse_pipeline_config("\xEF\xBB\xBF" + std::string(minimal));
  BOOST_TEST(cfg.source.bootstrap_servers == "b:9092");
  // A CRLF line is shown without its CR.
  auto e = error_of("{\r\n  \"a\": 1,, \r\n}");
  BOOST_TEST(e.find("at line 2, column 10:\n      \"a\": 1,, \n") != std::string::npos,
             e);
  // A minified file: a window around the error, the caret still under it.
  std::string line = "{\"pad\": \"" + std::string(200, 'x') + "\", \"a\": 1,, \"b\": \"" +
                     std::string(200, 'y') + "\"}";
  e = error_of(line);
  auto at = line.find(",,") + 1;
  BOOST_TEST(e.find("at line 1, column " + std::to_string(at + 1)) != std::string::npos,
             e);
  auto shown = e.substr(e.find(":\n    ") + 6);
  auto first = shown.substr(0, shown.find('\n'));
  auto caret = shown.substr(shown.find('\n') + 1);
  BOOST_TEST((first.starts_with("...") && first.ends_with("...")), first);
  BOOST_TEST(first.size() < 140u, first);
  BOOST_TEST(first[caret.size() - 1 - 4] == ',', shown); // less the indent
}

BOOST_AUTO_TEST_CASE(sink_settings_a_user_might_try_are_refused_with_the_reason) {
  auto e = error_of(minimal, {"sink.kafka.transactional.id=x"});
  BOOST_TEST(e.find("option `sink.kafka.transactional.id`: only used with "
                    "\"guarantee\": \"exactly-once\"") == 0u,
             e);
  e = error_of(minimal, {"sink.kafka.partitioner=random"});
  BOOST_TEST(e.find("option `sink.kafka.partitioner`: random places records with the "
                    "same key on different partitions") == 0u,
             e);
  BOOST_TEST(parse_pipeline_config(minimal, {"sink.kafka.partitioner=consistent"})
                 .sink.kafka.at("partitioner") == "consistent");
  for (auto name : {"group.id", "auto.offset.reset", "enable.auto.commit",
                    "group.protocol.type", "offset.store.method"}) {
    e = error_of(minimal, {std::string("sink.kafka.") + name + "=x"});
    BOOST_TEST(e.find("option `sink.kafka." + std::string(name) +
                      "`: a consumer property: set it on the source") == 0u,
               e);
  }
}

BOOST_AUTO_TEST_CASE(contradictions_and_blanks_are_refused) {
  auto e = error_of(minimal, {"route.default=x"});
  BOOST_TEST(e.find("option `route.default`: only used when routing by `field`") == 0u,
             e);
  e = error_of(minimal, {"route.topics.high=x"});
  BOOST_TEST(e.find("option `route.topics`: only used when routing by `field`") == 0u, e);
  e = error_of(minimal, {"route.field=priority", "route.topics.high=x"});
  BOOST_TEST(e == "option `route`: both `topic` and `field` are set: choose one", e);
  e = error_of(minimal, {R"(parse.required=[""])"});
  BOOST_TEST(e == "option `parse.required`: expected field names, got an empty string",
             e);
  e = error_of(with(R"("parse": {"schema": {"": "int"}})"));
  BOOST_TEST(e == "option `parse.schema`: expected field names, got an empty string", e);
  e = error_of(minimal, {"name= "});
  BOOST_TEST(e.find("option `name`: expected a pipeline name") == 0u, e);
  e = error_of(minimal, {"source.kafka.group.id= "});
  BOOST_TEST(e.find("option `source.kafka.group.id`: expected a group name") == 0u, e);
  e = error_of(minimal, {"source.subscribe=orders,"});
  BOOST_TEST(e == "option `source.subscribe`: expected a topic name, got an empty string",
             e);
  e = error_of(minimal, {"trigger.processingTime=99999999999 hours"});
  BOOST_TEST(e.find("is longer than 10 years") != std::string::npos, e);
  e = error_of(minimal, {"trigger.processingTime=9999999999999999999999 ms"});
  BOOST_TEST(e.find("expected a duration like") != std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(the_broker_list_alias_is_refused) {
  auto e = error_of(minimal, {"source.kafka.metadata.broker.list=x:1"});
  BOOST_TEST(e.find("option `source.kafka.metadata.broker.list`: an alias of "
                    "bootstrap.servers: use `source.kafka.bootstrap.servers`") !=
                 std::string::npos,
             e);
}

BOOST_AUTO_TEST_CASE(values_are_echoed_as_written) {
  auto e = error_of(minimal, {"runtime.maxBatchRecords=1.5"});
  BOOST_TEST(
      e == "option `runtime.maxBatchRecords`: expected a positive integer, got 1.5", e);
  // An integer written with an exponent is still that integer.
  auto cfg = parse_pipeline_config(with(R"("runtime": {"maxInFlightBytes": 2.25e3})"));
  BOOST_TEST(cfg.runtime.max_in_flight_bytes == 2250u);
  // Numbers in the file given to librdkafka are written as people write them.
  cfg = parse_pipeline_config(R"({
    "source": {"kafka.bootstrap.servers": "b", "subscribe": "orders"},
    "route": {"topic": "out"},
    "sink": {"kafka.bootstrap.servers": "s", "kafka.linger.ms": 0.5,
             "kafka.batch.size": 16384.0}})");
  BOOST_TEST(cfg.sink.kafka.at("linger.ms") == "0.5");
  BOOST_TEST(cfg.sink.kafka.at("batch.size") == "16384");
  // On the command line, client properties, names and topics stay as typed.
  cfg = parse_pipeline_config(
      minimal, {"sink.kafka.sasl.password=1e5", "sink.kafka.security.protocol=SASL_SSL",
                "sink.kafka.batch.size=16384.0", "source.kafka.group.id=42",
                "route.topic=2024", "name=007"});
  BOOST_TEST(cfg.sink.kafka.at("sasl.password") == "1e5");
  BOOST_TEST(cfg.sink.kafka.at("batch.size") == "16384.0");
  BOOST_TEST(cfg.source.group_id == "42");
  BOOST_TEST(cfg.route.topic == "2024");
  BOOST_TEST(cfg.name == "007");
}

BOOST_AUTO_TEST_CASE(secret_properties_are_recognised) {
  BOOST_TEST(is_secret_property("sasl.password"));
  BOOST_TEST(is_secret_property("ssl.key.password"));
  BOOST_TEST(is_secret_property("sasl.oauthbearer.client.secret"));
  BOOST_TEST(!is_secret_property("sasl.username"));
  BOOST_TEST(!is_secret_property("linger.ms"));
}

BOOST_AUTO_TEST_CASE(readme_documents_every_option) {
  std::ifstream in(SLUICE_SOURCE_DIR "/README.md");
  BOOST_REQUIRE(in);
  std::stringstream buf;
  buf << in.rdbuf();
  auto readme = buf.str();
  BOOST_TEST(readme.find(option_reference_markdown()) != std::string::npos,
             "README.md's option table differs from `sluice options`; paste its output");
  for (auto& o : option_table())
    BOOST_TEST(readme.find("`" + std::string(o.name) + "`") != std::string::npos,
               "README.md does not document `" << o.name << "` (" << o.section << ")");
}

BOOST_AUTO_TEST_CASE(a_key_given_twice_in_one_object_is_refused) {
  // Boost.JSON keeps the last of duplicate keys: `orders` would vanish unseen.
  auto e = error_of(R"({"source": {"kafka.bootstrap.servers": "b", "subscribe": "orders",
                   "subscribe": "returns"},
      "route": {"topic": "out"}, "sink": {"kafka.bootstrap.servers": "s"}})");
  BOOST_TEST(e.find("option `source.subscribe`: given twice") == 0u, e);
  BOOST_TEST(e.find("at line 2, column 20") != std::string::npos, e);
  // At the top, and deep inside.
  e = error_of(with(R"("route": {"topic": "again"})"));
  BOOST_TEST(e.find("option `route`: given twice") == 0u, e);
  e = error_of(
      with(R"("parse": {"schema": {"id": "string", "n": "int", "id": "long"}})"));
  BOOST_TEST(e.find("option `parse.schema.id`: given twice") == 0u, e);
  e = error_of(with(R"("x": [{"a": 1}, {"b": 1, "b": 2}])"));
  BOOST_TEST(e.find("option `x[1].b`: given twice") == 0u, e);
  // Keys differing only in case, or in different objects, are different keys.
  BOOST_TEST(error_of(with(R"("parse": {"schema": {"id": "string", "ID": "long"},
                                        "required": ["id"]})")) == "(no error)");
  // In a JSON string holding an object, and in a --set value.
  e = error_of(base, {R"(source.assign="{\"orders\": [0], \"orders\": [1]}")"});
  BOOST_TEST(e.find("option `source.assign.orders`: given twice") == 0u, e);
  e = error_of(minimal, {R"(parse.schema={"id": "string", "id": "long"})"});
  BOOST_TEST(e.find("option `parse.schema.id`: given twice") == 0u, e);
  // One partition written two ways is given twice as well.
  e = error_of(minimal, {R"(source.startingOffsets={"orders": {"1": 5, "01": 6}})"});
  BOOST_TEST(e == "option `source.startingOffsets`: `orders/1` is given twice", e);
}

BOOST_AUTO_TEST_CASE(durations_take_zero_without_a_unit_and_decimals) {
  // The number 0 wherever a duration is read; "0" as text too.
  auto cfg = parse_pipeline_config(minimal, {"trigger.processingTime=0",
                                             "runtime.restartBackoff=0",
                                             "source.maxTriggerDelay=0.0"});
  BOOST_TEST(cfg.trigger.interval.count() == 0);
  BOOST_TEST(cfg.runtime.restart_backoff.count() == 0);
  BOOST_TEST(cfg.source.max_trigger_delay.count() == 0);
  cfg = parse_pipeline_config(with(R"("runtime": {"restartWindow": 0}, )"
                                   R"("trigger": {"processingTime": "0"})"));
  BOOST_TEST(cfg.runtime.restart_window.count() == 0);
  BOOST_TEST(cfg.trigger.interval.count() == 0);
  // Any other bare number needs a unit.
  auto e = error_of(minimal, {"trigger.processingTime=5"});
  BOOST_TEST(
      e == "option `trigger.processingTime`: expected a duration like \"1 second\", "
           "got 5: a number needs a unit, like \"5 seconds\" or \"5 ms\"",
      e);
  e = error_of(with(R"("runtime": {"brokerTimeout": 1.5})"));
  BOOST_TEST(e.find("option `runtime.brokerTimeout`: expected a duration like \"1 "
                    "second\", got 1.5: a number needs a unit") == 0u,
             e);
  e = error_of(minimal, {"trigger.processingTime=\"5\""});
  BOOST_TEST(e.find("got `5`: add a unit, like \"5 seconds\"") != std::string::npos, e);
  // Decimals, rounded to whole milliseconds (half up).
  BOOST_TEST(parse_duration("1.5 seconds", "x").count() == 1500);
  BOOST_TEST(parse_duration("0.25s", "x").count() == 250);
  BOOST_TEST(parse_duration(".5 minutes", "x").count() == 30000);
  BOOST_TEST(parse_duration("2. hours", "x").count() == 7200000);
  BOOST_TEST(parse_duration("1.0005 seconds", "x").count() == 1001);
  BOOST_TEST(parse_duration("1.0004999 seconds", "x").count() == 1000);
  BOOST_TEST(parse_duration("0.4 ms", "x").count() == 0);
  BOOST_TEST(parse_duration("1.5 weeks", "x").count() == 907200000);
  cfg = parse_pipeline_config(minimal, {"trigger.processingTime=1.5 seconds"});
  BOOST_TEST(cfg.trigger.interval.count() == 1500);
  // What rounds to a negative, or beyond the limit, is refused.
  e = error_of(minimal, {"trigger.processingTime=-1.5 seconds"});
  BOOST_TEST(e == "option `trigger.processingTime`: `-1.5 seconds` is negative: "
                  "expected a duration of 0 or more",
             e);
  BOOST_TEST(parse_duration("-0.0001 seconds", "x").count() == 0);
  e = error_of(minimal, {"trigger.processingTime=3650.5 days"});
  BOOST_TEST(e.find("is longer than 10 years") != std::string::npos, e);
  BOOST_TEST(parse_duration("3649.5 days", "x").count() == 3649.5 * 86400000);
  e = error_of(minimal, {"trigger.processingTime=999999999999.9 weeks"});
  BOOST_TEST(e.find("is longer than 10 years") != std::string::npos, e);
  for (auto bad : {"1.2.3 seconds", ". seconds", "1,5 seconds", "1.5", "1e3 ms",
                   "1.0000000001 seconds"}) {
    e = error_of(minimal, {std::string("trigger.processingTime=") + bad});
    BOOST_TEST(e.find("expected a duration like") != std::string::npos, e);
  }
  // Where a duration must be positive, 0 is still refused.
  const std::string dedup = R"("dedup": {"key": "order_id", "within": 0})";
  e = error_of(with(dedup));
  BOOST_TEST(e == "option `dedup.within`: expected a positive duration", e);
  e = error_of(with(R"("dedup": {"key": "order_id", "within": "0.0001 seconds"})"));
  BOOST_TEST(e == "option `dedup.within`: expected a positive duration", e);
  e = error_of(minimal, {"runtime.brokerTimeout=0"});
  BOOST_TEST(e == "option `runtime.brokerTimeout`: expected at least 1 second", e);
}

BOOST_AUTO_TEST_CASE(set_section_null_removes_an_optional_section) {
  const std::string file = with(R"("dedup": {"key": "order_id", "within": "1 hour"},
      "dlq": {"topic": "dead"}, "runtime": {"maxBatchRecords": 7},
      "trigger": {"once": true}, "parse": {"tombstones": "drop"})");
  auto cfg = parse_pipeline_config(file);
  BOOST_TEST(cfg.dedup.has_value());
  cfg = parse_pipeline_config(
      file, {"dedup=null", "dlq=null", "runtime=null", "trigger=null", "parse=null"});
  BOOST_TEST(!cfg.dedup.has_value());
  BOOST_TEST(!cfg.dlq.has_value());
  BOOST_TEST(cfg.runtime.max_batch_records == 500u);
  BOOST_TEST((cfg.trigger.mode == trigger_options::kind::continuous));
  BOOST_TEST((cfg.parse.tombstones == tombstone_policy::dlq));
  // Gone, then given again from the command line.
  cfg = parse_pipeline_config(file, {"trigger=null", "trigger.availableNow=true"});
  BOOST_TEST((cfg.trigger.mode == trigger_options::kind::available_now));
  // Without the section in the file, nothing to remove.
  BOOST_TEST(!parse_pipeline_config(minimal, {"dedup=null"}).dedup.has_value());
  for (auto section : {"source", "route", "sink"}) {
    auto e = error_of(file, {std::string(section) + "=null"});
    BOOST_TEST(e == "option `--set " + std::string(section) + "`: `" + section +
                        "` is a required section and cannot be removed; set its "
                        "options instead (--set " +
                        section + ".OPTION=VALUE)",
               e);
  }
}

BOOST_AUTO_TEST_CASE(the_source_reads_committed_transactions_unless_told_otherwise) {
  // Aborted records never reach an output, and a bounded run's "latest" is the last
  // stable offset (kafka.transactions proves both on a real broker).
  auto props = kafka::consumer_properties(parse_pipeline_config(minimal).source);
  BOOST_TEST(props.at("isolation.level") == "read_committed");
  auto cfg =
      parse_pipeline_config(minimal, {"source.kafka.isolation.level=read_uncommitted"});
  BOOST_TEST(kafka::consumer_properties(cfg.source).at("isolation.level") ==
             "read_uncommitted");
}

BOOST_AUTO_TEST_CASE(the_guarantee_is_a_top_level_keyword) {
  BOOST_TEST(
      (parse_pipeline_config(minimal).guarantee == delivery_guarantee::at_least_once));
  BOOST_TEST((parse_pipeline_config(with(R"("guarantee": "exactly-once")")).guarantee ==
              delivery_guarantee::exactly_once));
  BOOST_TEST((parse_pipeline_config(minimal, {"guarantee= Exactly-Once "}).guarantee ==
              delivery_guarantee::exactly_once));
  BOOST_TEST((parse_pipeline_config(with(R"("guarantee": "exactly-once")"),
                                    {"guarantee=at-least-once"})
                  .guarantee == delivery_guarantee::at_least_once));
  BOOST_TEST(error_of(minimal, {"guarantee=exactly_once"}) ==
             "option `guarantee`: expected at-least-once or exactly-once, got "
             "`exactly_once`");
  BOOST_TEST(error_of(with(R"("guarantee": true)"))
                 .starts_with("option `guarantee`: expected at-least-once or "
                              "exactly-once"));
}

BOOST_AUTO_TEST_SUITE_END()
