// Exactly-once on the embedded broker: what its hollow transactions can show
// (aborts and the rewinds that follow them, counts taken from committed
// transactions only, refused records). What read_committed readers see, and
// the group's offsets, are proven on real Kafka (tests/kafka/exactly_once_test.py).

#include "tests/integration/pipeline_fixture.hpp"

#include <sluice/pipeline.hpp>

#include <boost/test/unit_test.hpp>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <mutex>
#include <vector>

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(exactly_once)

BOOST_AUTO_TEST_CASE(a_failed_chain_aborts_the_transaction_and_every_partition_rewinds) {
  order_cluster oc;
  oc.produce(20000);
  pipeline p(oc.config("it-eos-rewind",
                       {"guarantee=exactly-once", "runtime.restartBackoff=20ms",
                        "trigger.availableNow=false", "trigger.processingTime=100ms"}));
  std::mutex m;
  std::vector<epoch_progress> epochs;
  std::atomic<std::int64_t> processed{0};
  p.on_progress([&](const epoch_progress& e) {
    std::lock_guard<std::mutex> guard{m};
    epochs.push_back(e);
    processed += e.num_processed_rows;
  });
  // Every partition's records are in the open transaction each time.
  std::atomic<int> thrown{0};
  fail_partition_1_twice(p, thrown);
  background_run run(p);
  // Counted once their transaction commits: exactly the input, once.
  BOOST_REQUIRE(eventually([&] { return processed.load() >= oc.count; }, 60s));
  auto summary = run.stop_within(30s, "the run");
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(thrown.load() == 2);
  BOOST_TEST(summary.transactions_aborted == 2);
  BOOST_TEST(summary.transactions_committed >= 1);
  // Each abort restarts every partition, not just the failed one.
  BOOST_TEST(summary.restarts >= 2 * 4);
  BOOST_TEST(summary.input_rows == 20000);
  BOOST_TEST(summary.input_rows == summary.output_rows + summary.dlq_rows);
  std::lock_guard<std::mutex> guard{m};
  std::int64_t input = 0, committed = 0, aborted = 0;
  for (auto& e : epochs) {
    BOOST_TEST(e.guarantee == "exactly-once");
    BOOST_TEST(e.num_output_rows >= 0);
    input += e.num_input_rows;
    committed += e.transactions_committed;
    aborted += e.transactions_aborted;
  }
  BOOST_TEST(input == 20000);
  BOOST_TEST(processed.load() == 20000);
  BOOST_TEST(aborted == 2);
  BOOST_TEST(committed == summary.transactions_committed);
}

BOOST_AUTO_TEST_CASE(a_record_the_broker_refuses_aborts_and_goes_to_the_dlq_when_read) {
  order_cluster oc(1, 1);
  oc.malformed_fraction = 0;
  oc.produce(2000);
  // The first Produce request of the run is refused for good: its records
  // fail, and the transaction they were in can only be aborted.
  rd_kafka_resp_err_t refused = RD_KAFKA_RESP_ERR_INVALID_RECORD;
  rd_kafka_mock_push_request_errors_array(oc.cluster.handle(), api_key::produce, 1,
                                          &refused);
  pipeline p(oc.config("it-eos-refused", {"guarantee=exactly-once"}));
  auto summary = p.run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  // librdkafka may need a second abort: the refused request left a gap in the
  // producer's sequence numbers, which only a new epoch closes.
  BOOST_TEST(summary.transactions_aborted >= 1);
  BOOST_TEST(summary.transactions_aborted <= 3);
  BOOST_TEST(summary.input_rows == 2000);
  BOOST_TEST(summary.dlq_rows >= 1);
  BOOST_TEST(summary.input_rows == summary.output_rows + summary.dlq_rows);
  // The embedded broker shows aborted records too: each aborted attempt's
  // DLQ records, then the committed ones.
  auto dead = read_topic(oc.bootstrap, "orders-dlq");
  BOOST_TEST(static_cast<std::int64_t>(dead.size()) >= summary.dlq_rows);
  for (auto& d : dead) {
    BOOST_TEST(d.header_value("sluice.error.type").value_or("") == "sink-refused");
    BOOST_TEST(d.header_value("sluice.error.message").value_or("").find("refused") !=
               std::string::npos);
  }
}

namespace {

/// A continuous exactly-once run of 5,000 events whose first `api` request
/// (EndTxn: a commit; Produce: a write) the broker answers with `error`;
/// `processed` counts the rows of the committed epochs' progress reports.
run_summary run_fenced_at(std::atomic<std::int64_t>& processed, order_cluster& oc,
                          std::int16_t api, rd_kafka_resp_err_t error,
                          std::vector<std::string> overrides) {
  oc.produce(5000);
  rd_kafka_mock_push_request_errors_array(oc.cluster.handle(), api, 1, &error);
  for (auto o : {"guarantee=exactly-once", "trigger.availableNow=false",
                 "trigger.processingTime=100ms"})
    overrides.push_back(o);
  pipeline p(oc.config("it-eos-fenced", overrides));
  p.on_progress([&](const epoch_progress& e) { processed += e.num_processed_rows; });
  background_run run(p);
  BOOST_TEST(eventually(
      [&] {
        return processed.load() >= oc.count ||
               run.result.wait_for(0s) == std::future_status::ready;
      },
      60s));
  return run.stop_within(30s, "the run");
}

} // namespace

// The coordinator fences a producer whose transaction outlived
// transaction.timeout.ms (a broker down for longer, the process stopped): it
// aborts the transaction and bumps the producer's epoch. The next commit
// (EndTxn) or write (Produce) is refused; either way a new producer takes over.
BOOST_AUTO_TEST_CASE(a_fenced_producer_is_renewed_and_the_run_goes_on) {
  for (auto [api, error] :
       {std::pair{api_key::end_txn, RD_KAFKA_RESP_ERR_PRODUCER_FENCED},
        std::pair{api_key::produce, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH}}) {
    BOOST_TEST_CONTEXT("refused: API " << api) {
      order_cluster oc;
      std::atomic<std::int64_t> processed{0};
      auto summary = run_fenced_at(processed, oc, api, error, {});
      BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
      BOOST_TEST(processed.load() == 5000);
      BOOST_TEST(summary.producer_replacements == 1);
      BOOST_TEST(summary.transactions_aborted >= 1);
      BOOST_TEST(summary.transactions_committed >= 1);
      // Counted from committed transactions only: the input once.
      BOOST_TEST(summary.input_rows == 5000);
      BOOST_TEST(summary.input_rows == summary.output_rows + summary.dlq_rows);
      // The embedded broker keeps aborted records too: every event is there,
      // each as it should be.
      auto outputs = check_outputs(oc, oc.bootstrap);
      auto dead = check_dlq(oc, oc.bootstrap);
      BOOST_TEST(outputs.size() + dead.size() == 5000u);
    }
  }
}

// With a transactional id of the user's, the fence may come from another
// running instance with that id: renewing would fence it back. The run ends.
BOOST_AUTO_TEST_CASE(a_fenced_producer_with_a_fixed_id_ends_the_run_naming_the_option) {
  order_cluster oc;
  std::atomic<std::int64_t> processed{0};
  auto summary =
      run_fenced_at(processed, oc, api_key::end_txn, RD_KAFKA_RESP_ERR_PRODUCER_FENCED,
                    {"sink.kafka.transactional.id=it-eos-fixed",
                     // a slow start must not make it look old
                     "sink.kafka.transaction.timeout.ms=60000"});
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("sink.kafka.transactional.id") != std::string::npos,
             summary.error);
  BOOST_TEST(summary.producer_replacements == 0);
  BOOST_TEST(processed.load() == 0); // nothing committed
}

BOOST_AUTO_TEST_SUITE_END()
