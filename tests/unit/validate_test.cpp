// validate() and fill_defaults() on pipeline_config values made in code, no
// JSON involved: what pipeline_builder and pipeline rely on.

#include <sluice/config.hpp>
#include <sluice/errors.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>

using namespace sluice;
using namespace std::chrono_literals;

namespace {

/// orders -> out, with a DLQ and dedup by order_id: valid as it stands.
pipeline_config valid() {
  pipeline_config c;
  c.name = "orders-job";
  c.source.bootstrap_servers = "b:9092";
  c.source.subscribe = {"orders", "returns"};
  c.parse.fields = {{"order_id", field_type::string_t},
                    {"priority", field_type::string_t},
                    {"order_time", field_type::timestamp_t}};
  c.parse.required = {"order_id"};
  c.route.topic = "out";
  c.sink.bootstrap_servers = "s:9092";
  c.dlq = dlq_options{"orders-dlq"};
  dedup_options d;
  d.key = {"order_id"};
  d.within = 1h;
  d.time_field = "order_time";
  d.changelog = "orders-changelog";
  c.dedup = d;
  fill_defaults(c);
  return c;
}

/// The config_error validate() throws, as its message; "(valid)" if none.
std::string error_of(const pipeline_config& c) {
  try {
    validate(c);
  } catch (const config_error& e) {
    return e.what();
  }
  return "(valid)";
}

/// The option that error names.
std::string refused_option(const pipeline_config& c) {
  try {
    validate(c);
  } catch (const config_error& e) {
    return e.option();
  }
  return "(valid)";
}

} // namespace

BOOST_AUTO_TEST_SUITE(validation)

BOOST_AUTO_TEST_CASE(a_valid_config_made_in_code_passes) {
  BOOST_CHECK_NO_THROW(validate(valid()));
  auto c = valid();
  c.dedup.reset();
  c.dlq.reset();
  c.parse = {};
  c.route = {};
  c.route.field = "priority";
  c.route.topics = {{"high", "orders-high"}};
  c.route.default_topic = "orders-other";
  BOOST_TEST(error_of(c) == "(valid)");
  // Routing by a function: no topic, field or default.
  c.route = {};
  c.route.extract = [](const record&) { return std::string("out"); };
  BOOST_TEST(error_of(c) == "(valid)");
}

BOOST_AUTO_TEST_CASE(fill_defaults_gives_what_a_pipeline_file_gets) {
  pipeline_config c;
  c.name = "job";
  c.dedup = dedup_options{};
  c.runtime.max_in_flight_per_partition = 100;
  fill_defaults(c);
  BOOST_TEST(c.source.group_id == "sluice-job");
  BOOST_TEST(c.dedup->state_dir == "sluice-state/job");
  // As a file's: state that a lost machine cannot take with it.
  BOOST_TEST(c.dedup->changelog_topic() == "job-dedup-changelog");
  BOOST_TEST(c.runtime.max_batch_records == 100u);
  // What is set stays.
  c.source.group_id = "mine";
  c.dedup->state_dir = "/var/lib/x";
  c.dedup->changelog = std::string(); // none, on purpose
  fill_defaults(c);
  BOOST_TEST(c.source.group_id == "mine");
  BOOST_TEST(c.dedup->state_dir == "/var/lib/x");
  BOOST_TEST(c.dedup->changelog_topic().empty());
  // Without fill_defaults, an empty group is refused, not guessed.
  auto v = valid();
  v.source.group_id.clear();
  BOOST_TEST(refused_option(v) == "source.kafka.group.id");
}

BOOST_AUTO_TEST_CASE(a_missing_source_bootstrap_is_refused) {
  auto c = valid();
  c.source.bootstrap_servers.clear();
  BOOST_TEST(error_of(c) == "option `source.kafka.bootstrap.servers`: required: the "
                            "brokers to read from, like \"host1:9092,host2:9092\"");
  c = valid();
  c.sink.bootstrap_servers = " ";
  BOOST_TEST(refused_option(c) == "sink.kafka.bootstrap.servers");
}

BOOST_AUTO_TEST_CASE(exactly_one_subscription_kind_is_accepted) {
  auto c = valid();
  c.source.pattern = "orders-[0-9]+";
  BOOST_TEST(error_of(c) ==
             "option `source`: choose one of subscribe, subscribePattern and assign");
  c.source.subscribe.clear();
  // The pattern is filled, but the kind still says subscribe.
  BOOST_TEST(refused_option(c) == "source");
  c.source.subscription = subscription_kind::pattern;
  BOOST_TEST(error_of(c) == "(valid)");
  c.source.pattern = "orders-[0-9";
  BOOST_TEST(error_of(c).starts_with(
      "option `source.subscribePattern`: `orders-[0-9` is not a valid regular "
      "expression"));
  c = valid();
  c.source.subscribe.clear();
  BOOST_TEST(error_of(c).starts_with("option `source.subscribe`: required: one of"));
  c.source.subscribe = {"orders", ""};
  BOOST_TEST(error_of(c) ==
             "option `source.subscribe`: expected a topic name, got an empty string");
  c.source.subscribe.clear();
  c.source.subscription = subscription_kind::assign;
  BOOST_TEST(refused_option(c) == "source.assign");
  c.source.assign = {{"orders", 0}, {"orders", -1}};
  BOOST_TEST(error_of(c) ==
             "option `source.assign`: expected partition numbers, got -1 for `orders`");
  c.source.assign = {{"orders", 0}, {"orders", 0}};
  BOOST_TEST(error_of(c) == "option `source.assign`: `orders/0` is named twice");
}

BOOST_AUTO_TEST_CASE(named_partitions_must_be_read_by_the_source) {
  auto c = valid();
  c.source.starting = starting_offsets::specific;
  BOOST_TEST(refused_option(c) == "source.startingOffsets"); // no partition named
  c.source.starting_specific = {{{"orders", 0}, 42}, {{"elsewhere", 0}, 1}};
  BOOST_TEST(error_of(c) == "option `source.startingOffsets`: `elsewhere/0` is not part "
                            "of what the source reads (subscribe, subscribePattern or "
                            "assign)");
  c.source.starting_specific = {{{"orders", 0}, -3}};
  BOOST_TEST(error_of(c) == "option `source.startingOffsets`: `orders/0`: -3 is not an "
                            "offset (>= 0, -2 earliest, -1 latest)");
  c = valid();
  c.source.ending_specific = {{{"orders", 0}, -2}};
  BOOST_TEST(refused_option(c) == "source.endingOffsets");
  c = valid();
  c.source.ending_by_timestamp = {{{"nope", 1}, 5}};
  BOOST_TEST(refused_option(c) == "source.endingOffsetsByTimestamp");
  c = valid();
  c.source.starting_timestamp = -5;
  BOOST_TEST(error_of(c) == "option `source.startingTimestamp`: expected a timestamp in "
                            "ms since the epoch, got -5");
}

BOOST_AUTO_TEST_CASE(counts_must_be_positive_and_ordered) {
  auto c = valid();
  c.source.max_offsets_per_trigger = 100;
  c.source.min_offsets_per_trigger = 500;
  BOOST_TEST(error_of(c) == "option `source.minOffsetsPerTrigger`: must not exceed "
                            "source.maxOffsetsPerTrigger (100), got 500");
  c.source.min_offsets_per_trigger = 0;
  BOOST_TEST(error_of(c) ==
             "option `source.minOffsetsPerTrigger`: expected a positive integer, got 0");
  c = valid();
  c.runtime.max_in_flight_per_partition = 0;
  BOOST_TEST(refused_option(c) == "runtime.maxInFlightPerPartition");
  c = valid();
  c.runtime.restart_budget = -1;
  BOOST_TEST(refused_option(c) == "runtime.restartBudget");
  c = valid();
  c.runtime.restart_backoff = -5ms;
  BOOST_TEST(error_of(c) == "option `runtime.restartBackoff`: expected a duration of 0 "
                            "or more, got -5 ms");
}

BOOST_AUTO_TEST_CASE(a_route_into_a_source_topic_is_refused) {
  auto c = valid();
  c.route.topic = "returns";
  BOOST_TEST(error_of(c).starts_with(
      "option `route.topic`: `returns` is also a source topic: every record written "
      "there is read again, endlessly"));
  c.route.allow_source_topic = true;
  BOOST_TEST(error_of(c) == "(valid)");
  // Dead letters never, even when allowed.
  c.dlq->topic = "orders";
  BOOST_TEST(refused_option(c) == "dlq.topic");
  // With a pattern, whatever it matches is a source topic.
  c = valid();
  c.source.subscribe.clear();
  c.source.subscription = subscription_kind::pattern;
  c.source.pattern = "o.*";
  BOOST_TEST(refused_option(c) == "route.topic");
}

BOOST_AUTO_TEST_CASE(route_rules_hold_without_json) {
  auto c = valid();
  c.route.field = "priority";
  BOOST_TEST(error_of(c) ==
             "option `route`: both `topic` and `field` are set: choose one");
  c.route = {};
  BOOST_TEST(refused_option(c) == "route");
  c.route.field = "priority";
  BOOST_TEST(error_of(c) ==
             "option `route.topics`: routing by field needs `topics` or `default`");
  c.route.topics = {{"high", "bad topic"}};
  BOOST_TEST(error_of(c).starts_with(
      "option `route.topics.high`: `bad topic` is not a valid Kafka topic name"));
  c.route = {};
  c.route.topic = "out";
  c.route.extract = [](const record&) { return std::string("out"); };
  BOOST_TEST(error_of(c) ==
             "option `route`: a route function is set, and so is `topic`: choose one");
  c = valid();
  c.parse.tombstones = tombstone_policy::pass;
  c.route = {};
  c.route.field = "priority";
  c.route.topics = {{"high", "h"}};
  BOOST_TEST(refused_option(c) == "parse.tombstones");
}

BOOST_AUTO_TEST_CASE(a_dedup_key_not_in_the_schema_is_refused) {
  auto c = valid();
  c.dedup->key = {"customer_id"};
  BOOST_TEST(error_of(c) == "option `dedup.key`: field `customer_id` is not in "
                            "parse.schema");
  c.dedup->key = {"order_id", "order_id"};
  BOOST_TEST(error_of(c) == "option `dedup.key`: field `order_id` is named twice");
  c.dedup->key.clear();
  BOOST_TEST(error_of(c).starts_with("option `dedup.key`: required"));
  // Without a schema, any field may be the key.
  c = valid();
  c.parse.fields.clear();
  c.parse.required.clear();
  c.dedup->time_field.clear();
  c.dedup->key = {"customer_id"};
  BOOST_TEST(error_of(c) == "(valid)");
}

BOOST_AUTO_TEST_CASE(every_dedup_rule_holds_without_json) {
  auto c = valid();
  c.dedup->within = 0ms;
  BOOST_TEST(error_of(c) == "option `dedup.within`: expected a positive duration");
  c = valid();
  c.dedup->allowed_lateness = -1ms;
  BOOST_TEST(
      error_of(c) ==
      "option `dedup.allowedLateness`: expected a duration of 0 or more, got -1 ms");
  c.dedup->allowed_lateness = std::chrono::hours(24 * 366 * 11);
  BOOST_TEST(error_of(c).starts_with(
      "option `dedup.allowedLateness`: expected at most 10 years, got "));
  c.dedup->allowed_lateness.reset(); // as long as within, which is too long
  c.dedup->within = std::chrono::hours(24 * 366 * 11);
  BOOST_TEST(error_of(c).starts_with("option `dedup.within`: expected at most 10 years"));
  c = valid();
  c.dedup->late_records = late_policy::dlq;
  BOOST_TEST(error_of(c) == "(valid)");
  c.dlq.reset();
  BOOST_TEST(refused_option(c) == "dedup.lateRecords");
  c = valid();
  c.dedup->time_field = "priority";
  BOOST_TEST(refused_option(c) == "dedup.timeField");
  c = valid();
  c.dedup->state_dir = " ";
  BOOST_TEST(refused_option(c) == "dedup.stateDir");
  c = valid();
  c.dedup->changelog = "orders-dlq";
  BOOST_TEST(error_of(c) ==
             "option `dedup.changelog`: `orders-dlq` is also the DLQ topic");
  c.dedup->changelog = "out";
  BOOST_TEST(error_of(c) ==
             "option `dedup.changelog`: `out` is also an output topic of `route`");
  c.dedup->changelog = "orders";
  BOOST_TEST(error_of(c).starts_with("option `dedup.changelog`: `orders` is also a "
                                     "source topic"));
  c = valid();
  c.source.min_partitions = 4;
  BOOST_TEST(error_of(c).starts_with(
      "option `source.minPartitions`: cannot be combined with dedup yet"));
}

BOOST_AUTO_TEST_CASE(a_memory_budget_below_16_mib_is_refused) {
  auto c = valid();
  c.runtime.memory_budget = 1000;
  BOOST_TEST(
      error_of(c) ==
      "option `runtime.memoryBudget`: expected at least 16777216 (16 MiB), got 1000");
  c.runtime.memory_budget = 16u << 20;
  BOOST_TEST(error_of(c) == "(valid)");
  c.runtime.broker_timeout = 999ms;
  BOOST_TEST(error_of(c) == "option `runtime.brokerTimeout`: expected at least 1 second");
}

BOOST_AUTO_TEST_CASE(client_properties_that_break_the_guarantee_are_refused) {
  auto c = valid();
  c.sink.kafka["acks"] = "1";
  BOOST_TEST(error_of(c).starts_with("option `sink.kafka.acks`: must be all (or -1)"));
  c = valid();
  c.source.kafka["linger.ms"] = "5";
  BOOST_TEST(refused_option(c) == "source.kafka.linger.ms");
  c = valid();
  c.sink.kafka["sasl.username"] = "bob";
  BOOST_TEST(refused_option(c) == "sink.kafka.security.protocol");
  c.sink.kafka["security.protocol"] = "SASL_SSL";
  BOOST_TEST(error_of(c) == "(valid)");
}

BOOST_AUTO_TEST_CASE(the_file_reader_and_validate_agree) {
  // The same mistake, in a file and in code, gets the same message.
  auto file_error = [](const std::string& text) -> std::string {
    try {
      parse_pipeline_config(text);
    } catch (const config_error& e) {
      return e.what();
    }
    return "(valid)";
  };
  auto c = valid();
  c.dedup.reset();
  c.route.topic = "orders";
  BOOST_TEST(error_of(c) == file_error(R"({"name": "orders-job",
      "source": {"kafka.bootstrap.servers": "b:9092", "subscribe": "orders,returns"},
      "route": {"topic": "orders"}, "sink": {"kafka.bootstrap.servers": "s:9092"}})"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(validation_route)

// Found when tried as a new user would: a route field the schema lacks sent
// every record to the DLQ as unroutable, with exit 0.
BOOST_AUTO_TEST_CASE(a_route_field_outside_the_schema_is_refused) {
  auto c = valid();
  c.route = {};
  c.route.field = "region";
  c.route.default_topic = "out";
  BOOST_TEST(refused_option(c) == "route.field");
  BOOST_TEST(error_of(c).find("field `region` is not in parse.schema") !=
             std::string::npos);
  c.route.field = "priority";
  BOOST_TEST(error_of(c) == "(valid)");
  c.parse.fields.clear(); // without a schema any field may be there
  c.parse.required.clear();
  c.dedup.reset();
  c.route.field = "region";
  BOOST_TEST(error_of(c) == "(valid)");
}

BOOST_AUTO_TEST_CASE(a_missing_route_names_the_builder_calls_too) {
  auto c = valid();
  c.route = {};
  BOOST_TEST(error_of(c).find("route(function)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(exactly_once_refuses_what_its_transactions_cannot_cover) {
  auto c = valid();
  c.guarantee = delivery_guarantee::exactly_once;
  BOOST_TEST(error_of(c) == "(valid)");
  c.sink.kafka["transactional.id"] = "orders-instance-1"; // a fixed id is the user's
  BOOST_TEST(error_of(c) == "(valid)");
  c.sink.kafka["transactional.id"] = " ";
  BOOST_TEST(refused_option(c) == "sink.kafka.transactional.id");
  c.sink.kafka.erase("transactional.id");
  // A cooperative rebalance revokes partitions whose transaction others go on
  // writing into (and librdkafka#4059).
  c.source.kafka["partition.assignment.strategy"] = "Cooperative-Sticky";
  BOOST_TEST(refused_option(c) == "source.kafka.partition.assignment.strategy");
  BOOST_TEST(error_of(c).find("eager protocol") != std::string::npos, error_of(c));
  c.source.kafka["partition.assignment.strategy"] = "range,roundrobin";
  BOOST_TEST(error_of(c) == "(valid)");
  c.source.kafka["isolation.level"] = "read_uncommitted";
  BOOST_TEST(refused_option(c) == "source.kafka.isolation.level");
  c.source.kafka.erase("isolation.level");
  // One transaction per epoch: well within the broker's timeout for it.
  c.trigger.mode = trigger_options::kind::processing_time;
  c.trigger.interval = 6s;
  BOOST_TEST(refused_option(c) == "trigger.processingTime");
  BOOST_TEST(error_of(c).find("raise it to at least 12000") != std::string::npos,
             error_of(c));
  c.sink.kafka["transaction.timeout.ms"] = "60000";
  BOOST_TEST(error_of(c) == "(valid)");
  c.sink.kafka["transaction.timeout.ms"] = "20 seconds";
  BOOST_TEST(refused_option(c) == "sink.kafka.transaction.timeout.ms");
  c.trigger.mode = trigger_options::kind::continuous; // the implicit 1 s epoch
  c.trigger.interval = 1s;
  c.sink.kafka["transaction.timeout.ms"] = "1500";
  BOOST_TEST(refused_option(c) == "sink.kafka.transaction.timeout.ms");
  c.sink.kafka.erase("transaction.timeout.ms");
  c.trigger.mode = trigger_options::kind::once; // the whole run in one transaction
  BOOST_TEST(refused_option(c) == "trigger.once");
  c.trigger.mode = trigger_options::kind::available_now;
  BOOST_TEST(error_of(c) == "(valid)");
  // A stage that writes the records itself is outside the transaction.
  c.dedup.reset();
  c.route = {};
  c.route.delivered_by = "lake";
  BOOST_TEST(refused_option(c) == "guarantee");
  // At-least-once has no transactions: an id would do nothing.
  c = valid();
  c.sink.kafka["transactional.id"] = "x";
  BOOST_TEST(refused_option(c) == "sink.kafka.transactional.id");
  // A sink of its own (lake, ingest) never takes one.
  BOOST_TEST((c.guarantee == delivery_guarantee::at_least_once));
  c.guarantee = delivery_guarantee::exactly_once;
  BOOST_CHECK_THROW(validate(c.sink), config_error);
}

BOOST_AUTO_TEST_SUITE_END()
