// Scale-out: a second instance joins a running one and leaves again, while
// events keep arriving. Nothing may be lost; duplicates are measured.

#include "tests/integration/pipeline_fixture.hpp"

#include <future>
#include <thread>

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {

/// One member runs; a second joins, takes partitions, and leaves again, while
/// 30,000 events arrive at 2,000/s. Checks that nothing is lost and returns
/// how many records were written more than once.
std::int64_t join_and_leave(const std::string& group,
                            std::vector<std::string> overrides) {
  order_cluster oc;
  oc.count = 30000;
  auto [valid, malformed] = expected_events(oc);
  constexpr double rate = 2000; // events per second, written while the group changes
  overrides.push_back("trigger.processingTime=500ms");
  auto cfg = oc.config(group, overrides);
  auto writer = std::async(std::launch::async, [&] {
    testing::produce_orders(oc.bootstrap, "orders", oc.count, rate, oc.malformed_fraction,
                            oc.seed, {{"compression.type", "lz4"}});
  });
  auto committed_sum = [&] {
    std::int64_t sum = 0;
    for (auto& [part, off] : committed_offsets(oc.bootstrap, group, "orders"))
      sum += std::max<std::int64_t>(0, off);
    return sum;
  };

  pipeline a(cfg);
  auto run_a = std::async(std::launch::async, [&] { return a.run(); });
  BOOST_REQUIRE(eventually([&] { return committed_sum() >= 2000; }, 60s));

  // b joins (a rebalance), holds partitions for a while, then leaves (another).
  pipeline b(cfg);
  std::atomic<bool> b_holds{false};
  b.on_progress([&](const epoch_progress& e) {
    if (!e.partitions.empty()) b_holds = true;
  });
  auto run_b = std::async(std::launch::async, [&] { return b.run(); });
  BOOST_REQUIRE(eventually([&] { return b_holds.load(); }, 60s));
  b.stop();
  auto sb = run_b.get();
  BOOST_TEST(sb.ok, sb.error);

  writer.get();
  auto ends = end_offsets(oc.bootstrap, "orders");
  BOOST_REQUIRE(eventually(
      [&] { return committed_offsets(oc.bootstrap, group, "orders") == ends; }, 60s));
  a.stop();
  auto sa = run_a.get();
  BOOST_TEST(sa.ok, sa.error);

  auto outputs = check_outputs(oc, oc.bootstrap);
  auto dead = check_dlq(oc, oc.bootstrap);
  BOOST_TEST(outputs.size() == valid.size());
  BOOST_TEST(dead.size() == malformed.size());
  std::int64_t duplicates = 0;
  for (auto& [i, n] : outputs)
    duplicates += n - 1;
  for (auto& [i, n] : dead)
    duplicates += n - 1;
  std::printf("%s: %lld duplicates over a join and a leave (%lld events, %.0f/s)\n",
              group.c_str(), static_cast<long long>(duplicates),
              static_cast<long long>(oc.count), rate);
  return duplicates;
}

} // namespace

BOOST_AUTO_TEST_SUITE(rebalance)

// Reading stops at the first commit a rebalance refuses, and the refused
// offsets are committed as the next assignment arrives: what is repeated is
// at most about one epoch of input per rebalance (1,000 events here), far
// below the several seconds a rebalance lasts on the embedded broker.
BOOST_AUTO_TEST_CASE(a_member_joining_and_leaving_loses_nothing_and_repeats_little) {
  BOOST_TEST(join_and_leave("it-scale", {}) <= 2 * 2000);
}

BOOST_AUTO_TEST_CASE(cooperative_sticky_rebalances_lose_nothing_and_repeat_little) {
  // Only the partitions that move are revoked, drained and committed.
  BOOST_TEST(
      join_and_leave("it-scale-coop", {"source.kafka.partition.assignment.strategy="
                                       "cooperative-sticky"}) <= 2 * 2000);
}

BOOST_AUTO_TEST_SUITE_END()
