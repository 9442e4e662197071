#include "source/read_window.hpp"

#include <boost/test/unit_test.hpp>

#include <limits>

using namespace sluice;

namespace {

constexpr auto no_limit = std::numeric_limits<std::int64_t>::max();

std::vector<record> at(std::initializer_list<std::int64_t> offsets) {
  std::vector<record> out;
  for (auto o : offsets) {
    record r;
    r.offset = o;
    r.value = "v" + std::to_string(o);
    out.push_back(std::move(r));
  }
  return out;
}

record undecodable(std::int64_t offset) {
  record r;
  r.offset = offset;
  r.error = record_error{"consume-error", "Local: Bad message format"};
  return r;
}

std::vector<std::int64_t> offsets(const std::vector<record>& recs) {
  std::vector<std::int64_t> out;
  for (auto& r : recs)
    out.push_back(r.offset);
  return out;
}

/// The log starts at `start`; counts how often it was asked.
read_window::loss_rules log_starting_at(std::int64_t start, bool fail, int* asked) {
  read_window::loss_rules rules;
  rules.fail_on_data_loss = fail;
  rules.partition = "t-0";
  rules.log_start = [start, asked] {
    ++*asked;
    return start;
  };
  return rules;
}

using ints = std::vector<std::int64_t>;

} // namespace

BOOST_AUTO_TEST_SUITE(read_windows)

BOOST_AUTO_TEST_CASE(re_deliveries_go_and_records_past_the_limit_wait_in_order) {
  read_window window;
  int asked = 0;
  auto loss = log_starting_at(0, true, &asked);
  auto recs = at({3, 4, 5, 6, 7, 8});
  auto cut = window.trim(recs, {5, 7, std::nullopt}, loss);
  BOOST_TEST(offsets(recs) == (ints{5, 6})); // 3, 4 were issued before
  BOOST_TEST(cut.bytes_held_back == 4u);     // "v7", "v8"
  BOOST_TEST(window.held_count() == 2u);
  BOOST_TEST(!cut.handled.has_value());
  BOOST_TEST(asked == 0); // no gap: the log start is not asked for
  // The next epoch reads the held records first.
  std::vector<record> next;
  BOOST_TEST(window.take_held(next, 1) == 2u);
  BOOST_TEST(offsets(next) == (ints{7}));
  BOOST_TEST(window.held_count() == 1u);
}

BOOST_AUTO_TEST_CASE(records_at_or_past_the_end_offset_belong_to_a_later_run) {
  read_window window;
  int asked = 0;
  auto recs = at({0, 1, 2, 3});
  window.trim(recs, {0, no_limit, 2}, log_starting_at(0, true, &asked));
  BOOST_TEST(offsets(recs) == (ints{0, 1}));
  BOOST_TEST(!window.holds());
}

BOOST_AUTO_TEST_CASE(an_undecodable_set_is_stepped_over_one_offset_at_a_time) {
  read_window window;
  int asked = 0;
  auto loss = log_starting_at(0, true, &asked);
  auto recs = at({10, 11});
  recs.push_back(undecodable(12));
  for (auto& r : at({20, 21}))
    recs.push_back(std::move(r));
  auto cut = window.trim(recs, {10, no_limit, std::nullopt}, loss);
  // Up to the bad set, which goes to the DLQ at its first offset; what came
  // after it is read again after the step.
  BOOST_TEST(offsets(recs) == (ints{10, 11, 12}));
  BOOST_TEST(cut.seek_to.value_or(-1) == 13);
  // librdkafka returns the same set again: its next offset goes to the DLQ.
  std::vector<record> again;
  again.push_back(undecodable(12));
  cut = window.trim(again, {13, no_limit, std::nullopt}, loss);
  BOOST_REQUIRE(again.size() == 1u);
  BOOST_TEST(again[0].offset == 13);
  BOOST_TEST(again[0].error->message.starts_with("offset 13 is inside a record set"));
  BOOST_TEST(cut.seek_to.value_or(-1) == 14);
  // A record past it ends the stepping: the same error again is stale.
  auto past = at({14});
  window.trim(past, {14, no_limit, std::nullopt}, loss);
  std::vector<record> stale;
  stale.push_back(undecodable(12));
  cut = window.trim(stale, {15, no_limit, std::nullopt}, loss);
  BOOST_TEST(stale.empty());
  BOOST_TEST(!cut.seek_to.has_value());
}

BOOST_AUTO_TEST_CASE(a_jump_below_the_log_start_fails_the_run_or_is_counted_once) {
  int asked = 0;
  {
    read_window window;
    auto recs = at({5, 6, 40, 41});
    auto cut =
        window.trim(recs, {5, no_limit, std::nullopt}, log_starting_at(40, true, &asked));
    BOOST_TEST(offsets(recs) == (ints{5, 6})); // what came before the gap
    BOOST_REQUIRE(cut.loss_failure.has_value());
    BOOST_TEST(cut.loss_failure->find("33 record(s) were deleted") != std::string::npos);
    BOOST_TEST(cut.loss_failure->find("source.failOnDataLoss is true") !=
               std::string::npos);
    BOOST_TEST(!cut.handled.has_value());
  }
  {
    read_window window;
    auto rules = log_starting_at(40, false, &asked);
    rules.lost_until = 20; // an earlier chain counted [7, 20)
    auto recs = at({5, 6, 40, 41});
    auto cut = window.trim(recs, {5, no_limit, std::nullopt}, rules);
    BOOST_TEST(offsets(recs) == (ints{5, 6, 40, 41}));
    BOOST_REQUIRE(cut.lost.size() == 1u);
    BOOST_TEST(cut.lost[0].from == 20);
    BOOST_TEST(cut.lost[0].to == 40);
    BOOST_TEST(!cut.loss_failure.has_value());
  }
  // A hole above the log start is compaction or markers, never loss; the
  // log start is asked for once per trim, at the first hole.
  read_window window;
  asked = 0;
  auto recs = at({5, 9, 12, 20});
  auto cut =
      window.trim(recs, {5, no_limit, std::nullopt}, log_starting_at(0, true, &asked));
  BOOST_TEST(offsets(recs) == (ints{5, 9, 12, 20}));
  BOOST_TEST(cut.lost.empty());
  BOOST_TEST(!cut.loss_failure.has_value());
  BOOST_TEST(asked == 1);
}

BOOST_AUTO_TEST_CASE(offsets_past_the_end_of_log_without_records_are_handled) {
  read_window window;
  int asked = 0;
  auto loss = log_starting_at(0, true, &asked);
  // Records to 7, then the end of log at 10: 8 and 9 were markers.
  auto recs = at({6, 7});
  window.note_poll(10, recs);
  BOOST_TEST(window.end_of_log() == 10);
  auto cut = window.trim(recs, {6, no_limit, std::nullopt}, loss);
  BOOST_REQUIRE(cut.handled.has_value());
  BOOST_TEST(cut.handled->first == 8);
  BOOST_TEST(cut.handled->second == 10);
  // Within the epoch's limit and the run's end only.
  std::vector<record> none;
  cut = window.trim(none, {8, 9, std::nullopt}, loss);
  BOOST_REQUIRE(cut.handled.has_value());
  BOOST_TEST(cut.handled->second == 9);
  cut = window.trim(none, {8, no_limit, 8}, loss);
  BOOST_TEST(!cut.handled.has_value());
  // A record from at or past it forgets it.
  auto later = at({10});
  window.note_poll(std::nullopt, later);
  BOOST_TEST(window.end_of_log() == -1);
  // Stepping over an undecodable set forgets it too, and handles nothing
  // past the step: what came after the bad set is fetched again.
  std::vector<record> bad;
  bad.push_back(undecodable(11));
  window.note_poll(30, bad);
  cut = window.trim(bad, {11, no_limit, std::nullopt}, loss);
  BOOST_TEST(cut.seek_to.value_or(-1) == 12);
  BOOST_TEST(window.end_of_log() == -1);
  BOOST_TEST(!cut.handled.has_value());
}

BOOST_AUTO_TEST_CASE(an_admitted_range_ending_in_a_hole_is_handled_to_its_limit) {
  int asked = 0;
  {
    read_window window;
    // Compaction left 5..9 empty; the epoch admits up to 7.
    auto recs = at({10, 11});
    auto cut = window.trim(recs, {5, 7, std::nullopt}, log_starting_at(0, true, &asked));
    BOOST_TEST(recs.empty());
    BOOST_TEST(window.held_count() == 2u);
    BOOST_REQUIRE(cut.handled.has_value());
    BOOST_TEST(cut.handled->first == 5);
    BOOST_TEST(cut.handled->second == 7);
    BOOST_TEST(cut.lost.empty());
    // The next epoch reads the held records first.
    std::vector<record> next;
    window.take_held(next, 10);
    cut = window.trim(next, {7, 11, std::nullopt}, log_starting_at(0, true, &asked));
    BOOST_TEST(offsets(next) == (ints{10})); // 11 is past this epoch's limit too
    BOOST_TEST(window.held_count() == 1u);
    std::vector<record> last;
    window.take_held(last, 10);
    cut = window.trim(last, {11, 20, std::nullopt}, log_starting_at(0, true, &asked));
    BOOST_TEST(offsets(last) == (ints{11}));
    BOOST_TEST(!window.holds());
  }
  // Deleted records (failOnDataLoss false) are skipped whole, past the limit.
  read_window window;
  auto rules = log_starting_at(10, false, &asked);
  auto recs = at({10, 11});
  auto cut = window.trim(recs, {5, 7, std::nullopt}, rules);
  BOOST_REQUIRE(cut.lost.size() == 1u);
  BOOST_TEST(cut.lost[0].from == 5);
  BOOST_TEST(cut.lost[0].to == 10);
  BOOST_REQUIRE(cut.handled.has_value());
  BOOST_TEST(cut.handled->second == 10);
}

BOOST_AUTO_TEST_SUITE_END()
