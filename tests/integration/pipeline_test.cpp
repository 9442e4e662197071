#include "tests/integration/pipeline_fixture.hpp"

#include <sluice/errors.hpp>

#include <atomic>
#include <thread>

using namespace sluice;
using namespace sluice::testing;

BOOST_AUTO_TEST_SUITE(routing)

BOOST_AUTO_TEST_CASE(every_valid_record_reaches_its_topic_and_every_invalid_one_the_dlq) {
  order_cluster oc;
  oc.produce(100000);
  auto [valid, malformed] = expected_events(oc);
  BOOST_REQUIRE(malformed.size() > 1000u);

  pipeline p(oc.config("it-routing"));
  auto summary = p.run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(summary.input_rows == 100000);
  BOOST_TEST(summary.output_rows == static_cast<std::int64_t>(valid.size()));
  BOOST_TEST(summary.dlq_rows == static_cast<std::int64_t>(malformed.size()));
  BOOST_TEST(summary.restarts == 0);

  // A clean run writes each event exactly once.
  auto outputs = check_outputs(oc, oc.bootstrap);
  BOOST_TEST(outputs.size() == valid.size());
  for (auto& [i, n] : outputs)
    BOOST_TEST(n == 1, "event " << i << " written " << n << " times");
  auto dead = check_dlq(oc, oc.bootstrap);
  BOOST_TEST(dead.size() == malformed.size());
  for (auto& [i, n] : dead)
    BOOST_TEST(n == 1, "event " << i << " dead-lettered " << n << " times");

  // The group's committed offsets are the end of every input partition.
  BOOST_TEST(committed_offsets(oc.bootstrap, "it-routing", "orders") ==
             end_offsets(oc.bootstrap, "orders"));
}

BOOST_AUTO_TEST_CASE(progress_reports_count_what_was_read) {
  order_cluster oc;
  oc.produce(20000);
  auto cfg = oc.config("it-progress",
                       {"trigger.availableNow=false", "trigger.processingTime=200ms"});
  cfg.trigger.mode = trigger_options::kind::processing_time;
  pipeline p(cfg);
  std::mutex m;
  std::vector<epoch_progress> epochs;
  std::atomic<std::int64_t> processed{0};
  // Listeners, in the order added: one that throws stops neither the next
  // nor the commits.
  std::vector<std::int64_t> first_seen;
  p.on_progress([&](const epoch_progress& e) {
    std::lock_guard<std::mutex> guard{m};
    first_seen.push_back(e.batch_id);
  });
  p.on_progress(
      [](const epoch_progress&) { throw std::runtime_error("a broken listener"); });
  p.on_progress([&](const epoch_progress& e) {
    std::lock_guard<std::mutex> guard{m};
    epochs.push_back(e);
    processed += e.num_processed_rows;
  });
  std::thread stopper([&] {
    eventually([&] { return processed.load() >= 20000; }, std::chrono::seconds(60));
    p.stop();
  });
  auto summary = p.run();
  stopper.join();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  std::int64_t input = 0, outputs = 0, dlq = 0;
  for (std::size_t k = 0; k < epochs.size(); ++k) {
    BOOST_TEST(epochs[k].batch_id == static_cast<std::int64_t>(k));
    BOOST_TEST(epochs[k].id == epochs[0].id);
    input += epochs[k].num_input_rows;
    outputs += epochs[k].num_output_rows;
    dlq += epochs[k].num_dlq_rows;
  }
  BOOST_TEST(input == 20000);
  BOOST_TEST(outputs + dlq == 20000);
  BOOST_TEST(first_seen.size() == epochs.size());
  BOOST_TEST(committed_offsets(oc.bootstrap, "it-progress", "orders") ==
             end_offsets(oc.bootstrap, "orders"));
  BOOST_TEST(dlq == summary.dlq_rows);
  // latestOffset is the broker's high watermark from the first report on,
  // even for a partition nothing was fetched from yet (all data was there).
  for (auto& e : epochs)
    for (auto& pp : e.partitions)
      BOOST_TEST(pp.latest_offset == end_offsets(oc.bootstrap, "orders")[pp.partition],
                 "epoch " << e.batch_id << " partition " << pp.partition);
  // The last report ends at the committed end offsets, with no lag left.
  auto& last = epochs.back();
  auto ends = end_offsets(oc.bootstrap, "orders");
  BOOST_TEST(last.partitions.size() == ends.size());
  for (auto& pp : last.partitions) {
    BOOST_TEST(pp.end_offset == ends[pp.partition]);
    BOOST_TEST(pp.latest_offset == ends[pp.partition]);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(restart)

BOOST_AUTO_TEST_CASE(a_run_stopped_midway_and_restarted_loses_and_repeats_nothing) {
  order_cluster oc;
  oc.produce(40000);
  auto [valid, malformed] = expected_events(oc);

  // First run: continuous, slowed by a stage so that the stop lands midway.
  auto cfg = oc.config("it-restart",
                       {"trigger.availableNow=false", "runtime.maxBatchRecords=100",
                        "runtime.maxInFlightPerPartition=500"});
  run_summary first;
  std::atomic<std::int64_t> first_last_batch{-1}, second_first_batch{-1};
  {
    pipeline p(cfg);
    p.on_progress([&](const epoch_progress& e) { first_last_batch = e.batch_id; });
    // 100 records per 20 ms per partition: the first commit (1 s) lands well
    // before the end. (2 ms was enough only while a partition's prefetch
    // stalled for half a second at a time, which 0.3.1 fixed.)
    p.set_stage([](record_batch&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    });
    std::thread runner([&] { first = p.run(); });
    auto committed_some = [&] {
      std::int64_t sum = 0;
      for (auto& [part, off] : committed_offsets(oc.bootstrap, "it-restart", "orders"))
        sum += std::max<std::int64_t>(0, off);
      return sum >= 8000;
    };
    bool midway = eventually(committed_some, std::chrono::seconds(60));
    p.stop();
    runner.join();
    BOOST_REQUIRE(midway);
  }
  BOOST_REQUIRE_MESSAGE(first.ok, first.error);
  BOOST_REQUIRE_MESSAGE(first.input_rows < 40000, "the first run was not stopped midway");

  // Second run: picks up at the committed offsets and finishes.
  pipeline p(oc.config("it-restart"));
  p.on_progress([&](const epoch_progress& e) {
    std::int64_t none = -1;
    second_first_batch.compare_exchange_strong(none, e.batch_id);
  });
  auto second = p.run();
  // Epoch numbering goes on across the restart, from the commit metadata.
  BOOST_TEST(first_last_batch.load() >= 0);
  BOOST_TEST(second_first_batch.load() > first_last_batch.load());
  BOOST_REQUIRE_MESSAGE(second.ok, second.error);
  BOOST_TEST(first.input_rows + second.input_rows == 40000);

  // A graceful stop drains and commits exactly: nothing lost, nothing twice.
  auto outputs = check_outputs(oc, oc.bootstrap);
  BOOST_TEST(outputs.size() == valid.size());
  for (auto& [i, n] : outputs)
    BOOST_TEST(n == 1, "event " << i << " written " << n << " times");
  auto dead = check_dlq(oc, oc.bootstrap);
  BOOST_TEST(dead.size() == malformed.size());
  BOOST_TEST(committed_offsets(oc.bootstrap, "it-restart", "orders") ==
             end_offsets(oc.bootstrap, "orders"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(supervision)

BOOST_AUTO_TEST_CASE(a_failed_chain_is_restarted_from_its_watermark_and_nothing_is_lost) {
  order_cluster oc;
  oc.produce(20000);
  auto [valid, malformed] = expected_events(oc);
  pipeline p(oc.config("it-supervise", {"runtime.restartBackoff=20ms"}));
  std::atomic<bool> thrown{false};
  p.set_stage([&](record_batch& b) {
    bool holds = b.partition == 1 && b.begin_offset <= 2000 && 2000 < b.end_offset;
    if (holds && !thrown.exchange(true))
      throw std::runtime_error("injected failure at orders/1@2000");
  });
  auto summary = p.run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(thrown.load());
  BOOST_TEST(summary.restarts == 1);
  // At least once: every event is there; a replayed tail may repeat some.
  auto outputs = check_outputs(oc, oc.bootstrap);
  BOOST_TEST(outputs.size() == valid.size());
  auto dead = check_dlq(oc, oc.bootstrap);
  BOOST_TEST(dead.size() == malformed.size());
  BOOST_TEST(committed_offsets(oc.bootstrap, "it-supervise", "orders") ==
             end_offsets(oc.bootstrap, "orders"));
}

// The chain fails on its partition's last batch: by then its consumer has
// read to the end of the bounded run and paused the partition. The restart
// seeks the paused partition back to the watermark and resumes it; the
// replay must read those offsets again and the run end.
BOOST_AUTO_TEST_CASE(
    a_chain_failing_after_its_partition_was_read_to_the_end_is_restarted) {
  order_cluster oc;
  oc.produce(8000);
  auto ends = end_offsets(oc.bootstrap, "orders");
  pipeline p(oc.config("it-last-batch", {"runtime.restartBackoff=20ms"}));
  std::atomic<bool> thrown{false};
  p.set_stage([&](record_batch& b) {
    if (b.partition == 0 && b.end_offset == ends.at(0) && !thrown.exchange(true))
      throw std::runtime_error("injected failure on the last batch of orders/0");
  });
  auto summary = p.run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(thrown.load());
  BOOST_TEST(summary.restarts == 1);
  auto [valid, malformed] = expected_events(oc);
  BOOST_TEST(check_outputs(oc, oc.bootstrap).size() == valid.size());
  BOOST_TEST(check_dlq(oc, oc.bootstrap).size() == malformed.size());
  BOOST_TEST(committed_offsets(oc.bootstrap, "it-last-batch", "orders") == ends);
}

BOOST_AUTO_TEST_CASE(
    a_spent_restart_budget_fails_the_run_without_committing_past_the_failure) {
  order_cluster oc;
  oc.produce(4000);
  pipeline p(
      oc.config("it-budget", {"runtime.restartBudget=2", "runtime.restartBackoff=10ms"}));
  std::atomic<int> failures{0};
  p.set_stage([&](record_batch& b) {
    if (b.partition == 0) {
      ++failures;
      throw std::runtime_error("partition 0 always fails");
    }
  });
  auto summary = p.run();
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("partition orders/0 failed 3 times") != std::string::npos,
             summary.error);
  BOOST_TEST(summary.error.find("runtime.restartBudget") != std::string::npos,
             summary.error);
  BOOST_TEST(summary.error.find("partition 0 always fails") != std::string::npos,
             summary.error);
  BOOST_TEST(failures.load() == 3);
  BOOST_TEST(summary.restarts == 2); // the third failure ended the run, no restart
  auto committed = committed_offsets(oc.bootstrap, "it-budget", "orders");
  BOOST_TEST(committed[0] <= 0); // nothing of partition 0 was handled
}

BOOST_AUTO_TEST_CASE(an_invalid_record_without_a_dlq_stops_the_run_before_its_offset) {
  order_cluster oc;
  oc.produce(3000);
  auto cfg = oc.config("it-nodlq");
  cfg.dlq.reset();
  pipeline p(cfg);
  auto summary = p.run();
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("no `dlq` is configured") != std::string::npos,
             summary.error);
  // No committed offset passes an invalid record.
  std::map<std::int32_t, std::int64_t> first_invalid;
  testing::order_generator gen(oc.seed, oc.malformed_fraction);
  for (auto& c : read_topic(oc.bootstrap, "orders"))
    if (!gen.make(order_cluster::sequence_of(c)).malformation.empty())
      first_invalid.try_emplace(c.partition, c.offset);
  for (auto& [part, off] : committed_offsets(oc.bootstrap, "it-nodlq", "orders"))
    if (first_invalid.contains(part))
      BOOST_TEST(off <= first_invalid[part], "partition " << part);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(backpressure)

BOOST_AUTO_TEST_CASE(a_slow_sink_keeps_in_flight_records_under_the_credit) {
  order_cluster oc;
  oc.produce(8000);
  auto [valid, malformed] = expected_events(oc);
  // The sink is another cluster whose brokers answer 100 ms late.
  testing::mock_cluster slow(1);
  for (auto t : {"orders-high", "orders-medium", "orders-low"})
    slow.create_topic(t, 4);
  slow.create_topic("orders-dlq", 2);
  slow.set_broker_rtt(1, 100);
  pipeline p(oc.config(
      "it-slow", {"runtime.maxInFlightPerPartition=200", "runtime.maxBatchRecords=50"},
      slow.bootstrap_servers()));
  auto summary = p.run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(summary.max_in_flight == 200); // reached, never passed
  BOOST_TEST(summary.pauses > 0);           // partitions were paused when credit ran out
  BOOST_TEST(summary.output_rows == static_cast<std::int64_t>(valid.size()));
  BOOST_TEST(check_outputs(oc, slow.bootstrap_servers()).size() == valid.size());
}

BOOST_AUTO_TEST_CASE(a_byte_credit_smaller_than_the_parsed_rows_still_reads_everything) {
  // The byte credit counts parsed rows (a batch's arena) besides raw bytes. A
  // parser that kept the arena of the batch it parsed last (above all one
  // ending with a record that is not JSON) held that credit while idle: with
  // 16 partitions and 64 KiB, every partition stalled for good (a user trial).
  order_cluster oc(16);
  oc.malformed_fraction = 0.2;
  oc.produce(20000);
  auto [valid, malformed] = expected_events(oc);
  pipeline p(oc.config("it-tiny-credit", {"runtime.maxInFlightBytes=65536"}));
  background_run run(p);
  auto summary =
      run.wait_within(std::chrono::seconds(120), "the run with a 64 KiB credit");
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(summary.input_rows == 20000);
  BOOST_TEST(summary.output_rows == static_cast<std::int64_t>(valid.size()));
  BOOST_TEST(summary.dlq_rows == static_cast<std::int64_t>(malformed.size()));
  BOOST_TEST(summary.pauses > 0); // the credit was what held the partitions back
  BOOST_TEST(check_outputs(oc, oc.bootstrap).size() == valid.size());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(startup)

BOOST_AUTO_TEST_CASE(bad_client_properties_fail_at_start_naming_the_option) {
  order_cluster oc;
  auto message = [&](std::vector<std::string> overrides) -> std::string {
    try {
      pipeline p(oc.config("it-start", overrides));
    } catch (const config_error& e) {
      return e.what();
    }
    return "(no error)";
  };
  auto e = message({"source.kafka.no.such.property=1"});
  BOOST_TEST(e.find("`source.kafka.no.such.property`") != std::string::npos, e);
  e = message({"sink.kafka.linger.ms=soon"});
  BOOST_TEST(e.find("`sink.kafka.linger.ms`") != std::string::npos, e);
  BOOST_TEST(e.find("rejected by librdkafka") != std::string::npos, e);
}

BOOST_AUTO_TEST_SUITE_END()
