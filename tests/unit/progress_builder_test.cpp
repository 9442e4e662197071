#include "observe/progress_builder.hpp"

#include <boost/test/unit_test.hpp>

using namespace sluice;
using tp = kafka::topic_partition;

namespace {

progress_builder make_builder() {
  return progress_builder{
      {"query", "run", "orders", "KafkaV2[Subscribe[orders]]", "sink"}, 0};
}

epoch_reading one_partition(std::int64_t watermark, std::int64_t consumed,
                            std::int64_t in_flight = 0) {
  epoch_reading r;
  r.assigned = true;
  r.partitions[{"orders", 0}] = {0, watermark, 100, 0, consumed, in_flight};
  return r;
}

} // namespace

BOOST_AUTO_TEST_SUITE(progress_building)

BOOST_AUTO_TEST_CASE(an_epoch_reports_what_changed_since_the_last) {
  auto builder = make_builder();
  auto r = one_partition(40, 50, 10);
  r.counts.rows.outputs = 35;
  r.counts.rows.dlq = 5;
  auto first = builder.close(r, 1000, false);
  BOOST_REQUIRE(first);
  auto& p = first->progress;
  BOOST_TEST(p.batch_id == 0);
  BOOST_TEST(p.duration_ms == 1000);
  BOOST_TEST(p.num_input_rows == 50);
  BOOST_TEST(p.num_output_rows == 35);
  BOOST_TEST(p.num_processed_rows == 40);
  BOOST_TEST(p.message == "Processing new data");
  BOOST_TEST(p.partitions.at(0).end_offset == 40);
  BOOST_TEST(first->prior_committed.at({"orders", 0}) == 0);
  // The next epoch counts from there.
  r = one_partition(100, 100);
  r.counts.rows.outputs = 90;
  r.counts.rows.dlq = 10;
  auto second = builder.close(r, 1500, false);
  BOOST_REQUIRE(second);
  BOOST_TEST(second->progress.batch_id == 1);
  BOOST_TEST(second->progress.timestamp_ms == 1000);
  BOOST_TEST(second->progress.num_input_rows == 50);
  BOOST_TEST(second->progress.num_output_rows == 55);
  BOOST_TEST(second->progress.num_dlq_rows == 5);
  BOOST_TEST(builder.batch_id() == 2);
}

BOOST_AUTO_TEST_CASE(an_idle_epoch_is_reported_only_as_a_heartbeat) {
  auto builder = make_builder();
  auto idle = one_partition(0, 0);
  constexpr std::int64_t t = 1'000'000;
  BOOST_TEST(builder.close(idle, t, false).has_value()); // the first heartbeat
  BOOST_TEST(!builder.close(idle, t + 1000, false).has_value());
  BOOST_TEST(builder.close(idle, t + 2000, true).has_value()); // forced (a take)
  BOOST_TEST(!builder.close(idle, t + 11999, false).has_value());
  auto beat = builder.close(idle, t + 12000, false);
  BOOST_REQUIRE(beat);
  BOOST_TEST(beat->progress.message == "Waiting for data to arrive");
  BOOST_TEST(beat->progress.batch_id == 2);
  // Before the group assigns anything there is no heartbeat.
  auto unassigned = make_builder();
  BOOST_TEST(!unassigned.close(epoch_reading{}, 20000, false).has_value());
}

BOOST_AUTO_TEST_CASE(
    an_unreachable_cluster_is_named_when_it_starts_then_at_the_heartbeat) {
  auto builder = make_builder();
  epoch_reading down; // never assigned: the cluster cannot be reached
  down.source = {3000, "1/1 brokers are down"};
  auto first = builder.close(down, 500, false);
  BOOST_REQUIRE(first);
  BOOST_TEST(is_unreachable(first->status));
  BOOST_TEST((first->status == run_status::source_unreachable));
  BOOST_TEST(first->progress.message ==
             "cannot reach the source cluster for 3 s: 1/1 brokers are down");
  down.source.down_ms = 4000;
  BOOST_TEST(!builder.close(down, 1500, false).has_value());
  BOOST_TEST(builder.close(down, 10500, false).has_value());
  epoch_reading sink_down = one_partition(0, 0);
  sink_down.sink = {1000, "Connection refused"};
  auto sink = make_builder().close(sink_down, 100, false);
  BOOST_REQUIRE(sink);
  BOOST_TEST((sink->status == run_status::sink_unreachable));
}

BOOST_AUTO_TEST_CASE(a_rate_limit_holding_records_back_waits_for_the_trigger) {
  auto builder = make_builder();
  auto r = one_partition(40, 0); // 60 more to read
  r.rate_limited = true;
  epoch_planner::range_map admitted{{{"orders", 0}, {40, 70}}};
  r.admitted = &admitted;
  auto report = builder.close(r, 1000, true);
  BOOST_REQUIRE(report);
  BOOST_TEST(report->progress.message == "Waiting for next trigger");
  BOOST_TEST(report->progress.partitions.at(0).admitted_offset == 70);
  BOOST_TEST(report->progress.partitions.at(0).admitted_rows == 30);
}

BOOST_AUTO_TEST_CASE(lost_records_are_reported_once_and_counters_restart_with_a_chain) {
  auto builder = make_builder();
  auto r = one_partition(10, 10);
  r.lost[{"orders", 0}] = 7;
  auto first = builder.close(r, 1000, false);
  BOOST_REQUIRE(first);
  BOOST_TEST(first->progress.num_lost_rows == 7);
  BOOST_TEST(first->progress.partitions.at(0).num_lost_rows == 7);
  r.lost[{"orders", 0}] = 9;
  auto second = builder.close(r, 2000, false);
  BOOST_REQUIRE(second);
  BOOST_TEST(second->progress.num_lost_rows == 2);
  // A counter below the last (the partition assigned anew): all of it is new.
  auto fresh = one_partition(14, 4);
  auto third = builder.close(fresh, 3000, false);
  BOOST_REQUIRE(third);
  BOOST_TEST(third->progress.num_input_rows == 4);
  // A partition taken away and given back counts from zero.
  builder.forget({"orders", 0});
  auto back = builder.close(one_partition(20, 6), 4000, false);
  BOOST_REQUIRE(back);
  BOOST_TEST(back->progress.num_input_rows == 6);
  builder.continue_after(41);
  BOOST_TEST(builder.batch_id() == 42);
}

BOOST_AUTO_TEST_CASE(dedup_state_is_reported_as_a_state_operator) {
  auto builder = make_builder();
  auto r = one_partition(10, 10);
  r.counts.rows.dropped = 3;
  r.counts.rows.duplicates = 3;
  r.counts.state_updated = 7;
  r.state = {{7, 4096}};
  auto report = builder.close(r, 1000, false);
  BOOST_REQUIRE(report);
  BOOST_REQUIRE(report->progress.state_operators.size() == 1);
  auto& so = report->progress.state_operators.at(0);
  BOOST_TEST(so.rows_total == 7);
  BOOST_TEST(so.rows_updated == 7);
  BOOST_TEST(so.dropped_duplicates == 3);
  BOOST_TEST(so.memory_used_bytes == 4096);
  BOOST_TEST(report->progress.num_dropped_rows == 3);
}

BOOST_AUTO_TEST_SUITE_END()
