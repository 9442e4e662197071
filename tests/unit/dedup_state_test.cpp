// The dedup table on real RocksDB files: batches decided against stored
// state, expiry, reopening, restoring changes, the changelog position, and
// the lock that keeps a second store off a directory.

#include "dedup/dedup_table.hpp"
#include "dedup/state_guard.hpp"
#include "state/state_store.hpp"

#include <sluice/errors.hpp>

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
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

/// Verdicts as words, so that a failed comparison says which differ.
std::vector<std::string> names(const std::vector<verdict>& vs) {
  std::vector<std::string> out;
  for (auto v : vs)
    switch (v) {
    case verdict::first:
      out.push_back("first");
      break;
    case verdict::replay:
      out.push_back("replay");
      break;
    case verdict::leftover:
      out.push_back("leftover");
      break;
    case verdict::duplicate:
      out.push_back("duplicate");
      break;
    case verdict::renewed:
      out.push_back("renewed");
      break;
    case verdict::late:
      out.push_back("late");
      break;
    case verdict::replayed_late:
      out.push_back("replayed_late");
      break;
    }
  return out;
}

/// A store in `dir` with 100 keys in table `orders/0`, written to disk.
void write_state(const fs::path& dir) {
  state::store s(dir.string(), 32 << 20, "dedup.stateDir");
  dedup_table t(s.table("orders/0"));
  std::vector<change> changes;
  std::vector<keyed_sighting> batch;
  for (int i = 0; i < 100; ++i)
    batch.push_back({"k" + std::to_string(i), {i, 1000 + i}});
  t.decide_all(batch, window{1min, 0min}, changes);
  s.flush();
}

/// The first file in `dir` whose name starts with `prefix` or ends with `suffix`.
fs::path file_in(const fs::path& dir, std::string_view prefix, std::string_view suffix) {
  for (auto& e : fs::directory_iterator(dir)) {
    auto name = e.path().filename().string();
    if ((!prefix.empty() && name.starts_with(prefix)) ||
        (!suffix.empty() && name.ends_with(suffix)))
      return e.path();
  }
  BOOST_FAIL("no such file in " << dir);
  return {};
}

/// Overwrites `n` bytes of `file` at `at` with garbage.
void scribble(const fs::path& file, std::uintmax_t at, int n) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(at));
  for (int i = 0; i < n; ++i)
    f.put(static_cast<char>(i * 37 + 11));
}

/// Directories beside `dir` that open_state() set aside.
std::vector<fs::path> set_aside_beside(const fs::path& dir) {
  std::vector<fs::path> out;
  for (auto& e : fs::directory_iterator(dir.parent_path()))
    if (e.path().filename().string().starts_with(dir.filename().string() + ".damaged-"))
      out.push_back(e.path());
  return out;
}

dedup_options dedup_in(const fs::path& dir, std::string changelog) {
  dedup_options o;
  o.key = {"order_id"};
  o.within = 1min;
  o.state_dir = dir.string();
  o.changelog = std::move(changelog);
  return o;
}

dedup::state_owner owner(std::string cluster, const std::string& pipeline,
                         std::string changelog = "") {
  dedup::state_owner o;
  o.cluster = std::move(cluster);
  o.pipeline = pipeline;
  o.group = "group-of-" + pipeline;
  o.input = "[orders]";
  if (!changelog.empty()) o.changelog_cluster = "cluster-b";
  o.changelog = std::move(changelog);
  return o;
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
  auto v = t.decide_all(records({{"a", 0, 1000}, {"b", 1, 1000}, {"a", 2, 2000}}),
                        window{1min, 0min}, changes);
  BOOST_TEST(
      (v == std::vector<verdict>{verdict::first, verdict::first, verdict::duplicate}));
  BOOST_TEST(t.rows() == 2);
  BOOST_TEST(changes.size() == 2u);
  // The next batch sees the stored state; a replay of offset 0 passes.
  changes.clear();
  v = t.decide_all(records({{"a", 0, 1000}, {"b", 5, 3000}, {"c", 6, 3000}}),
                   window{1min, 0min}, changes);
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
    t.decide_all(batch, window{1min, 0min}, changes);
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
  auto v = t.decide_all(records({{"k5", 2000, 30000}}), window{1min, 0min}, changes);
  BOOST_TEST((v == std::vector<verdict>{verdict::duplicate}));
  // Event time moves 2 minutes past the first keys: 500 expire.
  changes.clear();
  t.decide_all(records({{"late", 2001, 1499 + 60001}}), window{1min, 0min}, changes);
  changes.clear();
  BOOST_TEST(t.purge(window{1min, 0min}, 100000, changes) == 500);
  BOOST_TEST(changes.size() == 500u);
  BOOST_TEST(!changes.front().now.has_value());
  BOOST_TEST(changes.front().key == "k0");
  BOOST_TEST(t.rows() == 501);
  // A purged key passes again as a first sighting.
  changes.clear();
  v = t.decide_all(records({{"k1", 2002, 61500}}), window{1min, 0min}, changes);
  BOOST_TEST((v == std::vector<verdict>{verdict::first}));
  // A second purge finds nothing more to remove.
  changes.clear();
  BOOST_TEST(t.purge(window{1min, 0min}, 100000, changes) == 0);
}

BOOST_AUTO_TEST_CASE(a_late_record_passes_and_is_not_stored) {
  temp_dir dir;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  dedup_table t(s.table("orders/0"));
  std::vector<change> changes;
  auto v = t.decide_all(records({{"a", 0, 100000}, {"b", 1, 10000}, {"b", 2, 10001}}),
                        window{1min, 0min}, changes);
  // b is 90 s behind the event-time progress: both pass as late, neither is kept.
  BOOST_TEST(names(v) == names({verdict::first, verdict::late, verdict::late}),
             boost::test_tools::per_element());
  BOOST_TEST(t.rows() == 1);
  BOOST_TEST(t.last_stored() == 1);
  // A late record whose key is still held within the window of its own time
  // is a duplicate all the same: c at 45 s is held (55 s behind), its copy at
  // 39 s is late (61 s behind) but 6 s from the sighting.
  changes.clear();
  v = t.decide_all(records({{"c", 3, 45000}, {"c", 4, 39000}}), window{1min, 0min},
                   changes);
  BOOST_TEST(names(v) == names({verdict::first, verdict::duplicate}),
             boost::test_tools::per_element());
}

// The late duplicates a new user found passing: 1,000 keys, then 500 records
// 90 minutes ahead (within is 1 hour), then a copy of each key 30 s after
// its first sighting. Before allowedLateness, the sightings counted as
// expired and every copy passed as late.
std::vector<keyed_sighting> late_duplicates_sequence() {
  constexpr std::int64_t t0 = 1'000'000'000, minute = 60'000;
  std::vector<keyed_sighting> out;
  std::int64_t offset = 0;
  for (int i = 0; i < 1000; ++i)
    out.push_back({"k" + std::to_string(i), {offset++, t0 + i}});
  for (int i = 0; i < 500; ++i)
    out.push_back({"ahead" + std::to_string(i), {offset++, t0 + 90 * minute + i}});
  for (int i = 0; i < 1000; ++i)
    out.push_back({"k" + std::to_string(i), {offset++, t0 + i + 30'000}});
  return out;
}

std::map<std::string, int> tally(const std::vector<verdict>& vs) {
  std::map<std::string, int> out;
  for (auto& n : names(vs))
    ++out[n];
  return out;
}

BOOST_AUTO_TEST_CASE(a_duplicate_is_caught_late_while_its_sighting_is_kept) {
  const auto sequence = late_duplicates_sequence();
  temp_dir dir;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  std::vector<change> changes;
  // within 1 h, allowedLateness 1 h (its default): the copies are 90 min
  // behind the progress, sightings are kept for 2 h.
  dedup_table kept(s.table("orders/0"));
  auto v = tally(kept.decide_all(sequence, window{1h, 1h}, changes));
  BOOST_TEST(v["first"] == 1500);
  BOOST_TEST(v["duplicate"] == 1000);
  BOOST_TEST(v["late"] == 0);
  // Purging at the progress keeps the sightings the copies need...
  BOOST_TEST(kept.purge(window{1h, 1h}, 100000, changes) == 0);
  // ...and removes them once the progress is past within + allowedLateness.
  kept.decide_all(records({{"later", 5000, 1'000'000'000 + 121 * 60'000}}),
                  window{1h, 1h}, changes);
  BOOST_TEST(kept.purge(window{1h, 1h}, 100000, changes) == 1000);

  // Without lateness the copies cannot be told from new keys: late.
  dedup_table none(s.table("orders/1"));
  v = tally(none.decide_all(sequence, window{1h, 0h}, changes));
  BOOST_TEST(v["duplicate"] == 0);
  BOOST_TEST(v["late"] == 1000);
}

BOOST_AUTO_TEST_CASE(a_replay_meets_the_progress_its_first_reading_met) {
  // A chain decides A, then B three minutes on, then C (new, and late behind
  // B), fails before delivering, and is restarted: from A (in one batch), and
  // later from C. Each time the table goes back to the progress that batch
  // start met: A is new again (its sighting was purged) or a replay, B a
  // replay, C late again (lateRecords drop or dlq holds), not passed.
  const window w{1min, 1min};
  temp_dir dir;
  std::vector<change> changes;
  {
    state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
    dedup_table t(s.table("orders/0"));
    BOOST_TEST(names(t.decide_all(records({{"a", 0, 1000}, {"b", 1, 181000}}), w, changes,
                                  0)) == names({verdict::first, verdict::first}),
               boost::test_tools::per_element());
    BOOST_TEST(names(t.decide_all(records({{"c", 2, 2000}}), w, changes, 2)) ==
                   names({verdict::late}),
               boost::test_tools::per_element());
    t.purge(w, 100000, changes); // a's sighting goes: 180 s behind
    BOOST_TEST(
        names(t.decide_all(records({{"a", 0, 1000}, {"b", 1, 181000}, {"c", 2, 2000}}), w,
                           changes, 0)) ==
            names({verdict::first, verdict::replay, verdict::late}),
        boost::test_tools::per_element());
  }
  // The same after the process restarts (the snapshots are kept with the
  // state): from A (without going back, A's sighting would be past keeping,
  // and A late), then from C's batch.
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  dedup_table t(s.table("orders/0"));
  BOOST_TEST(names(t.decide_all(
                 records({{"a", 0, 1000}, {"b", 1, 181000}, {"c", 2, 2000}}), w, changes,
                 0)) == names({verdict::replay, verdict::replay, verdict::late}),
             boost::test_tools::per_element());
  BOOST_TEST(names(t.decide_all(records({{"c", 2, 2000}, {"d", 3, 2000}}), w, changes,
                                2)) == names({verdict::late, verdict::late}),
             boost::test_tools::per_element());
  // A restart point where no batch started, with no record before the next
  // batch's start (a range handled without a batch): that batch's snapshot.
  dedup_table gap(s.table("orders/5"));
  gap.decide_all(records({{"a", 0, 1000}, {"b", 1, 181000}}), w, changes, 0);
  gap.decide_all(records({{"c", 4, 2000}}), w, changes, 4); // 2 and 3: markers
  dedup_table gap_again(s.table("orders/5"));
  BOOST_TEST(names(gap_again.decide_all(records({{"c", 4, 2000}}), w, changes, 2)) ==
                 names({verdict::late}),
             boost::test_tools::per_element());
  // A table restored from the changelog has no snapshots: the writer's
  // uncommitted work read again meets a progress that may be ahead of the
  // one it first met, so its late records pass rather than be dropped.
  dedup_table restored(s.table("orders/9"));
  restored.restore({{"a", sighting{0, 100000}}, {"b", sighting{1, 181000}}});
  BOOST_TEST(names(restored.decide_all(records({{"a", 0, 100000}}), w, changes, 0)) ==
                 names({verdict::replay}),
             boost::test_tools::per_element());
  BOOST_TEST(names(restored.decide_all(records({{"x", 1, 1000}, {"y", 5, 1000}}), w,
                                       changes, 1)) ==
                 names({verdict::replayed_late, verdict::late}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(late_verdicts_do_not_depend_on_batches_or_purges) {
  // Keys first seen, then the progress moves past within + lateness for
  // some of them, then copies: record by record with a purge after each, and
  // all in one batch, give the same verdicts.
  const auto sequence = records({{"a", 0, 1000},
                                 {"b", 1, 50000},
                                 {"x", 2, 150000}, // progress: a is 149 s behind
                                 {"a", 3, 1500},   // a is gone (kept 2 min): late
                                 {"b", 4, 50500},  // b is kept (100 s): duplicate
                                 {"c", 5, 20000},  // new and 130 s behind: late
                                 {"d", 6, 40000},  // new, 110 s behind: first
                                 {"d", 7, 40001}});
  const std::vector<verdict> expected{verdict::first, verdict::first,     verdict::first,
                                      verdict::late,  verdict::duplicate, verdict::late,
                                      verdict::first, verdict::duplicate};
  const window w{1min, 1min};
  temp_dir dir;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  dedup_table whole(s.table("orders/0")), single(s.table("orders/1"));
  std::vector<change> changes;
  BOOST_TEST(names(whole.decide_all(sequence, w, changes)) == names(expected),
             boost::test_tools::per_element());
  std::vector<verdict> one_by_one;
  for (auto& r : sequence) {
    one_by_one.push_back(single.decide_all({r}, w, changes).at(0));
    single.purge(w, 100000, changes);
  }
  BOOST_TEST(names(one_by_one) == names(expected), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_time_far_ahead_of_the_clock_does_not_move_the_progress) {
  // The clock reads 40 s and within is 1 min: the ceiling (now + within) is
  // 100 s. One record stamped 2 hours ahead must leave the progress where it
  // was: at the ceiling, every record older than the clock would count as
  // late (passed without dedup) and real sightings would be purged.
  const auto sequence = records({{"a", 0, 1000},
                                 {"z", 1, 40000 + 7'200'000}, // 2 h ahead
                                 {"b", 2, 30000},
                                 {"b", 3, 35000},             // re-sent b
                                 {"a", 4, 2000},              // re-sent a
                                 {"z", 5, 40000 + 7'201'000}, // re-sent z, same clock
                                 {"c", 6, 36000}});
  const std::vector<verdict> expected{
      verdict::first,     verdict::first,     verdict::first, verdict::duplicate,
      verdict::duplicate, verdict::duplicate, verdict::first};
  temp_dir dir;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  // In one batch, and one record per batch: the same verdicts.
  dedup_table whole(s.table("orders/0")), single(s.table("orders/1"));
  whole.set_progress_ceiling(100000);
  single.set_progress_ceiling(100000);
  std::vector<change> changes;
  BOOST_TEST(names(whole.decide_all(sequence, window{1min, 0min}, changes)) ==
                 names(expected),
             boost::test_tools::per_element());
  std::vector<verdict> one_by_one;
  for (auto& r : sequence) {
    auto v = single.decide_all({r}, window{1min, 0min}, changes);
    one_by_one.push_back(v.at(0));
    if (r.key == "z" && r.seen.offset == 1) // z left the progress at a's time
      BOOST_TEST(single.stream_time().value_or(-1) == 1000);
  }
  BOOST_TEST(names(one_by_one) == names(expected), boost::test_tools::per_element());
  for (auto* t : {&whole, &single}) {
    BOOST_TEST(t->stream_time().value_or(-1) == 36000);
    // a, b, c, and z: its sighting is stored, so its own re-sends are dropped.
    BOOST_TEST(t->rows() == 4);
    // Nothing is purged: a (1 s) is within 1 min of the progress (36 s).
    changes.clear();
    BOOST_TEST(t->purge(window{1min, 0min}, 100000, changes) == 0);
  }
}

BOOST_AUTO_TEST_CASE(a_restored_time_far_ahead_of_the_clock_does_not_move_the_progress) {
  temp_dir dir;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  dedup_table t(s.table("orders/0"));
  t.set_progress_ceiling(100000); // the clock reads 40 s; within is 1 min
  t.restore({{"a", sighting{0, 1000}}, {"z", sighting{1, 40000 + 7'200'000}}});
  BOOST_TEST(t.stream_time().value_or(-1) == 1000);
  std::vector<change> changes;
  auto v = t.decide_all(records({{"b", 2, 30000}, {"b", 3, 35000}, {"a", 4, 2000}}),
                        window{1min, 0min}, changes);
  BOOST_TEST((
      v == std::vector<verdict>{verdict::first, verdict::duplicate, verdict::duplicate}));
}

BOOST_AUTO_TEST_CASE(a_stored_progress_far_ahead_of_the_clock_is_not_used) {
  // A state whose progress ran ahead (kept from a machine whose clock was
  // ahead, or a clock set back since): the progress is forgotten, not put at
  // the ceiling, where every record older than the clock would be late.
  temp_dir dir;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  {
    dedup_table t(s.table("orders/0"));
    std::vector<change> changes;
    t.decide_all(records({{"a", 0, 1000}, {"z", 1, 7'240'000}}), window{1min, 0min},
                 changes);
    BOOST_TEST(t.stream_time().value_or(-1) == 7'240'000);
  }
  dedup_table t(s.table("orders/0"));
  BOOST_TEST(t.set_progress_ceiling(100000));
  BOOST_TEST(!t.stream_time().has_value());
  BOOST_TEST(!t.set_progress_ceiling(100000)); // said once
  std::vector<change> changes;
  auto v = t.decide_all(records({{"b", 2, 30000}, {"b", 3, 35000}, {"a", 4, 2000}}),
                        window{1min, 0min}, changes);
  BOOST_TEST((
      v == std::vector<verdict>{verdict::first, verdict::duplicate, verdict::duplicate}));
  BOOST_TEST(t.stream_time().value_or(-1) == 35000);
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
  auto v = t.decide_all(records({{"a", 7, 2000}, {"a", 8, 2500}, {"b", 9, 2500}}),
                        window{1min, 0min}, changes);
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
  t.decide_all(records({{"a", 0, 1000}, {"b", 1, 1000}}), window{1min, 0min}, changes);
  t.set_changelog_position(2, "log/0/1");
  s.flush();
  t.decide_all(records({{"c", 2, 1000}}), window{1min, 0min}, changes);
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

BOOST_AUTO_TEST_CASE(a_damaged_state_directory_is_not_a_bad_option) {
  // Each way of damage, and that RocksDB calls it so at open: a data block
  // that opens fine is found by its checksum, not mid-run.
  const std::vector<std::pair<std::string, std::function<void(const fs::path&)>>> damages{
      {"CURRENT emptied", [](auto& d) { fs::resize_file(d / "CURRENT", 0); }},
      {"MANIFEST scribbled",
       [](auto& d) { scribble(file_in(d, "MANIFEST-", ""), 10, 50); }},
      {"MANIFEST deleted", [](auto& d) { fs::remove(file_in(d, "MANIFEST-", "")); }},
      {"SST file cut short",
       [](auto& d) { fs::resize_file(file_in(d, "", ".sst"), 100); }},
      {"SST data block scribbled",
       [](auto& d) { scribble(file_in(d, "", ".sst"), 200, 200); }},
  };
  for (auto& [what, damage] : damages) {
    BOOST_TEST_CONTEXT(what) {
      temp_dir dir;
      write_state(dir.path);
      damage(dir.path);
      try {
        state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
        BOOST_ERROR("a damaged state opened");
      } catch (const state::damaged_error& e) {
        BOOST_TEST(e.dir() == dir.path.string());
        BOOST_TEST(std::string(e.what()).find("is damaged") != std::string::npos);
      } catch (const config_error& e) {
        BOOST_ERROR("damage taken for a bad option: " << e.what());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_damaged_state_is_set_aside_when_a_changelog_can_rebuild_it) {
  temp_dir dir;
  write_state(dir.path);
  fs::resize_file(dir.path / "CURRENT", 0);
  auto s = open_state(dedup_in(dir.path, "events-changelog"), 32 << 20);
  BOOST_TEST(s->empty()); // a new state: each partition restores from the changelog
  BOOST_TEST(s->table_names().empty());
  auto aside = set_aside_beside(dir.path);
  BOOST_REQUIRE(aside.size() == 1u);
  BOOST_TEST(fs::file_size(aside[0] / "CURRENT") == 0u); // the old files, kept
  s.reset();
  fs::remove_all(aside[0]);
}

BOOST_AUTO_TEST_CASE(a_damaged_state_without_a_changelog_fails_saying_what_to_delete) {
  temp_dir dir;
  write_state(dir.path);
  fs::resize_file(dir.path / "CURRENT", 0);
  try {
    open_state(dedup_in(dir.path, ""), 32 << 20);
    BOOST_FAIL("a damaged state opened without a changelog");
  } catch (const config_error& e) {
    BOOST_FAIL("taken for a bad option: " << e.what());
  } catch (const fatal_error& e) {
    std::string text = e.what();
    BOOST_TEST(text.find("`" + dir.path.string() + "` is damaged") != std::string::npos,
               text);
    BOOST_TEST(text.find("delete `" + dir.path.string() + "`") != std::string::npos,
               text);
  }
  BOOST_TEST(set_aside_beside(dir.path).empty());
  BOOST_TEST(fs::exists(dir.path / "CURRENT")); // left as it is
}

BOOST_AUTO_TEST_CASE(a_state_records_its_owner_and_keeps_only_its_own) {
  temp_dir dir;
  auto a = owner("cluster-a", "p", "events-changelog");
  auto b = owner("cluster-b", "p", "events-changelog");
  {
    state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
    BOOST_TEST(claim_state(s, a).what == claim_outcome::adopted); // empty
    dedup_table t(s.table("orders/0"));
    std::vector<change> changes;
    t.decide_all(records({{"x", 0, 1000}}), window{1min, 0min}, changes);
  }
  {
    state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
    BOOST_TEST(claim_state(s, a).what == claim_outcome::kept);
    BOOST_TEST(!s.empty());
    // Another cluster's run with a changelog: the tables go, to be restored.
    auto outcome = claim_state(s, b);
    BOOST_TEST(outcome.what == claim_outcome::rebuilt);
    BOOST_TEST((outcome.previous == a));
    BOOST_TEST(s.empty());
    BOOST_TEST(s.table_names().empty());
    dedup_table t(s.table("orders/0")); // made anew, empty
    BOOST_TEST(t.rows() == 0);
    std::vector<change> changes;
    BOOST_TEST(names(t.decide_all(records({{"x", 5, 1000}}), window{1min, 0min},
                                  changes)) == names({verdict::first}));
  }
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  BOOST_TEST(claim_state(s, b).what == claim_outcome::kept); // b's now, on disk
}

BOOST_AUTO_TEST_CASE(another_owners_state_without_a_changelog_fails_naming_both) {
  temp_dir dir;
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  auto first = owner("cluster-a", "orders-eu");
  auto second = owner("cluster-a", "orders-us");
  claim_state(s, first);
  {
    dedup_table t(s.table("orders/0"));
    std::vector<change> changes;
    t.decide_all(records({{"x", 0, 1000}}), window{1min, 0min}, changes);
  }
  try {
    claim_state(s, second);
    BOOST_FAIL("another pipeline's state was taken");
  } catch (const fatal_error& e) {
    std::string text = e.what();
    BOOST_TEST(text.find(first.describe()) != std::string::npos, text);
    BOOST_TEST(text.find(second.describe()) != std::string::npos, text);
    BOOST_TEST(text.find("delete `" + dir.path.string() + "`") != std::string::npos,
               text);
  }
  BOOST_TEST(!s.empty()); // untouched
  BOOST_TEST(claim_state(s, first).what == claim_outcome::kept);
}

BOOST_AUTO_TEST_CASE(a_state_with_keys_and_no_owner_is_of_unknown_provenance) {
  // Written before owners were recorded (0.4.0): not trusted.
  temp_dir dir;
  write_state(dir.path);
  {
    state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
    BOOST_CHECK_THROW(claim_state(s, owner("cluster-a", "p")), fatal_error);
    BOOST_TEST(!s.empty());
  }
  state::store s(dir.path.string(), 32 << 20, "dedup.stateDir");
  auto outcome = claim_state(s, owner("cluster-a", "p", "events-changelog"));
  BOOST_TEST(outcome.what == claim_outcome::rebuilt);
  BOOST_TEST(!outcome.previous.has_value());
  BOOST_TEST(s.empty());
}

BOOST_AUTO_TEST_CASE(an_owner_is_kept_as_json_and_names_its_input) {
  auto o = owner("abc", "orders", "orders-dedup-changelog");
  BOOST_TEST((state_owner::decode(o.encode()) == o));
  BOOST_TEST(!state_owner::decode("{}").has_value());
  BOOST_TEST(!state_owner::decode("nonsense").has_value());
  source_options src;
  src.subscribe = {"b", "a", "b"};
  BOOST_TEST(input_of(src) == "[a,b]");
  src.subscription = subscription_kind::assign;
  src.assign = {{"t", 3}, {"s", 0}, {"t", 1}};
  BOOST_TEST(input_of(src) == "[s,t]");
  src.subscription = subscription_kind::pattern;
  src.pattern = "orders-.*";
  BOOST_TEST(input_of(src) == "pattern orders-.*");
}

BOOST_AUTO_TEST_SUITE_END()
