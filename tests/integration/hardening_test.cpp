// The defects of issue 5, each with the test that fails without its fix:
// group membership, offsets librdkafka hides, refused records, restarts,
// unreachable clusters and failed commits.

#include "kafka/producer.hpp"
#include "tests/integration/pipeline_fixture.hpp"
#include "tests/support/raw_produce.hpp"

#include <sluice/errors.hpp>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <arpa/inet.h>
#include <atomic>
#include <fcntl.h>
#include <future>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {

/// A TCP listener on loopback that only counts the connections made to it.
class counting_listener {
public:
  counting_listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    BOOST_REQUIRE(::listen(fd_, 64) == 0);
    BOOST_REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    ::fcntl(fd_, F_SETFL, O_NONBLOCK);
  }
  ~counting_listener() {
    for (int c : accepted_)
      ::close(c);
    ::close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /// Connections made so far (the kernel queues them until accepted).
  int connections() {
    for (int c; (c = ::accept(fd_, nullptr, nullptr)) >= 0;)
      accepted_.push_back(c);
    return static_cast<int>(accepted_.size());
  }

private:
  int fd_ = -1;
  int port_ = 0;
  std::vector<int> accepted_;
};

std::int64_t committed_sum(const std::string& bootstrap, const std::string& group) {
  std::int64_t sum = 0;
  for (auto& [part, off] : committed_offsets(bootstrap, group, "orders"))
    sum += std::max<std::int64_t>(0, off);
  return sum;
}

} // namespace

BOOST_AUTO_TEST_SUITE(group)

BOOST_AUTO_TEST_CASE(
    a_member_holding_nothing_answers_its_empty_revoke_and_stops_at_once) {
  // One partition, two members: one of them holds nothing, and librdkafka's
  // eager protocol revokes an empty list from it at every rebalance.
  order_cluster oc(1);
  oc.produce(3000);
  auto [valid, malformed] = expected_events(oc);
  auto cfg = oc.config("it-idle", {"trigger.processingTime=200ms"});
  pipeline a(cfg), b(cfg);
  std::atomic<int> holders{0};
  auto watch = [&](pipeline& p) {
    auto held = std::make_shared<std::atomic<bool>>(false);
    p.on_progress([held, &holders](const epoch_progress& e) {
      if (!e.partitions.empty() && !held->exchange(true)) ++holders;
    });
  };
  watch(a);
  watch(b);
  background_run ra(a);
  std::this_thread::sleep_for(500ms); // b joins a formed group: a rebalance
  background_run rb(b);
  BOOST_REQUIRE(eventually(
      [&] { return committed_sum(oc.bootstrap, "it-idle") >= oc.count; }, 60s));
  auto sa = ra.stop_within(20s, "the member holding the partition");
  auto sb = rb.stop_within(20s, "the member holding nothing");
  BOOST_TEST(sa.ok, sa.error);
  BOOST_TEST(sb.ok, sb.error);
  BOOST_TEST(sa.input_rows + sb.input_rows >= oc.count);
  BOOST_TEST(check_outputs(oc, oc.bootstrap).size() == valid.size());
}

BOOST_AUTO_TEST_CASE(a_run_with_nothing_new_commits_nothing) {
  // The group already holds the end: a run that reads nothing has nothing to
  // commit. It used to commit the start again, and a commit refused then (a
  // rebalance, seen in CI when a member stopped right after its assignment)
  // failed the run although nothing would be read again.
  order_cluster oc(1);
  oc.produce(500);
  auto cfg = oc.config("it-nothing-new");
  auto first = pipeline(cfg).run();
  BOOST_REQUIRE_MESSAGE(first.ok, first.error);
  BOOST_REQUIRE(committed_sum(oc.bootstrap, "it-nothing-new") == 500);
  std::vector<rd_kafka_resp_err_t> refused(50, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS);
  rd_kafka_mock_push_request_errors_array(oc.cluster.handle(), api_key::offset_commit,
                                          refused.size(), refused.data());
  auto second = pipeline(cfg).run();
  BOOST_TEST(second.ok, second.error);
  BOOST_TEST(second.input_rows == 0);
  BOOST_TEST(committed_sum(oc.bootstrap, "it-nothing-new") == 500);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(hidden_offsets)

BOOST_AUTO_TEST_CASE(
    an_undecodable_record_set_goes_to_the_dlq_and_a_bounded_run_ends_past_it) {
  // One broker, so that it leads the partition the raw batch is written to.
  order_cluster oc(1, 1);
  oc.produce(500);
  auto [valid, malformed] = expected_events(oc);
  // Three records whose batch fails its CRC check, at the end of the log:
  // librdkafka reports one error at the batch's offset and, with nothing
  // after it, fetches the same batch again and again.
  auto bad = produce_corrupt_batch(
      oc.bootstrap, "orders", 0,
      {R"({"order_id":"x1"})", R"({"order_id":"x2"})", R"({"order_id":"x3"})"});
  BOOST_REQUIRE_EQUAL(bad, 500);
  pipeline p(oc.config("it-crc", {"source.kafka.check.crcs=true"}));
  background_run run(p);
  auto summary = run.wait_within(60s, "the bounded run");
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(check_outputs(oc, oc.bootstrap).size() == valid.size());
  std::set<std::string> consume_errors;
  std::size_t invalid = 0;
  for (auto& c : read_topic(oc.bootstrap, "orders-dlq")) {
    if (c.header_value("sluice.error.type") ==
        std::optional<std::string>("consume-error")) {
      consume_errors.insert(c.header_value("sluice.source.offset").value_or(""));
      BOOST_TEST(c.header_value("sluice.error.message").value_or("").find("CRC") !=
                 std::string::npos);
    } else {
      ++invalid;
    }
  }
  // Every offset of the bad set is in the DLQ, once.
  BOOST_TEST((consume_errors == std::set<std::string>{"500", "501", "502"}));
  BOOST_TEST(invalid == malformed.size());
  BOOST_TEST(committed_offsets(oc.bootstrap, "it-crc", "orders")[0] == 503);
}

BOOST_AUTO_TEST_CASE(a_failed_committed_offset_read_fails_the_run_instead_of_guessing) {
  order_cluster oc;
  oc.produce(2000);
  // Every OffsetFetch is refused: the start of each partition is unknown.
  std::vector<rd_kafka_resp_err_t> errors(200,
                                          RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
  rd_kafka_mock_push_request_errors_array(oc.cluster.handle(), api_key::offset_fetch,
                                          errors.size(), errors.data());
  pipeline p(oc.config("it-offsetfetch",
                       {"runtime.brokerTimeout=2s", "trigger.availableNow=false",
                        "trigger.processingTime=200ms"}));
  background_run run(p);
  auto summary = run.wait_within(60s, "a run that cannot read its committed offsets");
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("committed offset") != std::string::npos, summary.error);
  BOOST_TEST(summary.input_rows == 0); // nothing read from a guessed start
}

BOOST_AUTO_TEST_CASE(
    transient_offset_fetch_errors_are_retried_and_the_run_resumes_at_the_commit) {
  order_cluster oc;
  oc.produce(4000);
  {
    pipeline first(oc.config("it-resume"));
    auto summary = first.run();
    BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  }
  oc.produce(4000); // the same events again, at new offsets
  std::vector<rd_kafka_resp_err_t> errors(3,
                                          RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
  rd_kafka_mock_push_request_errors_array(oc.cluster.handle(), api_key::offset_fetch,
                                          errors.size(), errors.data());
  pipeline second(oc.config("it-resume"));
  auto summary = second.run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(summary.input_rows == 4000); // from the commit, not from the start rule
  BOOST_TEST(committed_offsets(oc.bootstrap, "it-resume", "orders") ==
             end_offsets(oc.bootstrap, "orders"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(refused_records)

BOOST_AUTO_TEST_CASE(a_record_the_sink_refuses_goes_to_the_dlq_and_the_run_goes_on) {
  testing::mock_cluster cluster(1);
  cluster.create_topic("events", 1);
  cluster.create_topic("events-out", 1);
  cluster.create_topic("events-dlq", 1);
  auto bootstrap = cluster.bootstrap_servers();
  {
    // The writer allows 3 MB messages; Sluice's sink keeps librdkafka's 1 MB.
    kafka::producer out(
        {{"bootstrap.servers", bootstrap}, {"message.max.bytes", "3000000"}}, "test");
    std::atomic<bool> done{false};
    std::string failure;
    auto* group = new kafka::delivery_group([&](const kafka::delivery_group& g) {
      if (g.error()) failure = *g.error();
      done = true;
    });
    for (int i = 0; i < 5; ++i) {
      std::string value = R"({"n":)" + std::to_string(i) + R"(,"pad":")" +
                          std::string(i == 2 ? 2000000 : 10, 'x') + "\"}";
      out.send(group, 0, "events", std::string("k") + std::to_string(i), value, {}, 0);
    }
    group->seal();
    out.flush(10s);
    BOOST_REQUIRE(eventually([&] { return done.load(); }, 10s));
    BOOST_REQUIRE_MESSAGE(failure.empty(), failure);
  }
  auto cfg = parse_pipeline_config(R"({
    "name": "refused",
    "source": {"kafka.bootstrap.servers": ")" +
                                   bootstrap + R"(", "subscribe": "events",
               "startingOffsets": "earliest", "kafka.session.timeout.ms": 6000,
               "kafka.fetch.wait.max.ms": 50},
    "route": {"topic": "events-out"},
    "sink": {"kafka.bootstrap.servers": ")" +
                                   bootstrap + R"("},
    "dlq": {"topic": "events-dlq"},
    "trigger": {"availableNow": true}
  })");
  pipeline p(cfg);
  auto summary = p.run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(summary.restarts == 0);
  BOOST_TEST(summary.output_rows == 4);
  BOOST_TEST(summary.dlq_rows == 1);
  auto outputs = read_topic(bootstrap, "events-out");
  BOOST_TEST(outputs.size() == 4u);
  auto dead = read_topic(bootstrap, "events-dlq");
  BOOST_REQUIRE_EQUAL(dead.size(), 1u);
  BOOST_TEST(dead[0].header_value("sluice.error.type").value_or("") == "sink-refused");
  BOOST_TEST(dead[0].header_value("sluice.source.offset").value_or("") == "2");
  BOOST_TEST(dead[0].header_value("sluice.error.value-omitted").has_value());
  BOOST_TEST(dead[0].key.value_or("") == "k2");
  BOOST_TEST(committed_offsets(bootstrap, "sluice-refused", "events")[0] == 5);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(restarts)

BOOST_AUTO_TEST_CASE(counts_balance_after_a_restart_and_no_epoch_count_is_negative) {
  order_cluster oc;
  oc.produce(20000);
  pipeline p(
      oc.config("it-counts", {"runtime.restartBackoff=20ms", "trigger.availableNow=false",
                              "trigger.processingTime=100ms"}));
  std::mutex m;
  std::vector<epoch_progress> epochs;
  p.on_progress([&](const epoch_progress& e) {
    std::lock_guard<std::mutex> guard{m};
    epochs.push_back(e);
  });
  std::atomic<int> thrown{0};
  fail_partition_1_twice(p, thrown);
  background_run run(p);
  BOOST_REQUIRE(eventually(
      [&] { return committed_sum(oc.bootstrap, "it-counts") >= oc.count; }, 60s));
  auto summary = run.stop_within(30s, "the run");
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(summary.restarts == 2);
  BOOST_TEST(summary.input_rows == 20000);
  BOOST_TEST(summary.input_rows == summary.output_rows + summary.dlq_rows);
  std::int64_t input = 0, processed = 0;
  for (auto& e : epochs) {
    BOOST_TEST(e.num_input_rows >= 0);
    BOOST_TEST(e.num_output_rows >= 0);
    BOOST_TEST(e.num_dlq_rows >= 0);
    for (auto& pp : e.partitions)
      BOOST_TEST(pp.num_input_rows >= 0);
    input += e.num_input_rows;
    processed += e.num_processed_rows;
  }
  BOOST_TEST(input == 20000);
  BOOST_TEST(processed == 20000);
  // The failed chains' outputs all landed before their replays'.
  BOOST_TEST(max_rewinds_per_key(oc.bootstrap) <= 2);
}

BOOST_AUTO_TEST_CASE(the_restart_budget_counts_only_failures_within_the_window) {
  order_cluster oc;
  oc.produce(4000);
  // A budget of one restart, but failures 200, 400 and 800 ms apart: each
  // one is alone in its 100 ms window, so the run goes on.
  pipeline p(
      oc.config("it-window", {"runtime.restartBudget=1", "runtime.restartWindow=100ms",
                              "runtime.restartBackoff=200ms"}));
  std::atomic<int> thrown{0};
  p.set_stage([&](record_batch& b) {
    if (b.partition == 0 && thrown.load() < 3) {
      ++thrown;
      throw std::runtime_error("transient failure");
    }
  });
  auto summary = p.run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(summary.restarts == 3);
  BOOST_TEST(committed_offsets(oc.bootstrap, "it-window", "orders") ==
             end_offsets(oc.bootstrap, "orders"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(unreachable)

BOOST_AUTO_TEST_CASE(
    a_bounded_run_against_an_unreachable_cluster_fails_within_broker_timeout) {
  order_cluster oc; // only for its config; nothing listens on port 1
  auto cfg = oc.config("it-down", {"runtime.brokerTimeout=2s",
                                   "source.kafka.bootstrap.servers=127.0.0.1:1",
                                   "sink.kafka.bootstrap.servers=127.0.0.1:1"});
  auto started = std::chrono::steady_clock::now();
  pipeline p(cfg);
  background_run run(p);
  auto summary = run.wait_within(30s, "a run against an unreachable cluster");
  auto took = std::chrono::steady_clock::now() - started;
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("runtime.brokerTimeout") != std::string::npos,
             summary.error);
  BOOST_TEST(took < scaled(15s));
}

BOOST_AUTO_TEST_CASE(a_continuous_run_reports_an_unreachable_cluster_then_fails) {
  order_cluster oc;
  // Long enough for the idle heartbeat (10 s) to report the cluster down again: a
  // run that was never assigned used to go silent after the first report.
  auto cfg =
      oc.config("it-down", {"runtime.brokerTimeout=22s", "trigger.availableNow=false",
                            "trigger.processingTime=200ms",
                            "source.kafka.bootstrap.servers=127.0.0.1:1",
                            "sink.kafka.bootstrap.servers=127.0.0.1:1"});
  pipeline p(cfg);
  std::mutex m;
  std::vector<std::string> messages;
  p.on_progress([&](const epoch_progress& e) {
    std::lock_guard<std::mutex> guard{m};
    messages.push_back(e.message);
  });
  background_run run(p);
  auto summary = run.wait_within(60s, "a continuous run against an unreachable cluster");
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("cannot reach") != std::string::npos, summary.error);
  std::lock_guard<std::mutex> guard{m};
  auto down_reports = std::count_if(messages.begin(), messages.end(), [](auto& s) {
    return s.find("cannot reach") != std::string::npos;
  });
  // At the start, then at 10 s and 20 s.
  BOOST_TEST(down_reports >= 3, down_reports << " reports: the run went silent");
}

BOOST_AUTO_TEST_CASE(a_continuous_run_whose_source_alone_is_unreachable_fails) {
  // The sink is up: only the consumer can notice, and librdkafka tells a
  // consumer that every broker is down through its error callback alone.
  order_cluster oc;
  auto cfg = oc.config("it-source-down",
                       {"runtime.brokerTimeout=2s", "trigger.availableNow=false",
                        "trigger.processingTime=200ms",
                        "source.kafka.bootstrap.servers=127.0.0.1:1"});
  pipeline p(cfg);
  background_run run(p);
  auto summary = run.wait_within(30s, "a continuous run whose source is unreachable");
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("cannot reach the source cluster at 127.0.0.1:1") !=
                 std::string::npos,
             summary.error);
}

BOOST_AUTO_TEST_CASE(a_failed_final_commit_fails_the_run) {
  order_cluster oc;
  oc.produce(2000);
  auto [valid, malformed] = expected_events(oc);
  // No epoch ends before the stop: everything is committed at shutdown only.
  pipeline p(oc.config("it-final",
                       {"trigger.availableNow=false", "trigger.processingTime=1 hour"}));
  background_run run(p);
  BOOST_REQUIRE(eventually(
      [&] { return check_outputs(oc, oc.bootstrap).size() == valid.size(); }, 60s));
  for (int id = 1; id <= 3; ++id)
    rd_kafka_mock_broker_set_down(oc.cluster.handle(), id);
  auto summary = run.stop_within(60s, "a run whose final commit fails");
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("final offset commit failed") != std::string::npos,
             summary.error);
  BOOST_TEST(summary.error.find("will be read again") != std::string::npos,
             summary.error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fidelity)

BOOST_AUTO_TEST_CASE(
    without_a_schema_values_pass_byte_for_byte_and_tombstones_follow_the_policy) {
  testing::mock_cluster cluster(1);
  for (auto t : {"raw", "raw-out", "raw-dlq"})
    cluster.create_topic(t, 1);
  auto bootstrap = cluster.bootstrap_servers();
  // Values a re-serialiser would change: 1e3, a number beyond any integer
  // type, a duplicate key, odd spacing; and a tombstone.
  const std::vector<std::optional<std::string>> values = {
      std::string(R"({"a":1e3,"b":123456789012345678901234567890,"c":1,"c":2})"),
      std::nullopt,
      std::string("{ \"d\" : [ 1.50 , -0.0 ] ,\"e\":\"\\u00e9\" }"),
  };
  {
    kafka::producer out({{"bootstrap.servers", bootstrap}}, "test");
    std::atomic<bool> done{false};
    auto* group =
        new kafka::delivery_group([&](const kafka::delivery_group&) { done = true; });
    for (std::size_t i = 0; i < values.size(); ++i)
      out.send(group, 0, "raw", "k" + std::to_string(i),
               values[i] ? std::string_view(*values[i]) : std::string_view(), {}, 0);
    group->seal();
    out.flush(10s);
    BOOST_REQUIRE(eventually([&] { return done.load(); }, 10s));
  }
  auto config = [&](const std::string& group, const std::string& policy) {
    return parse_pipeline_config(R"({
      "name": "fidelity",
      "source": {"kafka.bootstrap.servers": ")" +
                                 bootstrap + R"(", "subscribe": "raw",
                 "startingOffsets": "earliest", "kafka.group.id": ")" +
                                 group + R"(",
                 "kafka.session.timeout.ms": 6000, "kafka.fetch.wait.max.ms": 50},
      "parse": {"tombstones": ")" +
                                 policy + R"("},
      "route": {"topic": "raw-out"},
      "sink": {"kafka.bootstrap.servers": ")" +
                                 bootstrap + R"("},
      "dlq": {"topic": "raw-dlq"},
      "trigger": {"availableNow": true}
    })");
  };
  pipeline pass(config("it-pass", "pass"));
  auto s1 = pass.run();
  BOOST_REQUIRE_MESSAGE(s1.ok, s1.error);
  auto out = read_topic(bootstrap, "raw-out");
  BOOST_REQUIRE_EQUAL(out.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    BOOST_TEST(out[i].key.value_or("") == "k" + std::to_string(i));
    BOOST_TEST((out[i].value == values[i]), "record " << i << " changed");
  }
  BOOST_TEST(read_topic(bootstrap, "raw-dlq").empty());

  pipeline drop(config("it-drop", "drop"));
  auto s2 = drop.run();
  BOOST_REQUIRE_MESSAGE(s2.ok, s2.error);
  BOOST_TEST(s2.dropped_rows == 1);
  BOOST_TEST(s2.output_rows == 2);
  BOOST_TEST(s2.input_rows == s2.output_rows + s2.dlq_rows + s2.dropped_rows);
  BOOST_TEST(read_topic(bootstrap, "raw-out").size() == values.size() + 2);
  BOOST_TEST(committed_offsets(bootstrap, "it-drop", "raw")[0] == 3);
}

BOOST_AUTO_TEST_CASE(a_bounded_run_on_a_topic_the_cluster_does_not_have_fails_at_once) {
  testing::mock_cluster cluster(1);
  cluster.create_topic("out", 1);
  // What a cluster without topic auto-creation answers for an unknown topic.
  rd_kafka_mock_topic_set_error(cluster.handle(), "ghost",
                                RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  auto bootstrap = cluster.bootstrap_servers();
  auto started = std::chrono::steady_clock::now();
  pipeline p(parse_pipeline_config(R"({
    "source": {"kafka.bootstrap.servers": ")" +
                                   bootstrap +
                                   R"(", "subscribe": "ghost"},
    "route": {"topic": "out"},
    "sink": {"kafka.bootstrap.servers": ")" +
                                   bootstrap +
                                   R"("},
    "trigger": {"availableNow": true}, "runtime": {"brokerTimeout": "60 seconds"}})"));
  auto summary = p.run();
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("topic `ghost` does not exist at " + bootstrap) !=
                 std::string::npos,
             summary.error);
  BOOST_TEST(summary.error.find("check the source's topics") != std::string::npos,
             summary.error);
  // Not retried until runtime.brokerTimeout: the answer will not change.
  BOOST_TEST((std::chrono::steady_clock::now() - started < scaled(20s)));
}

BOOST_AUTO_TEST_CASE(a_bad_client_property_is_refused_before_any_client_connects) {
  // A listener that counts connections stands in for a cluster.
  counting_listener cluster;
  auto bootstrap = cluster.address();
  auto config = [&](const std::string& override) {
    return parse_pipeline_config(R"({
      "source": {"kafka.bootstrap.servers": ")" +
                                     bootstrap +
                                     R"(", "subscribe": "in"},
      "route": {"topic": "out"},
      "sink": {"kafka.bootstrap.servers": ")" +
                                     bootstrap + R"("}})",
                                 {override});
  };
  auto refusal = [&](const std::string& override) -> std::string {
    try {
      pipeline p(config(override));
    } catch (const config_error& e) {
      return e.what();
    }
    return "(accepted)";
  };
  // A value librdkafka rejects on its own, and one it rejects only in
  // combination with the fetch sizes Sluice derives.
  auto e = refusal("source.kafka.fetch.wait.max.ms=soon");
  BOOST_TEST(e.find("option `source.kafka.fetch.wait.max.ms`: rejected by librdkafka") !=
                 std::string::npos,
             e);
  e = refusal("source.kafka.fetch.max.bytes=1000");
  BOOST_TEST(e.find("option `source.kafka`: rejected by librdkafka: `fetch.max.bytes` "
                    "must be >= `message.max.bytes`") != std::string::npos,
             e);
  e = refusal("sink.kafka.batch.num.messages=0");
  BOOST_TEST(e.find("option `sink.kafka.batch.num.messages`") != std::string::npos, e);
  // Nothing reached the cluster: neither client was ever created.
  BOOST_TEST(cluster.connections() == 0);
  // While a pipeline that is accepted connects at once (the check above can fail).
  pipeline accepted(config("source.kafka.fetch.wait.max.ms=10"));
  BOOST_TEST(eventually([&] { return cluster.connections() > 0; }, 10s));
}

BOOST_AUTO_TEST_SUITE_END()
