#include "source/epoch_planner.hpp"

#include <boost/test/unit_test.hpp>

using namespace sluice;
using tp = kafka::topic_partition;

namespace {

/// No client cache: the reported latest is all there is.
std::int64_t nothing_cached(const tp&) {
  return -1;
}

epoch_planner::rules capped(std::int64_t cap) {
  epoch_planner::rules r;
  r.max_offsets = cap;
  return r;
}

} // namespace

BOOST_AUTO_TEST_SUITE(epoch_planning)

BOOST_AUTO_TEST_CASE(an_epoch_admits_the_cap_split_over_the_backlog_then_the_rest) {
  epoch_planner planner{capped(30)};
  position_map at{{{"t", 0}, {0, 40, -1}}, {{"t", 1}, {100, 120, -1}}};
  auto first = planner.open(at, 1000, nothing_cached);
  BOOST_REQUIRE(first);
  BOOST_TEST(first->at({"t", 0}) == 20); // 30 * 40/60
  BOOST_TEST(first->at({"t", 1}) == 110);
  BOOST_TEST(planner.is_open());
  BOOST_TEST(planner.opened_at_ms() == 1000);
  BOOST_TEST(planner.ranges().at({"t", 1}).first == 100);
  // Not handled until every partition reached its limit.
  at[{"t", 0}].watermark = 20;
  BOOST_TEST(!planner.handled(at));
  at[{"t", 1}].watermark = 110;
  BOOST_TEST(planner.handled(at));
  planner.close(at);
  BOOST_TEST(!planner.is_open());
  // The next epoch starts where this one's admission ended.
  auto second = planner.open(at, 2000, nothing_cached);
  BOOST_REQUIRE(second);
  BOOST_TEST(second->at({"t", 0}) == 40);
  BOOST_TEST(second->at({"t", 1}) == 120);
  BOOST_TEST(planner.ranges().at({"t", 0}).first == 20);
}

BOOST_AUTO_TEST_CASE(nothing_waiting_admits_nothing_and_the_client_cache_counts) {
  epoch_planner planner{capped(100)};
  position_map at{{{"t", 0}, {5, 5, -1}}, {{"t", 1}, {-1, 9, -1}}};
  BOOST_TEST(!planner.open(at, 0, nothing_cached));
  BOOST_TEST(!planner.is_open());
  // The client knows of more than the consumer reported.
  auto limits =
      planner.open(at, 0, [](const tp& p) { return p.partition == 0 ? 8 : -1; });
  BOOST_REQUIRE(limits);
  BOOST_TEST(limits->at({"t", 0}) == 8);
  BOOST_TEST(!limits->contains({"t", 1})); // no start known yet
}

BOOST_AUTO_TEST_CASE(min_offsets_waits_until_max_trigger_delay) {
  auto rules = capped(1000);
  rules.min_offsets = 50;
  rules.max_trigger_delay_ms = 5000;
  epoch_planner planner{rules};
  position_map at{{{"t", 0}, {0, 10, -1}}};
  // Spark starts the delay at 0: the first epoch does not wait.
  BOOST_TEST(planner.open(at, 1'000'000, nothing_cached).has_value());
  at[{"t", 0}] = {10, 20, -1};
  planner.close(at);
  BOOST_TEST(!planner.open(at, 1'002'000, nothing_cached)); // 10 < 50, 2 s < 5 s
  auto late = planner.open(at, 1'006'000, nothing_cached);  // the delay is over
  BOOST_REQUIRE(late);
  BOOST_TEST(late->at({"t", 0}) == 20);
  // A run to the end never waits.
  rules.runs_to_end = true;
  epoch_planner to_end{rules};
  BOOST_TEST(to_end.open(at, 1000, nothing_cached).has_value());
  at[{"t", 0}] = {20, 30, -1};
  to_end.close(at);
  BOOST_TEST(to_end.open(at, 1001, nothing_cached).has_value());
}

BOOST_AUTO_TEST_CASE(an_open_transaction_ends_the_epoch_at_its_last_stable_offset) {
  epoch_planner planner{capped(100)};
  position_map at{{{"t", 0}, {0, 50, -1}}};
  BOOST_REQUIRE(planner.open(at, 0, nothing_cached));
  at[{"t", 0}] = {30, 50, 30}; // readable to 30 only
  BOOST_TEST(planner.handled(at));
  planner.close(at);
  // The next epoch admits the rest again, from the stable offset.
  at[{"t", 0}].stable_end = -1;
  auto next = planner.open(at, 10, nothing_cached);
  BOOST_REQUIRE(next);
  BOOST_TEST(planner.ranges().at({"t", 0}).first == 30);
  BOOST_TEST(next->at({"t", 0}) == 50);
}

BOOST_AUTO_TEST_CASE(a_bounded_run_is_complete_when_every_end_is_reached) {
  epoch_planner::rules rules;
  rules.end_offsets = {{{"t", 0}, 10}, {{"t", 1}, 4}};
  epoch_planner planner{rules};
  position_map at{{{"t", 0}, {10, 10, -1}}};
  BOOST_TEST(!planner.complete(at)); // t-1 is not assigned yet
  at[{"t", 1}] = {3, 4, -1};
  BOOST_TEST(!planner.complete(at));
  at[{"t", 1}].watermark = 4;
  BOOST_TEST(planner.complete(at));
  // Only offsets that exist are admitted under the end.
  epoch_planner capped_bounded{[&] {
    auto r = rules;
    r.max_offsets = 1000;
    return r;
  }()};
  position_map early{{{"t", 0}, {0, 6, -1}}, {{"t", 1}, {0, 9, -1}}};
  auto limits = capped_bounded.open(early, 0, nothing_cached);
  BOOST_REQUIRE(limits);
  BOOST_TEST(limits->at({"t", 0}) == 6);
  BOOST_TEST(limits->at({"t", 1}) == 4);
  BOOST_TEST(!epoch_planner{epoch_planner::rules{}}.complete(at)); // unbounded: never
}

BOOST_AUTO_TEST_CASE(trigger_once_admits_one_epoch_kept_across_a_revocation) {
  epoch_planner::rules rules;
  rules.once = rules.runs_to_end = true;
  rules.max_offsets = 10;
  rules.end_offsets = {{{"t", 0}, 100}, {{"t", 1}, 100}};
  epoch_planner planner{rules};
  position_map at{{{"t", 0}, {0, 100, -1}}};
  BOOST_TEST(!planner.once_due(at)); // t-1 not assigned yet
  at[{"t", 1}] = {0, 100, -1};
  BOOST_TEST(planner.once_due(at));
  auto limits = planner.open(at, 0, nothing_cached);
  BOOST_REQUIRE(limits);
  BOOST_TEST(limits->at({"t", 0}) == 5);
  BOOST_TEST(!planner.once_due(at)); // one epoch only
  // Complete at the single epoch's limits, not the ends.
  at[{"t", 0}].watermark = 5;
  BOOST_TEST(!planner.complete(at));
  at[{"t", 1}].watermark = 5;
  BOOST_TEST(planner.complete(at));
  // A partition revoked and assigned again reads the same range.
  planner.forget({"t", 0});
  BOOST_TEST(planner.once_limit({"t", 0}).value_or(-1) == 5);
  BOOST_TEST(!planner.ranges().contains({"t", 0}));
  BOOST_TEST(!planner.once_limit({"u", 0}).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
