// The fault matrix: a pipeline runs while the embedded broker fails in one
// way; afterwards nothing is lost and the group holds the end offsets.

#include "tests/integration/pipeline_fixture.hpp"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <future>
#include <thread>

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {

bool all_committed(const order_cluster& oc, const std::string& group) {
  return committed_offsets(oc.bootstrap, group, "orders") ==
         end_offsets(oc.bootstrap, "orders");
}

/// Runs the priority pipeline continuously over 2 × 10,000 events; `inject`
/// runs once the first half is partly committed, before the second half is
/// written. Checks that every event reached its topic or the DLQ and that
/// the committed offsets reach the end of the input; returns the run's summary.
run_summary survives(const std::string& group,
                     const std::function<void(order_cluster&)>& before,
                     const std::function<void(order_cluster&)>& inject) {
  order_cluster oc;
  oc.produce(10000);
  auto [valid, malformed] = expected_events(oc);
  before(oc);
  pipeline p(
      oc.config(group, {"trigger.availableNow=false", "trigger.processingTime=200ms",
                        "runtime.restartBackoff=50ms"}));
  auto result = std::async(std::launch::async, [&] { return p.run(); });
  auto committed_some = [&] {
    std::int64_t sum = 0;
    for (auto& [part, off] : committed_offsets(oc.bootstrap, group, "orders"))
      sum += std::max<std::int64_t>(0, off);
    return sum > 0;
  };
  bool started = eventually(committed_some, 60s);
  inject(oc);
  oc.produce(10000); // the same events again, at new offsets
  bool finished = eventually([&] { return all_committed(oc, group); }, 90s);
  p.stop();
  auto summary = result.get();
  BOOST_REQUIRE(started);
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(finished);
  BOOST_TEST(all_committed(oc, group));
  BOOST_TEST(check_outputs(oc, oc.bootstrap).size() == valid.size());
  BOOST_TEST(check_dlq(oc, oc.bootstrap).size() == malformed.size());
  BOOST_TEST(summary.input_rows == summary.output_rows + summary.dlq_rows);
  return summary;
}

void push_errors(order_cluster& oc, std::int16_t api, std::size_t n,
                 rd_kafka_resp_err_t err) {
  std::vector<rd_kafka_resp_err_t> errors(n, err);
  rd_kafka_mock_push_request_errors_array(oc.cluster.handle(), api, errors.size(),
                                          errors.data());
}

void nothing(order_cluster&) {}

/// A cluster of its own for the sink, with the order pipeline's outputs and
/// DLQ: faults pushed into it meet only the pipeline's producer.
struct sink_cluster : testing::mock_cluster {
  sink_cluster() {
    for (auto t : {"orders-high", "orders-medium", "orders-low"})
      create_topic(t, 4);
    create_topic("orders-dlq", 2);
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(faults)

BOOST_AUTO_TEST_CASE(fetch_requests_refused) {
  survives("it-fault-fetch", nothing, [](order_cluster& oc) {
    push_errors(oc, api_key::fetch, 20, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
  });
}

BOOST_AUTO_TEST_CASE(produce_requests_refused) {
  survives("it-fault-produce", nothing, [](order_cluster& oc) {
    push_errors(oc, api_key::produce, 20, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  });
}

// A write of the idempotent producer refused as out of sequence: librdkafka
// calls that a desynchronisation and ends that producer for good (a fatal
// error; a broker failover can cause it). The sink replaces its producer and
// the run goes on; the batches that were out are written again, in order.
// The sink is a cluster of its own, so that the error meets no other
// producer; it comes once every output partition was written (the mock takes
// any sequence as a producer's first on a partition), in the middle of a
// rate-limited run over 20,000 distinct events (5,000 a second).
BOOST_AUTO_TEST_CASE(a_fatal_producer_error_replaces_the_producer) {
  order_cluster oc;
  sink_cluster sink;
  auto sink_bootstrap = sink.bootstrap_servers();
  oc.produce(20000);
  auto [valid, malformed] = expected_events(oc);
  const std::string group = "it-fault-fatal";
  pipeline p(oc.config(group,
                       {"trigger.availableNow=false", "trigger.processingTime=100ms",
                        "source.maxOffsetsPerTrigger=500", "runtime.restartBackoff=50ms",
                        "sink.kafka.message.timeout.ms=15000"},
                       sink_bootstrap));
  auto result = std::async(std::launch::async, [&] { return p.run(); });
  auto committed_sum = [&] {
    std::int64_t sum = 0;
    for (auto& [part, off] : committed_offsets(oc.bootstrap, group, "orders"))
      sum += std::max<std::int64_t>(0, off);
    return sum;
  };
  bool some = eventually([&] { return committed_sum() >= 4000; }, 60s);
  auto before = committed_sum();
  rd_kafka_resp_err_t refusal = RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
  rd_kafka_mock_push_request_errors_array(sink.handle(), api_key::produce, 1, &refusal);
  bool finished = eventually([&] { return all_committed(oc, group); }, 90s);
  p.stop();
  auto summary = result.get();
  BOOST_REQUIRE(some);
  BOOST_TEST_MESSAGE("the fault came with " << before << " of 20000 committed");
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(before < 20000); // it came mid-run
  BOOST_TEST(finished);
  BOOST_TEST(summary.producer_replacements == 1);
  BOOST_TEST(summary.restarts >= 1); // the refused batch's chain, at least
  BOOST_TEST(summary.input_rows == summary.output_rows + summary.dlq_rows);
  // Every event, in order per key (a replay may repeat a tail).
  BOOST_TEST(check_outputs(oc, sink_bootstrap).size() == valid.size());
  BOOST_TEST(check_dlq(oc, sink_bootstrap).size() == malformed.size());
}

// A fatal error a new producer would meet too (an ACL refusing the
// producer id, for one) is not replaced: the run ends at once, naming it,
// not after every partition spent its restart budget.
BOOST_AUTO_TEST_CASE(a_fatal_producer_error_a_new_producer_would_meet_ends_the_run) {
  order_cluster oc;
  sink_cluster sink;
  oc.produce(2000);
  rd_kafka_resp_err_t refusal = RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED;
  rd_kafka_mock_push_request_errors_array(sink.handle(), api_key::init_producer_id, 1,
                                          &refusal);
  pipeline p(oc.config("it-fault-fatal-acl", {"runtime.restartBackoff=50ms"},
                       sink.bootstrap_servers()));
  auto summary = p.run();
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("fatal error") != std::string::npos, summary.error);
  BOOST_TEST(summary.error.find("a new producer would meet it too") != std::string::npos,
             summary.error);
  BOOST_TEST(summary.producer_replacements == 0);
  BOOST_TEST(summary.restarts <= 4, summary.restarts); // not the budget of every chain
  BOOST_TEST(summary.output_rows == 0);
}

BOOST_AUTO_TEST_CASE(offset_commits_refused) {
  survives("it-fault-commit", nothing, [](order_cluster& oc) {
    push_errors(oc, api_key::offset_commit, 5,
                RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);
  });
}

BOOST_AUTO_TEST_CASE(offset_fetches_refused_at_start) {
  survives(
      "it-fault-offsetfetch",
      [](order_cluster& oc) {
        push_errors(oc, api_key::offset_fetch, 3,
                    RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
      },
      nothing);
}

BOOST_AUTO_TEST_CASE(a_broker_down_and_up_again) {
  // Broker 1 leads some input and some output partitions: source and sink.
  survives("it-fault-down", nothing, [](order_cluster& oc) {
    rd_kafka_mock_broker_set_down(oc.cluster.handle(), 1);
    std::this_thread::sleep_for(2s); // the outage itself
    rd_kafka_mock_broker_set_up(oc.cluster.handle(), 1);
  });
}

BOOST_AUTO_TEST_CASE(partition_leaders_move) {
  survives("it-fault-leader", nothing, [](order_cluster& oc) {
    for (int p = 0; p < 4; ++p) {
      rd_kafka_mock_partition_set_leader(oc.cluster.handle(), "orders", p,
                                         1 + (p + 1) % 3);
      rd_kafka_mock_partition_set_leader(oc.cluster.handle(), "orders-low", p,
                                         1 + (p + 2) % 3);
    }
  });
}

BOOST_AUTO_TEST_SUITE_END()
