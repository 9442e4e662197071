// The dedup table on real RocksDB files: batches decided against stored
// state, expiry, reopening, restoring changes, the changelog position, and
// the lock that keeps a second store off a directory.

#include "runtime/dedup/dedup_table.hpp"
#include "runtime/errors.hpp"
#include "runtime/state/state_store.hpp"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <thread>
#include <unistd.h>

using namespace sluice;
using namespace sluice::dedup;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path =
      fs::temp_directory_path() / ("sluice-state-unit-" + std::to_string(::getpid()) +
                                   "-" + std::to_string(counter++));
  temp_dir() { fs::remove_all(path); }
  ~temp_dir() { fs::remove_all(path); }
  static inline int counter = 0;
};

std::vector<keyed_sighting>
records(std::initializer_list<std::tuple<const char*, std::int64_t, std::int64_t>> list) {
  std::vector<keyed_sighting> out;
  for (auto& [k, offset, time] : list)
    out.push_back({k, {offset, time}});
  return out;
}

bool eventually_wanted(state::partition_table& t) {
  for (int i = 0; i < 20000; ++i) { // 20 s at most
    if (t.wanted()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

} // namespace

BOOST_AUTO_TEST_SUITE(dedup_state)

BOOST_AUTO_TEST_CASE(a_batch_is_decided_against_the_state_and_itself) {
  temp_dir dir;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  dedup_table t(s.table("orders/0"));
  std::vector<change> changes;
  auto v = t.decide_all(records({{"a", 0, 1000}, {"b", 1, 1000}, {"a", 2, 2000}}), 1min,
                        changes);
  BOOST_TEST(
      (v == std::vector<verdict>{verdict::first, verdict::first, verdict::duplicate}));
  BOOST_TEST(t.rows() == 2);
  BOOST_TEST(changes.size() == 2u);
  // The next batch sees the stored state; a replay of offset 0 passes.
  changes.clear();
  v = t.decide_all(records({{"a", 0, 1000}, {"b", 5, 3000}, {"c", 6, 3000}}), 1min,
                   changes);
  BOOST_TEST(
      (v == std::vector<verdict>{verdict::replay, verdict::duplicate, verdict::first}));
  BOOST_TEST(t.rows() == 3);
  BOOST_TEST(changes.size() == 1u); // only c changed
}

BOOST_AUTO_TEST_CASE(state_survives_reopening_and_expired_keys_are_purged) {
  temp_dir dir;
  {
    state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
    dedup_table t(s.table("orders/3"));
    std::vector<change> changes;
    std::vector<keyed_sighting> batch;
    for (int i = 0; i < 1000; ++i)
      batch.push_back({"k" + std::to_string(i), {i, 1000 + i}});
    t.decide_all(batch, 1min, changes);
    BOOST_TEST(t.rows() == 1000);
    t.set_changelog_position(1234, "log/0/4");
  }
  BOOST_TEST(fs::exists(dir.path / "CURRENT"));
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  dedup_table t(s.table("orders/3"));
  BOOST_TEST(t.rows() == 1000);
  BOOST_TEST(t.changelog_position("log/0/4").value_or(-1) == 1234);
  // A position counts only in the log it was recorded for.
  BOOST_TEST(!t.changelog_position("log/0/8").has_value());
  BOOST_TEST(!t.changelog_position("other/0/4").has_value());
  BOOST_TEST(t.stream_time().value_or(-1) == 1999);
  std::vector<change> changes;
  auto v = t.decide_all(records({{"k5", 2000, 30000}}), 1min, changes);
  BOOST_TEST((v == std::vector<verdict>{verdict::duplicate}));
  // Event time moves 2 minutes past the first keys: 500 expire.
  changes.clear();
  t.decide_all(records({{"late", 2001, 1499 + 60001}}), 1min, changes);
  changes.clear();
  BOOST_TEST(t.purge(1min, 100000, changes) == 500);
  BOOST_TEST(changes.size() == 500u);
  BOOST_TEST(!changes.front().now.has_value());
  BOOST_TEST(changes.front().key == "k0");
  BOOST_TEST(t.rows() == 501);
  // A purged key passes again as a first sighting.
  changes.clear();
  v = t.decide_all(records({{"k1", 2002, 61500}}), 1min, changes);
  BOOST_TEST((v == std::vector<verdict>{verdict::first}));
  // A second purge finds nothing more to remove.
  changes.clear();
  BOOST_TEST(t.purge(1min, 100000, changes) == 0);
}

BOOST_AUTO_TEST_CASE(a_late_record_passes_and_is_not_stored) {
  temp_dir dir;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  dedup_table t(s.table("orders/0"));
  std::vector<change> changes;
  auto v = t.decide_all(records({{"a", 0, 100000}, {"b", 1, 10000}, {"b", 2, 10001}}),
                        1min, changes);
  // b is 90 s behind the event-time progress: both pass, neither is kept.
  BOOST_TEST((v == std::vector<verdict>{verdict::first, verdict::first, verdict::first}));
  BOOST_TEST(t.rows() == 1);
  BOOST_TEST(t.last_stored() == 1);
}

BOOST_AUTO_TEST_CASE(a_time_far_ahead_of_the_clock_does_not_move_the_progress) {
  temp_dir dir;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  dedup_table t(s.table("orders/0"));
  t.set_progress_ceiling(100000); // "now + within"
  std::vector<change> changes;
  // One record from the year 33658 (seconds taken for milliseconds, say).
  auto v = t.decide_all(records({{"a", 0, 1000}, {"z", 1, 1'000'000'000'000'000}}), 1min,
                        changes);
  BOOST_TEST(t.stream_time().value_or(-1) == 100000);
  // Records near the clock are still stored and deduplicated.
  changes.clear();
  v = t.decide_all(records({{"b", 2, 90000}, {"b", 3, 95000}}), 1min, changes);
  BOOST_TEST((v == std::vector<verdict>{verdict::first, verdict::duplicate}));
  BOOST_TEST(t.rows() == 3);
}

BOOST_AUTO_TEST_CASE(changes_from_the_changelog_are_applied_in_order) {
  temp_dir dir;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  dedup_table t(s.table("orders/1"));
  t.restore({{"a", sighting{1, 1000}},
             {"b", sighting{2, 1000}},
             {"a", sighting{7, 2000}},
             {"b", std::nullopt}});
  BOOST_TEST(t.rows() == 1);
  std::vector<change> changes;
  auto v = t.decide_all(records({{"a", 7, 2000}, {"a", 8, 2500}, {"b", 9, 2500}}), 1min,
                        changes);
  BOOST_TEST(
      (v == std::vector<verdict>{verdict::replay, verdict::duplicate, verdict::first}));
  t.clear();
  BOOST_TEST(t.rows() == 0);
  BOOST_TEST(!t.stream_time().has_value());
}

BOOST_AUTO_TEST_CASE(a_crash_loses_the_position_with_the_writes_it_covers) {
  // The WAL is off: what survives a crash is what was flushed. Copying the
  // directory of a store still open is what a crash leaves on disk.
  temp_dir dir, crashed;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  dedup_table t(s.table("orders/0"));
  std::vector<change> changes;
  t.decide_all(records({{"a", 0, 1000}, {"b", 1, 1000}}), 1min, changes);
  t.set_changelog_position(2, "log/0/1");
  s.flush();
  t.decide_all(records({{"c", 2, 1000}}), 1min, changes);
  t.set_changelog_position(3, "log/0/1"); // not flushed: lost in the crash
  fs::copy(dir.path, crashed.path, fs::copy_options::recursive);
  state::store after(crashed.path.string(), 32 << 20, "dedup.stateDir");
  dedup_table t2(after.table("orders/0"));
  BOOST_TEST(t2.changelog_position("log/0/1").value_or(-1) == 2);
  BOOST_TEST(t2.rows() == 2); // a and b; c goes with its position
}

BOOST_AUTO_TEST_CASE(a_table_has_one_user_at_a_time) {
  temp_dir dir;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  auto first = s.table("orders/0").acquire(1s);
  BOOST_REQUIRE(first);
  BOOST_TEST(!static_cast<bool>(s.table("orders/0").acquire(50ms))); // held
  BOOST_TEST(static_cast<bool>(s.table("orders/1").acquire(50ms)));  // another is free
  // The holder sees that someone waits (a restore then gives up) and
  // releases from its own thread (a stopped stage's); the waiter gets it.
  BOOST_TEST(!s.table("orders/0").wanted());
  bool saw_wanted = false;
  std::thread holder([&, l = std::move(first)]() mutable {
    saw_wanted = eventually_wanted(s.table("orders/0"));
    l = {};
  });
  BOOST_TEST(static_cast<bool>(s.table("orders/0").acquire(30s)));
  holder.join();
  BOOST_TEST(saw_wanted);
}

BOOST_AUTO_TEST_CASE(sightings_in_the_changelog_are_json) {
  BOOST_TEST(encode_sighting({42, 1700000000000}) ==
             R"({"offset":42,"eventTime":1700000000000})");
  BOOST_TEST((decode_sighting(R"({"offset":42,"eventTime":-5})") == sighting{42, -5}));
  BOOST_TEST(!decode_sighting("{}").has_value());
  BOOST_TEST(!decode_sighting("nonsense").has_value());
}

BOOST_AUTO_TEST_CASE(a_second_store_on_one_directory_is_refused) {
  temp_dir dir;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  try {
    state::store again(dir.path.string(), 32 << 20, "dedup.stateDir");
    BOOST_FAIL("opened twice");
  } catch (const config_error& e) {
    BOOST_TEST(e.option() == "dedup.stateDir");
    BOOST_TEST(std::string(e.what()).find("in use by another process") !=
               std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()
