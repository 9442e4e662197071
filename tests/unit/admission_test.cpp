#include "source/admission.hpp"

#include <boost/test/unit_test.hpp>

#include <limits>

using namespace sluice;
using tp = kafka::topic_partition;

BOOST_AUTO_TEST_SUITE(admission)

BOOST_AUTO_TEST_CASE(a_cap_is_split_in_proportion_to_each_partitions_backlog) {
  std::map<tp, backlog_range> backlog{
      {{"t", 0}, {0, 60}}, {{"t", 1}, {100, 130}}, {{"t", 2}, {5, 15}}};
  auto limits = prorate(backlog, 20);
  BOOST_TEST(limits.at({"t", 0}) == 12);  // 20 * 60/100
  BOOST_TEST(limits.at({"t", 1}) == 106); // 20 * 30/100, from 100
  BOOST_TEST(limits.at({"t", 2}) == 7);   // 20 * 10/100, from 5
}

BOOST_AUTO_TEST_CASE(shares_round_down_but_never_starve_a_partition) {
  // Spark's rule: a share under one offset rounds up, others round down.
  std::map<tp, backlog_range> backlog{{{"t", 0}, {0, 1000}}, {{"t", 1}, {0, 3}}};
  auto limits = prorate(backlog, 10);
  BOOST_TEST(limits.at({"t", 0}) == 9); // 10 * 1000/1003 = 9.97
  BOOST_TEST(limits.at({"t", 1}) == 1); // 10 * 3/1003 = 0.03, rounded up
}

BOOST_AUTO_TEST_CASE(without_a_cap_or_within_it_everything_is_admitted) {
  std::map<tp, backlog_range> backlog{
      {{"t", 0}, {3, 10}}, {{"t", 1}, {4, 4}}, {{"t", 2}, {9, 7}}};
  for (auto cap : {std::optional<std::int64_t>{}, std::optional<std::int64_t>{7}}) {
    auto limits = prorate(backlog, cap);
    BOOST_TEST(limits.at({"t", 0}) == 10);
    BOOST_TEST(limits.at({"t", 1}) == 4); // nothing waiting
    BOOST_TEST(limits.at({"t", 2}) == 9); // an end below the start admits nothing
  }
}

BOOST_AUTO_TEST_CASE(huge_caps_and_backlogs_neither_overflow_nor_pass_an_end) {
  constexpr auto most = std::numeric_limits<std::int64_t>::max();
  // Two backlogs whose sum overflows: the total saturates, the shares stay
  // within each partition's range.
  std::map<tp, backlog_range> backlog{{{"t", 0}, {0, most - 10}},
                                      {{"t", 1}, {5, most - 1}}};
  auto limits = prorate(backlog, std::int64_t{1} << 62);
  BOOST_TEST(limits.at({"t", 0}) > 0);
  BOOST_TEST(limits.at({"t", 0}) <= most - 10);
  BOOST_TEST(limits.at({"t", 1}) > 5);
  BOOST_TEST(limits.at({"t", 1}) <= most - 1);
  // A cap near 2^62 over a small backlog admits all of it.
  std::map<tp, backlog_range> small{{{"t", 0}, {7, 9}}};
  BOOST_TEST(prorate(small, std::int64_t{1} << 62).at({"t", 0}) == 9);
}

BOOST_AUTO_TEST_CASE(the_gate_admits_nothing_until_told_and_forgets_on_revocation) {
  admission_gate gate(true);
  BOOST_TEST(gate.enabled());
  BOOST_TEST(gate.limit({"t", 0}) == -1);
  gate.admit({{{"t", 0}, 12}});
  BOOST_TEST(gate.limit({"t", 0}) == 12);
  gate.forget({"t", 0});
  BOOST_TEST(gate.limit({"t", 0}) == -1);
  BOOST_TEST(!admission_gate(false).enabled());
}

BOOST_AUTO_TEST_SUITE_END()
