#include "dedup/window_rules.hpp"

#include <boost/test/unit_test.hpp>

#include <map>
#include <string>
#include <vector>

using namespace sluice::dedup;
using namespace std::chrono_literals;

namespace {

/// Applies the rules to records of one partition in order, as the stage does
/// within a batch (a duplicate inside the batch is caught by what the batch
/// itself stored). Returns the keys that passed.
std::vector<std::string>
apply(std::map<std::string, sighting>& state,
      const std::vector<std::pair<std::string, sighting>>& records,
      std::chrono::milliseconds within) {
  std::vector<std::string> passed;
  for (auto& [key, rec] : records) {
    auto it = state.find(key);
    auto d =
        decide(it == state.end() ? std::optional<sighting>{} : it->second, rec, within);
    if (d.store) state[key] = *d.store;
    if (d.passes()) passed.push_back(key + "@" + std::to_string(rec.offset));
  }
  return passed;
}

} // namespace

BOOST_AUTO_TEST_SUITE(dedup_window)

BOOST_AUTO_TEST_CASE(a_first_sighting_passes_and_is_stored) {
  auto d = decide(std::nullopt, {10, 1000}, 1h);
  BOOST_TEST((d.what == verdict::first));
  BOOST_TEST(d.passes());
  BOOST_TEST((d.store == sighting{10, 1000}));
}

BOOST_AUTO_TEST_CASE(another_offset_within_the_window_is_a_duplicate) {
  auto d = decide(sighting{10, 1000}, {15, 1000 + 3600 * 1000}, 1h); // exactly 1 h later
  BOOST_TEST((d.what == verdict::duplicate));
  BOOST_TEST(!d.passes());
  BOOST_TEST(!d.store.has_value()); // the first sighting stays
  // Event times out of order count by their distance.
  BOOST_TEST((decide(sighting{10, 5000}, {11, 4000}, 1s).what == verdict::duplicate));
}

BOOST_AUTO_TEST_CASE(past_the_window_a_record_passes_and_becomes_the_first_sighting) {
  auto d = decide(sighting{10, 1000}, {15, 1000 + 3600 * 1000 + 1}, 1h);
  BOOST_TEST((d.what == verdict::renewed));
  BOOST_TEST(d.passes());
  BOOST_TEST((d.store == sighting{15, 1000 + 3600 * 1000 + 1}));
}

BOOST_AUTO_TEST_CASE(the_same_offset_is_a_replay_and_passes) {
  // After a restart the committed offset is behind the state: reading the
  // stored record again must not drop it.
  auto d = decide(sighting{10, 1000}, {10, 1000}, 1h);
  BOOST_TEST((d.what == verdict::replay));
  BOOST_TEST(d.passes());
  BOOST_TEST(!d.store.has_value());
}

BOOST_AUTO_TEST_CASE(a_sighting_at_a_higher_offset_is_left_from_uncommitted_work) {
  // Stored at 20 by a run that crashed before committing; the replay reads
  // the key at 12 first: it passes and replaces the leftover.
  auto d = decide(sighting{20, 1500}, {12, 1000}, 1h);
  BOOST_TEST((d.what == verdict::leftover));
  BOOST_TEST(d.passes());
  BOOST_TEST((d.store == sighting{12, 1000}));
}

BOOST_AUTO_TEST_CASE(duplicates_inside_one_batch_are_caught_and_a_replay_drops_nothing) {
  std::map<std::string, sighting> state;
  std::vector<std::pair<std::string, sighting>> batch{{"a", {0, 1000}},
                                                      {"b", {1, 1000}},
                                                      {"a", {2, 1500}},
                                                      {"a", {3, 1000 + 61000}},
                                                      {"b", {4, 2000}}};
  auto passed = apply(state, batch, 1min);
  BOOST_TEST(passed == (std::vector<std::string>{"a@0", "b@1", "a@3"}));
  BOOST_TEST((state.at("a") == sighting{3, 62000})); // renewed past the window
  BOOST_TEST((state.at("b") == sighting{1, 1000}));
  // A restart replays the batch against the state it left: exactly the same
  // records pass (a@0 is below the stored a@3: a leftover; b@1 a replay) and
  // the same are dropped. A restart never turns a passed record into a drop.
  auto again = apply(state, batch, 1min);
  BOOST_TEST(again == passed);
}

BOOST_AUTO_TEST_CASE(a_sighting_expires_once_event_time_passed_the_window) {
  sighting s{10, 1000};
  BOOST_TEST(!expired(s, 1000 + 60000, 1min)); // a record now could still match it
  BOOST_TEST(expired(s, 1000 + 60001, 1min));
}

BOOST_AUTO_TEST_SUITE_END()
