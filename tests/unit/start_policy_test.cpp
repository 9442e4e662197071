// Spark's start rules for a newly assigned partition (source/start_policy),
// without a broker: the log range is given, and a lookup stands for
// ListOffsets by time.

#include "source/start_policy.hpp"

#include <sluice/errors.hpp>

#include <boost/test/unit_test.hpp>

#include <map>

using namespace sluice;

namespace {

const kafka::topic_partition tp{"orders", 3};

/// orders/3 holding offsets [100, 200).
kafka::assigned_partition with_log(std::int64_t lo = 100, std::int64_t hi = 200) {
  kafka::assigned_partition a;
  a.tp = tp;
  a.log_start = lo;
  a.latest = hi;
  return a;
}

/// A log whose records at or after 5,000 ms start at offset 150.
std::optional<std::int64_t> by_time(const kafka::topic_partition&, std::int64_t ts) {
  if (ts <= 5000) return 150;
  return std::nullopt;
}

struct start {
  std::optional<std::string> error;
  kafka::assigned_partition a;
};

start choose(const source_options& opts, std::int64_t committed, bool is_new = false,
             kafka::assigned_partition a = with_log()) {
  auto why = choose_start(opts, a, committed, is_new, opts.fail_on_data_loss, by_time);
  return {why, a};
}

bool says(const start& s, const std::string& text) {
  return s.error && s.error->find(text) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(start_policy)

BOOST_AUTO_TEST_CASE(a_committed_offset_wins_over_every_start_option) {
  source_options opts;
  opts.starting = starting_offsets::earliest;
  opts.starting_timestamp = 1000;
  auto s = choose(opts, 170);
  BOOST_CHECK(!s.error);
  BOOST_CHECK_EQUAL(s.a.start_offset, 170);
  BOOST_CHECK(s.a.from_commit);
  BOOST_CHECK_EQUAL(s.a.lost, 0);
}

BOOST_AUTO_TEST_CASE(an_app_that_keeps_its_own_positions_ignores_the_commit) {
  source_options opts;
  opts.start_from_commits = false;
  opts.starting = starting_offsets::earliest;
  auto s = choose(opts, 170);
  BOOST_CHECK_EQUAL(s.a.start_offset, 100);
  BOOST_CHECK(!s.a.from_commit);
}

BOOST_AUTO_TEST_CASE(without_a_commit_starting_offsets_say_earliest_or_latest) {
  source_options opts;
  BOOST_CHECK_EQUAL(choose(opts, -1).a.start_offset, 200); // latest, Spark's default
  opts.starting = starting_offsets::earliest;
  BOOST_CHECK_EQUAL(choose(opts, -1).a.start_offset, 100);
}

BOOST_AUTO_TEST_CASE(a_partition_that_appeared_while_running_starts_at_its_log_start) {
  source_options opts; // latest
  auto s = choose(opts, -1, true);
  BOOST_CHECK_EQUAL(s.a.start_offset, 100);
}

BOOST_AUTO_TEST_CASE(per_partition_offsets_with_minus_two_and_minus_one) {
  source_options opts;
  opts.starting = starting_offsets::specific;
  opts.starting_specific[tp] = 130;
  BOOST_CHECK_EQUAL(choose(opts, -1).a.start_offset, 130);
  opts.starting_specific[tp] = -2;
  BOOST_CHECK_EQUAL(choose(opts, -1).a.start_offset, 100);
  opts.starting_specific[tp] = -1;
  BOOST_CHECK_EQUAL(choose(opts, -1).a.start_offset, 200);
  opts.starting_specific[tp] = 250;
  BOOST_CHECK(
      says(choose(opts, -1), "asks for offset 250, past the end of the log (200)"));
  opts.starting_specific = {{{"orders", 0}, 5}};
  BOOST_CHECK(says(choose(opts, -1), "orders/3 is not in source.startingOffsets"));
}

BOOST_AUTO_TEST_CASE(a_start_by_timestamp_asks_the_log) {
  source_options opts;
  opts.starting_timestamp = 4000;
  BOOST_CHECK_EQUAL(choose(opts, -1).a.start_offset, 150);
  // Every record is older: an error by default, the end with strategy latest.
  opts.starting_timestamp = 9000;
  BOOST_CHECK(says(choose(opts, -1), "no record at or after startingTimestamp 9000"));
  opts.starting_strategy = timestamp_strategy::latest;
  auto s = choose(opts, -1);
  BOOST_CHECK(!s.error);
  BOOST_CHECK_EQUAL(s.a.start_offset, 200);
}

BOOST_AUTO_TEST_CASE(per_partition_timestamps_need_every_partition) {
  source_options opts;
  opts.starting_by_timestamp[tp] = 5000;
  BOOST_CHECK_EQUAL(choose(opts, -1).a.start_offset, 150);
  opts.starting_by_timestamp = {{{"orders", 0}, 5000}};
  BOOST_CHECK(
      says(choose(opts, -1), "orders/3 is not in source.startingOffsetsByTimestamp"));
}

BOOST_AUTO_TEST_CASE(records_deleted_before_they_were_read_are_counted_or_fail_the_run) {
  source_options opts;
  opts.fail_on_data_loss = false;
  auto s = choose(opts, 60); // committed 60, the log now starts at 100
  BOOST_CHECK(!s.error);
  BOOST_CHECK_EQUAL(s.a.start_offset, 100);
  BOOST_CHECK_EQUAL(s.a.lost, 40);
  opts.fail_on_data_loss = true;
  auto f = choose(opts, 60);
  BOOST_CHECK(says(f, "40 record(s) were deleted before they were read"));
  BOOST_CHECK(says(f, "source.failOnDataLoss is true"));
}

BOOST_AUTO_TEST_CASE(a_commit_past_the_end_means_a_truncated_or_recreated_topic) {
  source_options opts;
  opts.fail_on_data_loss = true;
  BOOST_CHECK(
      says(choose(opts, 500), "the committed offset 500 is past the end of the log"));
  opts.fail_on_data_loss = false;
  auto s = choose(opts, 500);
  BOOST_CHECK(!s.error);
  BOOST_CHECK_EQUAL(s.a.start_offset, 100); // read again from its start
  BOOST_CHECK(!s.a.from_commit);
}

BOOST_AUTO_TEST_SUITE_END()
