// Spark's Kafka source options against the embedded broker: subscription
// (subscribe, subscribePattern, assign), starts and ends by offset and by
// timestamp, trigger once, and failOnDataLoss, checked record by record.

#include "kafka/consumer.hpp"
#include "kafka/source_bounds.hpp"
#include "tests/integration/pipeline_fixture.hpp"
#include "tests/support/kafka_testing.hpp"

#include <sluice/config.hpp>
#include <sluice/errors.hpp>
#include <sluice/pipeline.hpp>
#include <sluice/testing/mock_cluster.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <string_view>

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {

/// A pass-through pipeline (no schema) from `source` options into `out`.
pipeline_config config(const std::string& bootstrap, const std::string& group,
                       const std::string& source,
                       std::vector<std::string> overrides = {}) {
  return parse_pipeline_config(R"({
    "name": "source-test",
    "source": {"kafka.bootstrap.servers": ")" +
                                   bootstrap + R"(", "kafka.group.id": ")" + group + R"(",
               "kafka.session.timeout.ms": 6000, "kafka.fetch.wait.max.ms": 50,
               "kafka.topic.metadata.refresh.interval.ms": 1000, )" +
                                   source + R"(},
    "route": {"topic": "out"},
    "sink": {"kafka.bootstrap.servers": ")" +
                                   bootstrap +
                                   R"("},
    "trigger": {"processingTime": "200 milliseconds"}})",
                               overrides);
}

/// The keys written to `topic`, as a set.
std::multiset<std::string> keys_in(const std::string& bootstrap,
                                   const std::string& topic) {
  std::multiset<std::string> out;
  for (auto& c : read_topic(bootstrap, topic))
    out.insert(c.key.value_or(""));
  return out;
}

/// Keys `<partition>-<i>` for i in [from, to).
std::multiset<std::string> keys(int partition, int from, int to) {
  std::multiset<std::string> out;
  for (int i = from; i < to; ++i)
    out.insert(std::to_string(partition) + "-" + std::to_string(i));
  return out;
}

std::multiset<std::string> operator+(std::multiset<std::string> a,
                                     const std::multiset<std::string>& b) {
  a.insert(b.begin(), b.end());
  return a;
}

} // namespace

BOOST_AUTO_TEST_SUITE(subscription)

BOOST_AUTO_TEST_CASE(
    a_pattern_reads_the_whole_names_it_matches_and_topics_created_later) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("evt1", 2);
  cluster.create_topic("evt22", 1);
  cluster.create_topic("evtx", 1);    // a near miss: x is not a digit
  cluster.create_topic("my-evt1", 1); // matches only when unanchored
  cluster.create_topic("__evt5", 1);  // an ordinary topic, not an internal one
  cluster.create_topic("out", 1);
  produce_to_partition(b, "evt1", 0, 5);
  produce_to_partition(b, "evt1", 1, 5);
  produce_to_partition(b, "evt22", 0, 5);
  produce_to_partition(b, "evtx", 0, 5);
  produce_to_partition(b, "my-evt1", 0, 5);
  produce_to_partition(b, "__evt5", 0, 5);

  pipeline p(config(b, "g-pattern", R"("subscribePattern": "(__)?evt[0-9]+",
                                        "startingOffsets": "earliest")"));
  std::mutex m;
  std::string description;
  p.on_progress([&](const epoch_progress& e) {
    std::lock_guard<std::mutex> guard{m};
    description = e.source_description;
  });
  auto result = std::async(std::launch::async, [&] { return p.run(); });
  BOOST_REQUIRE(eventually([&] { return read_topic(b, "out").size() >= 20; }, 60s));
  // A topic created while running joins at the next metadata refresh, from
  // its earliest offset.
  cluster.create_topic("evt3", 1);
  produce_to_partition(b, "evt3", 0, 4);
  BOOST_TEST(eventually([&] { return read_topic(b, "out").size() >= 24; }, 60s));
  p.stop();
  BOOST_REQUIRE(result.wait_for(scaled(60s)) == std::future_status::ready);
  auto summary = result.get();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(read_topic(b, "out").size() == 24u);
  BOOST_TEST(summary.input_rows == 24);
  BOOST_TEST(committed_offsets(b, "g-pattern", "__evt5").at(0) == 5);
  BOOST_TEST(committed_offsets(b, "g-pattern", "evt1") ==
             (std::map<std::int32_t, std::int64_t>{{0, 5}, {1, 5}}));
  BOOST_TEST(committed_offsets(b, "g-pattern", "evt3").at(0) == 4);
  BOOST_TEST(committed_offsets(b, "g-pattern", "evtx").at(0) < 0); // none
  BOOST_TEST(committed_offsets(b, "g-pattern", "my-evt1").at(0) < 0);
  std::lock_guard<std::mutex> guard{m};
  BOOST_TEST(description == "KafkaV2[SubscribePattern[(__)?evt[0-9]+]]");
}

BOOST_AUTO_TEST_CASE(a_log_range_is_asked_of_the_partitions_leader_after_it_moved) {
  // librdkafka 2.0.2 answers a lookup at a broker that no longer leads the
  // partition with NOT_LEADER (it only starts a metadata refresh): lookups
  // without retries of their own (a plan's log ranges, a bounded run's end
  // offsets, offsets by time) failed at once.
  mock_cluster cluster(3);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("moved", 1);
  produce_to_partition(b, "moved", 0, 10);
  auto cfg = config(b, "g-moved", R"("subscribe": "moved")");
  kafka::group_consumer consumer(cfg.source, cfg.runtime.broker_timeout);
  auto first = consumer.log_range({"moved", 0}, 10s); // caches the leader
  BOOST_REQUIRE(first.has_value());
  BOOST_TEST(first->second == 10);
  // Each broker leads in turn: at least two of the moves leave the cache stale.
  for (int leader : {1, 2, 3}) {
    BOOST_REQUIRE(
        rd_kafka_mock_partition_set_leader(cluster.handle(), "moved", 0, leader) ==
        RD_KAFKA_RESP_ERR_NO_ERROR);
    auto range = consumer.log_range({"moved", 0}, 10s);
    BOOST_REQUIRE_MESSAGE(range.has_value(),
                          "no log range with broker " << leader << " leading");
    BOOST_TEST(range->first == 0);
    BOOST_TEST(range->second == 10);
    BOOST_TEST(consumer.end_offsets({"moved"}, 10s).at({"moved", 0}) == 10);
  }
  // Offsets by time (startingOffsetsByTimestamp) likewise; the embedded
  // broker finds none: nullopt, not an error.
  for (int leader : {1, 2, 3}) {
    BOOST_REQUIRE(
        rd_kafka_mock_partition_set_leader(cluster.handle(), "moved", 0, leader) ==
        RD_KAFKA_RESP_ERR_NO_ERROR);
    BOOST_TEST(!consumer.offset_for_time({"moved", 0}, 1, 10s).has_value());
  }
  consumer.close(1s);
}

BOOST_AUTO_TEST_CASE(assign_reads_its_partitions_without_a_group_and_commits_to_it) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("orders", 3);
  cluster.create_topic("out", 1);
  for (int p = 0; p < 3; ++p)
    produce_to_partition(b, "orders", p, 10);
  auto cfg = config(b, "g-assign",
                    R"("assign": "{\"orders\": [0, 2]}", "startingOffsets": "earliest")",
                    {"trigger.availableNow=true"});
  auto first = run_to_end(cfg);
  BOOST_REQUIRE_MESSAGE(first.summary.ok, first.summary.error);
  BOOST_TEST(keys_in(b, "out") == keys(0, 0, 10) + keys(2, 0, 10));
  // No group join: the partitions are read at once (a join waits seconds).
  BOOST_TEST(first.summary.seconds - first.summary.processing_seconds < 2.0);
  // Committed to the group all the same, where lag tools and the next run look.
  auto committed = committed_offsets(b, "g-assign", "orders");
  BOOST_TEST(committed.at(0) == 10);
  BOOST_TEST(committed.at(1) < 0); // not assigned: nothing committed
  BOOST_TEST(committed.at(2) == 10);
  // The next run resumes from the commit, not from startingOffsets.
  produce_to_partition(b, "orders", 0, 13); // offsets 10..12 are new
  auto second = run_to_end(cfg);
  BOOST_REQUIRE_MESSAGE(second.summary.ok, second.summary.error);
  BOOST_TEST(second.summary.input_rows == 13); // offsets 10..22 of partition 0
  BOOST_TEST(committed_offsets(b, "g-assign", "orders").at(0) == 23);
  BOOST_REQUIRE(!second.progress.empty());
  BOOST_TEST(second.progress.back().at("sources").as_array()[0].as_object().at(
                 "description") == "KafkaV2[Assign[orders-0, orders-2]]");

  auto missing = run_to_end(config(b, "g-assign2", R"("assign": {"orders": [0, 7]})",
                                   {"trigger.availableNow=true"}));
  BOOST_TEST(!missing.summary.ok);
  BOOST_TEST(missing.summary.error.find("`orders/7` does not exist (`orders` has 3 "
                                        "partition(s))") != std::string::npos,
             missing.summary.error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(start_and_end)

BOOST_AUTO_TEST_CASE(offsets_in_json_read_exactly_the_named_ranges_under_any_trigger) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("t", 3);
  cluster.create_topic("out", 1);
  for (int p = 0; p < 3; ++p)
    produce_to_partition(b, "t", p, 20);
  // A processingTime trigger: the end alone makes the run bounded.
  auto cfg = config(b, "g-ranges", R"("subscribe": "t",
      "startingOffsets": {"t": {"0": 5, "1": -2, "2": -1}},
      "endingOffsets": "{\"t\": {\"0\": 12, \"1\": -1, \"2\": -1}}")");
  auto run = run_to_end(cfg);
  BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
  // Partition 0: offsets 5 to 11; 1: all of it; 2: starts at its end, done at once.
  BOOST_TEST(keys_in(b, "out") == keys(0, 5, 12) + keys(1, 0, 20));
  BOOST_TEST(committed_offsets(b, "g-ranges", "t") ==
             (std::map<std::int32_t, std::int64_t>{{0, 12}, {1, 20}, {2, 20}}));

  // A restart resumes from the commit; the start options apply only to
  // partitions without one.
  produce_to_partition(b, "t", 2, 3); // partition 2 now ends at 23
  auto again =
      run_to_end(config(b, "g-ranges", R"("subscribe": "t", "startingOffsets": "earliest",
                                "endingOffsets": "latest")"));
  BOOST_REQUIRE_MESSAGE(again.summary.ok, again.summary.error);
  BOOST_TEST(again.summary.input_rows == 8 + 3); // 0: 12..19; 2: 20..22
  BOOST_TEST(committed_offsets(b, "g-ranges", "t") ==
             (std::map<std::int32_t, std::int64_t>{{0, 20}, {1, 20}, {2, 23}}));
}

BOOST_AUTO_TEST_CASE(partitions_named_wrongly_or_left_out_fail_at_start) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("t", 3);
  cluster.create_topic("out", 1);
  auto missing = run_to_end(config(b, "g-named", R"("subscribe": "t",
      "startingOffsets": {"t": {"0": 0, "9": 0}})"));
  BOOST_TEST(!missing.summary.ok);
  BOOST_TEST(missing.summary.error.find("option `source.startingOffsets`: `t/9` is not a "
                                        "partition the source reads") !=
                 std::string::npos,
             missing.summary.error);
  auto partial = run_to_end(config(b, "g-named", R"("subscribe": "t",
      "endingOffsets": {"t": {"0": 0}})"));
  BOOST_TEST(!partial.summary.ok);
  BOOST_TEST(partial.summary.error.find("`t/1` is read but has no end") !=
                 std::string::npos,
             partial.summary.error);
  auto unstarted = run_to_end(config(b, "g-named", R"("subscribe": "t",
      "startingOffsets": {"t": {"0": 0}})",
                                     {"trigger.availableNow=true"}));
  BOOST_TEST(!unstarted.summary.ok);
  BOOST_TEST(unstarted.summary.error.find("t/1 is not in source.startingOffsets") !=
                 std::string::npos,
             unstarted.summary.error);
}

BOOST_AUTO_TEST_CASE(timestamps_follow_sparks_precedence_and_strategy) {
  // The embedded broker answers every timestamp lookup with -1 ("no record
  // that recent"), so these are the strategy paths.
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("t", 2);
  cluster.create_topic("out", 1);
  produce_to_partition(b, "t", 0, 6);
  produce_to_partition(b, "t", 1, 4);
  auto failed = run_to_end(config(b, "g-ts1", R"("subscribe": "t",
      "startingTimestamp": 1700000000000)",
                                  {"trigger.availableNow=true"}));
  BOOST_TEST(!failed.summary.ok);
  BOOST_TEST(failed.summary.error.find("no record at or after startingTimestamp "
                                       "1700000000000") != std::string::npos,
             failed.summary.error);
  // startingTimestamp comes before startingOffsets: with the strategy
  // `latest`, nothing is read although startingOffsets says earliest.
  auto latest = run_to_end(config(b, "g-ts2", R"("subscribe": "t",
      "startingOffsets": "earliest", "startingTimestamp": 1700000000000,
      "startingOffsetsByTimestampStrategy": "latest")",
                                  {"trigger.availableNow=true"}));
  BOOST_REQUIRE_MESSAGE(latest.summary.ok, latest.summary.error);
  BOOST_TEST(latest.summary.input_rows == 0);
  BOOST_TEST(committed_offsets(b, "g-ts2", "t") ==
             (std::map<std::int32_t, std::int64_t>{{0, 6}, {1, 4}}));
  // Per-partition timestamps need every partition (Spark's rule).
  auto partial = run_to_end(config(b, "g-ts3", R"("subscribe": "t",
      "startingOffsetsByTimestamp": {"t": {"1": 1700000000000}})",
                                   {"trigger.availableNow=true"}));
  BOOST_TEST(!partial.summary.ok);
  BOOST_TEST(partial.summary.error.find(
                 "t/0 is not in source.startingOffsetsByTimestamp") != std::string::npos,
             partial.summary.error);
  // An ending timestamp no record reaches is the latest offset.
  auto by_partition = run_to_end(config(b, "g-ts4", R"("subscribe": "t",
      "startingOffsets": {"t": {"0": 2, "1": -1}}, "endingTimestamp": 1700000000000)"));
  BOOST_REQUIRE_MESSAGE(by_partition.summary.ok, by_partition.summary.error);
  BOOST_TEST(keys_in(b, "out") == keys(0, 2, 6)); // 1 starts at its latest
  // A start past the end fails, as in Spark; without startingOffsets, a run
  // with an end starts at earliest (a batch query).
  auto backwards = run_to_end(config(b, "g-ts5", R"("subscribe": "t",
      "startingOffsets": "latest", "endingOffsets": {"t": {"0": 3, "1": -1}})"));
  BOOST_TEST(!backwards.summary.ok);
  BOOST_TEST(backwards.summary.error.find("t/0: the start options put its start at 6, "
                                          "after its end 3") != std::string::npos,
             backwards.summary.error);
  auto batch = run_to_end(config(b, "g-ts6", R"("subscribe": "t",
      "endingOffsets": {"t": {"0": 3, "1": -1}})"));
  BOOST_REQUIRE_MESSAGE(batch.summary.ok, batch.summary.error);
  BOOST_TEST(batch.summary.input_rows == 3 + 4);
}

BOOST_AUTO_TEST_CASE(trigger_once_processes_what_is_there_in_one_epoch) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("t", 3);
  cluster.create_topic("out", 1);
  for (int p = 0; p < 3; ++p)
    produce_to_partition(b, "t", p, 30);
  auto run = run_to_end(config(b, "g-once", R"("subscribe": "t",
                                                "startingOffsets": "earliest")",
                               {"trigger.once=true"}));
  BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
  BOOST_TEST(read_topic(b, "out").size() == 90u);
  std::vector<boost::json::object> epochs;
  for (auto& p : run.progress)
    if (p.at("numInputRows").as_int64() > 0) epochs.push_back(p);
  BOOST_REQUIRE(epochs.size() == 1u);
  BOOST_TEST(epochs[0].at("numInputRows").as_int64() == 90);
  // Spark's source metrics: every partition is at its latest offset.
  auto& source = epochs[0].at("sources").as_array()[0].as_object();
  BOOST_TEST(source.at("metrics") == boost::json::parse(R"({"minOffsetsBehindLatest": "0",
                                    "maxOffsetsBehindLatest": "0",
                                    "avgOffsetsBehindLatest": "0.0"})"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(data_loss)

BOOST_AUTO_TEST_CASE(records_deleted_before_they_were_read_fail_the_run_or_are_counted) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("big", 1);
  cluster.create_topic("out", 4);
  // A first run reads the first 10 records and commits 10.
  produce_to_partition(b, "big", 0, 20, 100 * 1024);
  auto first = run_to_end(config(b, "g-loss", R"("subscribe": "big",
      "startingOffsets": "earliest", "endingOffsets": {"big": {"0": 10}})"));
  BOOST_REQUIRE_MESSAGE(first.summary.ok, first.summary.error);
  BOOST_REQUIRE(committed_offsets(b, "g-loss", "big").at(0) == 10);
  // ~9 MiB more: the embedded broker keeps at most 5 MiB, so the log start
  // moves past the committed offset.
  produce_to_partition(b, "big", 0, 70, 100 * 1024);
  auto log_start = std::int64_t{0};
  {
    // The broker's own answer: what a client sees as the log start.
    auto ends = end_offsets(b, "big");
    BOOST_REQUIRE(ends.at(0) == 90);
  }
  auto failed = run_to_end(config(b, "g-loss", R"("subscribe": "big",
      "endingOffsets": "latest")"));
  BOOST_TEST(!failed.summary.ok);
  BOOST_TEST(failed.summary.error.find("big/0: the next offset to read is 10 but the log "
                                       "starts at ") != std::string::npos,
             failed.summary.error);
  BOOST_TEST(failed.summary.error.find("source.failOnDataLoss is true") !=
                 std::string::npos,
             failed.summary.error);
  BOOST_TEST(failed.summary.input_rows == 0);
  BOOST_TEST(committed_offsets(b, "g-loss", "big").at(0) == 10); // nothing past the gap
  auto at = failed.summary.error.find("the log starts at ");
  log_start = std::stoll(failed.summary.error.substr(at + 18));
  BOOST_TEST(log_start > 10);

  {
    // `sluice plan` sees the same: where a run would start, and what is gone.
    auto cfg = config(b, "g-loss", R"("subscribe": "big", "endingOffsets": "latest",
                                       "failOnDataLoss": false)");
    kafka::group_consumer consumer(cfg.source, cfg.runtime.broker_timeout);
    auto plan = kafka::plan_source(consumer, cfg, 10s);
    BOOST_REQUIRE(plan.size() == 1u);
    BOOST_TEST(plan[0].committed == 10);
    BOOST_TEST(plan[0].start == log_start);
    BOOST_TEST(plan[0].log_start == log_start);
    BOOST_TEST(plan[0].lost == log_start - 10);
    BOOST_TEST((plan[0].end && *plan[0].end == 90));
    consumer.close(1s);
    // With failOnDataLoss true, plan fails as the run would.
    auto strict = config(b, "g-loss", R"("subscribe": "big", "endingOffsets": "latest")");
    kafka::group_consumer checked(strict.source, strict.runtime.broker_timeout);
    try {
      kafka::plan_source(checked, strict, 10s);
      BOOST_ERROR("plan accepted a run that fails on data loss");
    } catch (const fatal_error& e) {
      BOOST_TEST(std::string(e.what()).find("deleted before they were read") !=
                     std::string::npos,
                 e.what());
    }
    checked.close(1s);
    // An unbounded run has no end.
    auto open = config(b, "g-loss", R"("subscribe": "big", "failOnDataLoss": false)");
    kafka::group_consumer again(open.source, open.runtime.broker_timeout);
    BOOST_TEST(!kafka::plan_source(again, open, 10s)[0].end.has_value());
    again.close(1s);
  }
  {
    // A range retention deleted whole: nothing to read, the range's records
    // counted as lost, its end committed, exit 0 (found by a user trial: it
    // failed with "start after its end").
    auto gone = config(b, "g-loss-gone", R"("subscribe": "big",
        "startingOffsets": {"big": {"0": 3}}, "endingOffsets": {"big": {"0": 8}},
        "failOnDataLoss": false)");
    auto run = run_to_end(gone);
    BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
    BOOST_TEST(run.summary.input_rows == 0);
    std::int64_t lost = 0;
    for (auto& p : run.progress)
      lost += p.at("numLostRows").as_int64();
    BOOST_TEST(lost == 5);
    BOOST_TEST(committed_offsets(b, "g-loss-gone", "big").at(0) == 8);
    kafka::group_consumer consumer(gone.source, gone.runtime.broker_timeout);
    auto plan = kafka::plan_source(consumer, gone, 10s);
    BOOST_REQUIRE(plan.size() == 1u);
    BOOST_TEST(plan[0].start == 8); // from the commit: nothing more to read
    consumer.close(1s);
  }
  auto skipped = run_to_end(config(b, "g-loss", R"("subscribe": "big",
      "endingOffsets": "latest", "failOnDataLoss": false)"));
  BOOST_REQUIRE_MESSAGE(skipped.summary.ok, skipped.summary.error);
  BOOST_TEST(skipped.summary.input_rows == 90 - log_start);
  BOOST_TEST(committed_offsets(b, "g-loss", "big").at(0) == 90);
  std::int64_t lost = 0, lost_by_partition = 0;
  for (auto& p : skipped.progress) {
    lost += p.at("numLostRows").as_int64();
    auto& by = p.at("sources").as_array()[0].as_object().at("numLostRowsByPartition");
    if (auto* big = by.as_object().if_contains("big"))
      lost_by_partition += big->as_object().at("0").as_int64();
  }
  BOOST_TEST(lost == log_start - 10);
  BOOST_TEST(lost_by_partition == log_start - 10);
}

BOOST_AUTO_TEST_CASE(records_deleted_while_running_fail_the_run_or_are_counted) {
  // The third run skips with a cap of 2 offsets per epoch: the deleted
  // records are skipped whole, not 2 per epoch (found by a user trial).
  for (int variant : {0, 1, 2}) {
    bool fail_on_loss = variant == 0;
    bool capped = variant == 2;
    BOOST_TEST_CONTEXT("failOnDataLoss " << fail_on_loss << ", capped " << capped) {
      testing::mock_cluster source(1), sink(1);
      auto b = source.bootstrap_servers();
      source.create_topic("big", 1);
      sink.create_topic("out", 1);
      // A slow sink and a one-record credit keep the reader near the start.
      sink.set_broker_rtt(1, 300);
      produce_to_partition(b, "big", 0, 20, 100 * 1024);
      auto group = "g-midrun-" + std::to_string(variant);
      std::vector<std::string> overrides{
          "sink.kafka.bootstrap.servers=" + sink.bootstrap_servers(),
          "runtime.maxInFlightPerPartition=1", "runtime.maxInFlightBytes=65536",
          std::string("source.failOnDataLoss=") + (fail_on_loss ? "true" : "false")};
      if (capped) overrides.push_back("source.maxOffsetsPerTrigger=2");
      auto cfg = config(b, group, R"("subscribe": "big", "startingOffsets": "earliest")",
                        overrides);
      pipeline p(cfg);
      std::mutex m;
      std::int64_t lost = 0, epochs_with_loss = 0;
      p.on_progress([&](const epoch_progress& e) {
        std::lock_guard<std::mutex> guard{m};
        lost += e.num_lost_rows;
        if (e.num_lost_rows > 0) ++epochs_with_loss;
      });
      auto result = std::async(std::launch::async, [&] { return p.run(); });
      BOOST_REQUIRE(eventually(
          [&] { return !read_topic(sink.bootstrap_servers(), "out").empty(); }, 60s));
      // ~9 MiB more: retention moves the log start past the reader.
      produce_to_partition(b, "big", 0, 90, 100 * 1024);
      if (fail_on_loss) {
        BOOST_REQUIRE(result.wait_for(scaled(90s)) == std::future_status::ready);
        auto summary = result.get();
        BOOST_TEST(!summary.ok);
        BOOST_TEST(summary.error.find("record(s) were deleted before they were read "
                                      "(source.failOnDataLoss is true") !=
                       std::string::npos,
                   summary.error);
        // Nothing past the gap is committed.
        BOOST_TEST(committed_offsets(b, group, "big").at(0) < 20);
      } else {
        BOOST_REQUIRE(eventually(
            [&] { return committed_offsets(b, group, "big").at(0) == 110; }, 120s));
        p.stop();
        BOOST_REQUIRE(result.wait_for(scaled(60s)) == std::future_status::ready);
        auto summary = result.get();
        BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
        std::lock_guard<std::mutex> guard{m};
        // Every offset is an output or a counted loss.
        BOOST_TEST(lost > 0);
        BOOST_TEST(epochs_with_loss == 1);

        BOOST_TEST(summary.input_rows + lost == 110);
        BOOST_TEST(summary.output_rows == summary.input_rows);
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rate_limits)

namespace {
/// The progress lines of epochs that admitted records, with what they admitted.
std::vector<boost::json::object>
admitting(const std::vector<boost::json::object>& lines) {
  std::vector<boost::json::object> out;
  for (auto& p : lines)
    if (p.at("sources").as_array()[0].as_object().contains("numAdmittedRows"))
      out.push_back(p);
  return out;
}
const boost::json::object& source_of(const boost::json::object& p) {
  return p.at("sources").as_array()[0].as_object();
}
} // namespace

BOOST_AUTO_TEST_CASE(available_now_runs_capped_epochs_split_by_backlog) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("t", 3);
  cluster.create_topic("out", 1);
  produce_to_partition(b, "t", 0, 60);
  produce_to_partition(b, "t", 1, 30);
  produce_to_partition(b, "t", 2, 10);
  auto run = run_to_end(config(b, "g-capped", R"("assign": {"t": [0, 1, 2]},
      "startingOffsets": "earliest", "maxOffsetsPerTrigger": 20)",
                               {"trigger.availableNow=true"}));
  BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
  BOOST_TEST(keys_in(b, "out") == keys(0, 0, 60) + keys(1, 0, 30) + keys(2, 0, 10));
  // Spark's split: 20 * backlog / total per partition, every epoch: the
  // backlog keeps its 6:3:1 shape, so each epoch admits 12, 6 and 2.
  auto epochs = admitting(run.progress);
  BOOST_REQUIRE_EQUAL(epochs.size(), 5u);
  for (std::size_t i = 0; i < epochs.size(); ++i) {
    auto n = static_cast<std::int64_t>(i + 1);
    auto& src = source_of(epochs[i]);
    BOOST_TEST(src.at("numAdmittedRows").as_int64() == 20);
    BOOST_TEST(epochs[i].at("numInputRows").as_int64() == 20);
    auto expected = boost::json::object{
        {"t", boost::json::object{{"0", 12 * n}, {"1", 6 * n}, {"2", 2 * n}}}};
    BOOST_TEST(src.at("admittedOffset").as_object() == expected);
    // Each epoch ends exactly where it was admitted to, committed.
    BOOST_TEST(src.at("endOffset").as_object() == expected);
  }
  BOOST_TEST(committed_offsets(b, "g-capped", "t") ==
             (std::map<std::int32_t, std::int64_t>{{0, 60}, {1, 30}, {2, 10}}));
}

BOOST_AUTO_TEST_CASE(trigger_once_runs_one_capped_epoch) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("t", 3);
  cluster.create_topic("out", 1);
  produce_to_partition(b, "t", 0, 60);
  produce_to_partition(b, "t", 1, 30);
  produce_to_partition(b, "t", 2, 10);
  auto cfg = config(b, "g-once-capped", R"("subscribe": "t",
      "startingOffsets": "earliest", "maxOffsetsPerTrigger": 20)",
                    {"trigger.once=true"});
  {
    // `sluice plan` stops where the one capped epoch will.
    kafka::group_consumer consumer(cfg.source, cfg.runtime.broker_timeout);
    auto plan = kafka::plan_source(consumer, cfg, 10s);
    consumer.close(1s);
    BOOST_REQUIRE_EQUAL(plan.size(), 3u);
    BOOST_TEST((plan[0].end && *plan[0].end == 12));
    BOOST_TEST((plan[1].end && *plan[1].end == 6));
    BOOST_TEST((plan[2].end && *plan[2].end == 2));
  }
  auto run = run_to_end(cfg);
  BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
  BOOST_TEST(keys_in(b, "out") == keys(0, 0, 12) + keys(1, 0, 6) + keys(2, 0, 2));
  BOOST_TEST(committed_offsets(b, "g-once-capped", "t") ==
             (std::map<std::int32_t, std::int64_t>{{0, 12}, {1, 6}, {2, 2}}));
  auto epochs = admitting(run.progress);
  BOOST_REQUIRE_EQUAL(epochs.size(), 1u);
  BOOST_TEST(epochs[0].at("numInputRows").as_int64() == 20);
  // The next run takes the next capped share, from the commit.
  run = run_to_end(cfg);
  BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
  BOOST_TEST(run.summary.input_rows == 20);
  BOOST_TEST(committed_offsets(b, "g-once-capped", "t") ==
             (std::map<std::int32_t, std::int64_t>{{0, 24}, {1, 12}, {2, 4}}));
}

BOOST_AUTO_TEST_CASE(a_capped_stream_admits_what_arrives_at_most_cap_per_epoch) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("t", 2);
  cluster.create_topic("out", 1);
  pipeline p(config(b, "g-stream-cap", R"("assign": {"t": [0, 1]},
      "startingOffsets": "earliest", "maxOffsetsPerTrigger": 25)"));
  std::mutex m;
  std::vector<boost::json::object> lines;
  p.on_progress([&](const epoch_progress& e) {
    std::lock_guard<std::mutex> guard{m};
    lines.push_back(boost::json::parse(to_json(e)).as_object());
  });
  auto result = std::async(std::launch::async, [&] { return p.run(); });
  produce_to_partition(b, "t", 0, 70);
  produce_to_partition(b, "t", 1, 30);
  BOOST_TEST(eventually([&] { return read_topic(b, "out").size() >= 100; }, 60s));
  p.stop();
  BOOST_REQUIRE(result.wait_for(scaled(60s)) == std::future_status::ready);
  auto summary = result.get();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(keys_in(b, "out") == keys(0, 0, 70) + keys(1, 0, 30));
  std::lock_guard<std::mutex> guard{m};
  std::int64_t admitted = 0;
  for (auto& e : admitting(lines)) {
    auto n = source_of(e).at("numAdmittedRows").as_int64();
    BOOST_TEST(n <= 25);
    BOOST_TEST(e.at("numInputRows").as_int64() == n);
    admitted += n;
  }
  BOOST_TEST(admitted == 100);
}

BOOST_AUTO_TEST_CASE(a_capped_stream_goes_on_when_a_member_joins_and_leaves) {
  // Partitions taken away in the middle of an epoch, and given back: the
  // epochs after the rebalances still open and close (a stopped chain's late
  // report once left a partition the checkpoint waited on for ever).
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("t", 4);
  cluster.create_topic("out", 1);
  for (int p = 0; p < 4; ++p)
    produce_to_partition(b, "t", p, 500);
  auto cfg = config(b, "g-cap-rebalance", R"("subscribe": "t",
      "startingOffsets": "earliest", "maxOffsetsPerTrigger": 100)");
  pipeline first(cfg);
  auto result = std::async(std::launch::async, [&] { return first.run(); });
  BOOST_REQUIRE(eventually([&] { return read_topic(b, "out").size() >= 200; }, 60s));
  {
    pipeline second(cfg); // joins: the partitions are split between the two
    auto joined = std::async(std::launch::async, [&] { return second.run(); });
    auto before = read_topic(b, "out").size();
    BOOST_TEST(
        eventually([&] { return read_topic(b, "out").size() >= before + 200; }, 60s));
    second.stop(); // leaves: the first takes everything back
    BOOST_REQUIRE(joined.wait_for(scaled(60s)) == std::future_status::ready);
    auto s = joined.get();
    BOOST_REQUIRE_MESSAGE(s.ok, s.error);
  }
  // Every record is written (at least once), and the group commits the ends.
  BOOST_TEST(eventually(
      [&] {
        auto c = committed_offsets(b, "g-cap-rebalance", "t");
        return c == std::map<std::int32_t, std::int64_t>{
                        {0, 500}, {1, 500}, {2, 500}, {3, 500}};
      },
      60s));
  first.stop();
  BOOST_REQUIRE(result.wait_for(scaled(60s)) == std::future_status::ready);
  auto summary = result.get();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  std::set<std::string> written;
  for (auto& c : read_topic(b, "out"))
    written.insert(c.key.value_or(""));
  BOOST_TEST(written.size() == 2000u);
}

BOOST_AUTO_TEST_CASE(min_offsets_per_trigger_waits_for_enough_or_for_the_delay) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("t", 1);
  cluster.create_topic("out", 1);
  produce_to_partition(b, "t", 0, 10);
  pipeline p(config(b, "g-min", R"("assign": {"t": [0]}, "startingOffsets": "earliest",
      "minOffsetsPerTrigger": 50, "maxTriggerDelay": "3 seconds")"));
  std::mutex m;
  std::vector<boost::json::object> lines;
  std::vector<double> seconds; // when each admitting line arrived
  auto start = std::chrono::steady_clock::now();
  auto since_start = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
        .count();
  };
  p.on_progress([&](const epoch_progress& e) {
    auto line = boost::json::parse(to_json(e)).as_object();
    std::lock_guard<std::mutex> guard{m};
    if (!source_of(line).contains("numAdmittedRows")) return;
    lines.push_back(line);
    seconds.push_back(since_start());
  });
  auto admitted = [&](std::size_t n) {
    return eventually(
        [&] {
          std::lock_guard<std::mutex> guard{m};
          return lines.size() >= n;
        },
        60s);
  };
  auto result = std::async(std::launch::async, [&] { return p.run(); });
  // As in Spark, the first epoch does not wait: the 10 records go at once.
  BOOST_REQUIRE(admitted(1));
  // 70 more, in two writes: 40 are fewer than 50, so the epoch waits for
  // the next 30 and admits all 70 together, well before the 3 s delay.
  produce_to_partition(b, "t", 0, 40);
  produce_to_partition(b, "t", 0, 30);
  auto produced_at = since_start();
  BOOST_REQUIRE(admitted(2));
  // 5 more: fewer than 50, admitted only once 3 s passed since the last epoch.
  produce_to_partition(b, "t", 0, 5);
  BOOST_REQUIRE(admitted(3));
  BOOST_TEST(eventually([&] { return read_topic(b, "out").size() >= 85; }, 60s));
  p.stop();
  BOOST_REQUIRE(result.wait_for(scaled(60s)) == std::future_status::ready);
  auto summary = result.get();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(read_topic(b, "out").size() == 85u);
  std::lock_guard<std::mutex> guard{m};
  BOOST_REQUIRE_EQUAL(lines.size(), 3u);
  BOOST_TEST(source_of(lines[0]).at("numAdmittedRows").as_int64() == 10);
  BOOST_TEST(source_of(lines[1]).at("numAdmittedRows").as_int64() == 70);
  BOOST_TEST(seconds[1] - produced_at < 2.5); // by the count, not by the delay
  BOOST_TEST(source_of(lines[2]).at("numAdmittedRows").as_int64() == 5);
  BOOST_TEST(seconds[2] - seconds[1] >= 2.9); // by the delay
  BOOST_TEST(committed_offsets(b, "g-min", "t").at(0) == 85);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lanes)

BOOST_AUTO_TEST_CASE(eight_lanes_on_one_partition_keep_each_keys_order) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("t", 1);
  cluster.create_topic("out", 1); // one output partition: the order is visible
  // 40 keys, 50 records each, interleaved; each value carries its sequence.
  std::vector<std::pair<std::string, std::string>> records;
  for (int seq = 0; seq < 50; ++seq)
    for (int k = 0; k < 40; ++k)
      records.emplace_back("k" + std::to_string(k),
                           R"({"seq":)" + std::to_string(seq) + "}");
  produce_records(b, "t", 0, records);
  auto cfg = config(b, "g-lanes", R"("subscribe": "t", "startingOffsets": "earliest",
      "minPartitions": 8)",
                    {"trigger.availableNow=true", "runtime.maxBatchRecords=64"});
  pipeline p(cfg);
  // The user stage runs in each lane: every batch it sees holds the keys of
  // one lane only, and all eight lanes see some.
  std::mutex m;
  std::set<std::size_t> lanes_seen;
  std::size_t mixed_batches = 0;
  p.set_stage([&](record_batch& batch) {
    std::set<std::size_t> in_batch;
    for (auto& r : batch.records)
      in_batch.insert(std::hash<std::string_view>{}(*r.key) % 8);
    std::lock_guard<std::mutex> guard{m};
    if (in_batch.size() > 1) ++mixed_batches;
    lanes_seen.insert(in_batch.begin(), in_batch.end());
  });
  auto summary = p.run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(summary.input_rows == 2000);
  BOOST_TEST(mixed_batches == 0u);
  BOOST_TEST(lanes_seen.size() == 8u);
  // Every record once, and each key's records in their order.
  auto out = read_topic(b, "out");
  BOOST_REQUIRE_EQUAL(out.size(), 2000u);
  std::map<std::string, int> next;
  for (auto& c : out) {
    auto seq =
        static_cast<int>(boost::json::parse(*c.value).as_object().at("seq").as_int64());
    BOOST_TEST(seq == next[*c.key], *c.key << " at output offset " << c.offset);
    next[*c.key] = seq + 1;
  }
  BOOST_TEST(next.size() == 40u);
  // The committed watermark is contiguous: everything, exactly.
  BOOST_TEST(committed_offsets(b, "g-lanes", "t").at(0) == 2000);
}

BOOST_AUTO_TEST_CASE(lanes_are_only_added_where_partitions_are_fewer) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("t", 4);
  cluster.create_topic("out", 1);
  for (int p = 0; p < 4; ++p)
    produce_to_partition(b, "t", p, 25);
  // 4 partitions, minPartitions 3: one lane each; every batch the stage
  // sees is a whole batch (offsets without a gap).
  auto cfg = config(b, "g-lanes-few", R"("subscribe": "t", "startingOffsets": "earliest",
      "minPartitions": 3)",
                    {"trigger.availableNow=true"});
  pipeline p(cfg);
  std::atomic<int> gaps{0};
  p.set_stage([&](record_batch& batch) {
    for (std::size_t i = 1; i < batch.records.size(); ++i)
      if (batch.records[i].offset != batch.records[i - 1].offset + 1) ++gaps;
  });
  auto summary = p.run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(summary.input_rows == 100);
  BOOST_TEST(gaps.load() == 0);
  BOOST_TEST(read_topic(b, "out").size() == 100u);
}

BOOST_AUTO_TEST_SUITE_END()

// librdkafka's prefetch limits, sized by the partitions read.
BOOST_AUTO_TEST_SUITE(prefetch)

BOOST_AUTO_TEST_CASE(a_lone_partition_is_read_without_waiting_on_its_prefetch) {
  // librdkafka 2.0.2 stops fetching a partition whose queue is over its
  // prefetch limits until its broker thread wakes up (up to a second): with
  // one partition, limits sized for 64 read 4.5 MB in about 4.5 s, one
  // 512 KiB queue every half second. Sized for one, it takes well under 1 s.
  // (The embedded broker keeps 5 MiB per partition.)
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("t", 1);
  cluster.create_topic("out", 1);
  produce_to_partition(b, "t", 0, 35000, 100);
  for (auto subscription : {R"("assign": {"t": [0]})", R"("subscribe": "t")"}) {
    auto run = run_to_end(config(
        b, std::string("g-lone-") + (subscription[1] == 'a' ? "assign" : "subscribe"),
        std::string(subscription) + R"(, "startingOffsets": "earliest")",
        {"trigger.availableNow=true"}));
    BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
    BOOST_TEST(run.summary.output_rows == 35000);
    BOOST_TEST(run.summary.processing_seconds < scaled(2s).count() / 1000.0,
               subscription << ": " << run.summary.processing_seconds << " s");
  }
}

BOOST_AUTO_TEST_SUITE_END()
