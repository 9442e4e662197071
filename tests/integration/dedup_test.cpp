// The dedup stage against the embedded broker: exact outputs with
// duplicates inside and beyond the window (explicit record timestamps),
// state kept across runs, state rebuilt from the changelog when the local
// directory is lost, and one memory budget over many partitions.

#include "core/log.hpp"
#include "dedup/changelog.hpp"
#include "state/state_store.hpp"
#include "tests/integration/pipeline_fixture.hpp"
#include "tests/support/kafka_testing.hpp"

#include <sluice/config.hpp>
#include <sluice/errors.hpp>
#include <sluice/pipeline.hpp>
#include <sluice/progress.hpp>
#include <sluice/testing/mock_cluster.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <set>

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000; // epoch ms

/// A fresh state directory under the test's working directory.
std::string state_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() /
             ("sluice-dedup-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir.string();
}

/// Events {"order_id": ..., "n": ...} deduplicated by order_id within 1 minute.
pipeline_config config(const std::string& bootstrap, const std::string& group,
                       const std::string& dir, std::vector<std::string> overrides = {}) {
  return parse_pipeline_config(R"({
    "name": "dedup-test",
    "source": {"kafka.bootstrap.servers": ")" +
                                   bootstrap + R"(", "kafka.group.id": ")" + group + R"(",
               "subscribe": "events", "startingOffsets": "earliest",
               "kafka.session.timeout.ms": 6000, "kafka.fetch.wait.max.ms": 50},
    "parse": {"schema": {"order_id": "string", "n": "long"}},
    "route": {"topic": "out"},
    "sink": {"kafka.bootstrap.servers": ")" +
                                   bootstrap + R"("},
    "dlq": {"topic": "dlq"},
    "dedup": {"key": ["order_id"], "within": "1 minute", "stateDir": ")" +
                                   dir + R"(", "changelog": "events-changelog"},
    "trigger": {"availableNow": true}})",
                               overrides);
}

timed_record event(const std::string& id, int n, std::int64_t at_ms) {
  return {id, R"({"order_id":")" + id + R"(","n":)" + std::to_string(n) + "}", at_ms};
}

/// The "n" of every record in `topic`, in partition then offset order.
std::vector<std::int64_t> ns_in(const std::string& bootstrap, const std::string& topic) {
  std::vector<std::int64_t> out;
  for (auto& c : read_topic(bootstrap, topic))
    out.push_back(boost::json::parse(c.value.value_or("{}")).at("n").as_int64());
  return out;
}

std::int64_t sum_of(const observed_run& r, const char* metric) {
  std::int64_t n = 0;
  for (auto& p : r.progress)
    for (auto& op : p.at("stateOperators").as_array()) {
      auto& o = op.as_object();
      BOOST_TEST(o.at("operatorName").as_string() == "dedupe");
      if (auto* custom = o.at("customMetrics").as_object().if_contains(metric))
        n += custom->as_int64();
      else
        n += o.at(metric).as_int64();
    }
  return n;
}

/// What the run logs while it lives (Sluice's own logger, `sluice`).
struct captured_log {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(10000);
  captured_log() { sluice::logger().sinks().push_back(sink); }
  ~captured_log() {
    auto& sinks = sluice::logger().sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
  }
  std::vector<std::string> containing(std::string_view text) const {
    std::vector<std::string> out;
    for (auto& line : sink->last_formatted())
      if (line.find(text) != std::string::npos) out.push_back(line);
    return out;
  }
};

/// Keys `prefix<i>` for i in [from, to), one record each at `at_ms` + i.
std::vector<timed_record> events(const std::string& prefix, int from, int to, int n0,
                                 std::int64_t at_ms) {
  std::vector<timed_record> out;
  for (int i = from; i < to; ++i)
    out.push_back(event(prefix + std::to_string(i), n0 + i, at_ms + i));
  return out;
}

/// Events `k<p>-0` .. `k<p>-99` in each of the first `partitions` partitions.
void produce_first_events(const std::string& bootstrap, int partitions) {
  for (int p = 0; p < partitions; ++p)
    produce_records(bootstrap, "events", p,
                    events("k" + std::to_string(p) + "-", 0, 100, 0, t0));
}

/// Per partition: events 0..49 re-sent (a retrying producer, 10 s later) and
/// new events 100..149.
void produce_resent_and_new(const std::string& bootstrap, int partitions) {
  for (int p = 0; p < partitions; ++p) {
    auto prefix = "k" + std::to_string(p) + "-";
    auto again = events(prefix, 0, 50, 1000, t0 + 10000);
    auto fresh = events(prefix, 100, 150, 0, t0 + 20000);
    again.insert(again.end(), fresh.begin(), fresh.end());
    produce_records(bootstrap, "events", p, again);
  }
}

struct kept_events {
  std::vector<std::int64_t> ns; ///< the "n" of each output
  std::int64_t duplicates = 0;
};

/// Events {"order_id": <ids[n]>, "n": n} (each id as JSON text) in one
/// partition, deduplicated by order_id with `overrides`; what was kept.
kept_events kept_by_order_id(const std::string& name, const std::vector<std::string>& ids,
                             std::vector<std::string> overrides) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  for (auto t : {"events", "out", "dlq"})
    cluster.create_topic(t, 1);
  std::vector<timed_record> records;
  for (std::size_t n = 0; n < ids.size(); ++n)
    records.push_back({"k",
                       R"({"order_id":)" + ids[n] + R"(,"n":)" + std::to_string(n) + "}",
                       t0 + static_cast<std::int64_t>(n)});
  produce_records(b, "events", 0, records);
  auto dir = state_dir(name);
  overrides.push_back("dedup.changelog=false");
  auto run = run_to_end(config(b, "g-" + name, dir, overrides));
  fs::remove_all(dir);
  BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
  BOOST_TEST(read_topic(b, "dlq").empty());
  return {ns_in(b, "out"), run.summary.duplicate_rows};
}

} // namespace

BOOST_AUTO_TEST_SUITE(dedup)

BOOST_AUTO_TEST_CASE(duplicates_within_the_window_are_dropped_and_beyond_it_pass) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("events", 1);
  cluster.create_topic("out", 1);
  cluster.create_topic("dlq", 1);
  cluster.create_topic("events-changelog", 1);
  produce_records(b, "events", 0,
                  {
                      event("a", 0, t0),           // first a: passes
                      event("b", 1, t0 + 1000),    // first b: passes
                      event("a", 2, t0 + 30000),   // a, 30 s later: duplicate
                      event("a", 3, t0 + 60000),   // a, exactly 1 min: duplicate
                      event("c", 4, t0),           // first c
                      event("c", 5, t0 - 59000),   // 59 s *earlier*: duplicate
                      event("a", 6, t0 + 120000),  // a, 2 min after the first: passes
                      event("a", 7, t0 + 150000),  // duplicate of the renewed a
                      event("b", 8, t0 + 20000),   // b, 19 s later, but event time
                                                   // is at t0 + 150 s: b expired
                      {"x", R"({"n":9})", t0},     // no order_id: DLQ
                      event("d", 10, t0 + 100000), // first d
                      event("d", 11, t0 + 100000), // same time: duplicate
                  });
  auto dir = state_dir("window");
  auto run = run_to_end(config(b, "g-window", dir));
  BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
  BOOST_TEST(ns_in(b, "out") == (std::vector<std::int64_t>{0, 1, 4, 6, 8, 10}),
             boost::test_tools::per_element());
  auto dlq = read_topic(b, "dlq");
  BOOST_REQUIRE(dlq.size() == 1u);
  BOOST_TEST(dlq[0].header_value("sluice.error.type").value_or("") ==
             "missing_dedup_key");
  BOOST_TEST(dlq[0].header_value("sluice.source.offset").value_or("") == "9");
  BOOST_TEST(run.summary.input_rows == 12);
  BOOST_TEST(run.summary.output_rows == 6);
  BOOST_TEST(run.summary.dlq_rows == 1);
  BOOST_TEST(run.summary.duplicate_rows == 5);
  BOOST_TEST(run.summary.dropped_rows == 5);
  // Dropped duplicates are handled: the group holds the end.
  BOOST_TEST(committed_offsets(b, "g-window", "events").at(0) == 12);
  BOOST_TEST(sum_of(run, "numDroppedDuplicateRows") == 5);
  // Stored: a, b, c, a renewed, d; b at offset 8 passes but is not stored,
  // being expired on arrival (a late record): counted as such.
  BOOST_TEST(sum_of(run, "numRowsUpdated") == 5);
  BOOST_TEST(sum_of(run, "numLateRows") == 1);
  BOOST_TEST(run.summary.late_rows == 1);
  // Event time reached t0 + 150 s: b (t0 + 20 s) and c (t0) expired and are
  // purged; a (t0 + 120 s) and d (t0 + 100 s) are held.
  BOOST_TEST(run.summary.state_rows == 2);
  // Every change is in the changelog, keyed per input partition and key; the
  // purged keys end in tombstones.
  std::map<std::string, std::string> latest;
  for (auto& c : read_topic(b, "events-changelog"))
    latest[c.key.value_or("")] = c.value.value_or("(null)");
  BOOST_TEST(latest.size() == 4u);
  BOOST_TEST(latest[R"(events/0/["a"])"] ==
             R"({"offset":6,"eventTime":)" + std::to_string(t0 + 120000) + "}");
  BOOST_TEST(latest[R"(events/0/["d"])"] ==
             R"({"offset":10,"eventTime":)" + std::to_string(t0 + 100000) + "}");
  BOOST_TEST(latest[R"(events/0/["b"])"] == "(null)");
  BOOST_TEST(latest[R"(events/0/["c"])"] == "(null)");
  BOOST_TEST(fs::exists(fs::path(dir) / "CURRENT")); // real RocksDB files
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(records_stamped_far_ahead_of_the_clock_leave_dedup_on) {
  // A producer whose clock runs 2 hours ahead writes 4 records among events
  // stamped by a good clock; then the good events are re-sent. The 4 must
  // not move the partition's event-time progress: every re-send is dropped.
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("events", 1);
  cluster.create_topic("out", 1);
  cluster.create_topic("dlq", 1);
  const auto now = wall_clock_ms();
  auto records = events("k", 0, 100, 0, now - 30000);
  for (int i = 0; i < 4; ++i)
    records.push_back(event("ahead" + std::to_string(i), 500 + i, now + 7'200'000));
  auto again = events("k", 0, 100, 1000, now - 20000);
  records.insert(records.end(), again.begin(), again.end());
  produce_records(b, "events", 0, records);
  auto dir = state_dir("ahead");
  auto run = run_to_end(config(b, "g-ahead", dir, {"dedup.changelog=false"}));
  BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
  BOOST_TEST(run.summary.input_rows == 204);
  BOOST_TEST(run.summary.duplicate_rows == 100);
  BOOST_TEST(run.summary.output_rows == 104);
  BOOST_TEST(run.summary.state_rows == 104); // the 4 are kept: their re-sends drop
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(late_records_are_counted_and_warned_about_once_per_partition) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("events", 2);
  cluster.create_topic("out", 1);
  cluster.create_topic("dlq", 1);
  // Per partition: one event 10 minutes on, then 5 events (and a re-send of
  // one) from 10 minutes before it: late, so they pass without dedup.
  for (int p = 0; p < 2; ++p) {
    auto prefix = "p" + std::to_string(p) + "-";
    auto records = events(prefix + "now", 0, 1, 0, t0 + 600000);
    auto late = events(prefix + "old", 0, 5, 10, t0);
    records.insert(records.end(), late.begin(), late.end());
    records.push_back(event(prefix + "old0", 20, t0 + 1000));
    produce_records(b, "events", p, records);
  }
  auto dir = state_dir("late");
  captured_log log;
  auto run = run_to_end(config(b, "g-late", dir, {"dedup.changelog=false"}));
  BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
  BOOST_TEST(run.summary.output_rows == 14);
  BOOST_TEST(run.summary.duplicate_rows == 0);
  BOOST_TEST(run.summary.late_rows == 12);
  BOOST_TEST(sum_of(run, "numLateRows") == 12);
  BOOST_TEST(run.summary.state_rows == 2); // only the two `now` events
  auto warnings = log.containing("numLateRows");
  BOOST_TEST(warnings.size() == 2u);
  for (auto& w : warnings)
    BOOST_TEST((w.find("events/0") != std::string::npos) !=
               (w.find("events/1") != std::string::npos));
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(late_duplicates_are_dropped_and_later_records_follow_late_records) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("events", 1);
  cluster.create_topic("out", 1);
  // Keys k0..k9, then 20 records 90 s on (within is 1 minute: the copies
  // below are 80 s behind them, past the window but inside allowedLateness,
  // 1 minute by default), then a copy of each key 10 s after it, then five
  // new keys 5 minutes before the progress (past within + allowedLateness).
  auto records = events("k", 0, 10, 0, t0);
  auto ahead = events("ahead", 0, 20, 100, t0 + 90000);
  auto copies = events("k", 0, 10, 200, t0 + 10000);
  auto old = events("old", 0, 5, 300, t0 + 90000 - 300000);
  for (auto* part : {&ahead, &copies, &old})
    records.insert(records.end(), part->begin(), part->end());
  produce_records(b, "events", 0, records);

  struct expected {
    std::vector<std::string> overrides;
    std::int64_t outputs, duplicates, dropped, dlq, late;
  };
  const std::vector<expected> runs{
      // pass (the default): the copies are dropped, the old keys written.
      {{}, 35, 10, 10, 0, 5},
      {{"dedup.lateRecords=\"drop\""}, 30, 10, 15, 0, 5},
      {{"dedup.lateRecords=\"dlq\""}, 30, 10, 10, 5, 5},
      // Without lateness the copies cannot be told from new keys: late, and
      // written (the bug a new user found: all such copies passed).
      {{"dedup.allowedLateness=\"0 seconds\""}, 45, 0, 0, 0, 15},
  };
  int i = 0;
  for (auto& want : runs) {
    BOOST_TEST_CONTEXT("run " << i << " "
                              << (want.overrides.empty() ? "" : want.overrides[0])) {
      auto dlq = "dlq" + std::to_string(i);
      cluster.create_topic(dlq, 1);
      auto overrides = want.overrides;
      overrides.push_back("dedup.changelog=false");
      overrides.push_back("dlq.topic=\"" + dlq + "\"");
      auto dir = state_dir("late-policy-" + std::to_string(i));
      auto run =
          run_to_end(config(b, "g-late-policy-" + std::to_string(i), dir, overrides));
      BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
      BOOST_TEST(run.summary.input_rows == 45);
      BOOST_TEST(run.summary.output_rows == want.outputs);
      BOOST_TEST(run.summary.duplicate_rows == want.duplicates);
      BOOST_TEST(run.summary.dropped_rows == want.dropped);
      BOOST_TEST(run.summary.dlq_rows == want.dlq);
      BOOST_TEST(run.summary.late_rows == want.late);
      BOOST_TEST(sum_of(run, "numLateRows") == want.late);
      auto in_dlq = read_topic(b, dlq);
      BOOST_TEST(in_dlq.size() == static_cast<std::size_t>(want.dlq));
      for (auto& c : in_dlq) {
        BOOST_TEST(c.header_value("sluice.error.type").value_or("") == "late");
        BOOST_TEST(c.value.value_or("").find("\"order_id\":\"old") != std::string::npos);
      }
      fs::remove_all(dir);
    }
    ++i;
  }
}

BOOST_AUTO_TEST_CASE(keys_of_several_fields_and_a_time_field) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("events", 1);
  cluster.create_topic("out", 1);
  cluster.create_topic("dlq", 1);
  auto rec = [](const std::string& id, const std::string& region, int n,
                const std::string& at) {
    return timed_record{id,
                        R"({"order_id":")" + id + R"(","region":")" + region +
                            R"(","n":)" + std::to_string(n) + R"(,"at":")" + at + R"("})",
                        0};
  };
  produce_records(b, "events", 0,
                  {
                      rec("a", "eu", 0, "2026-01-01T10:00:00Z"),
                      rec("a", "us", 1, "2026-01-01T10:00:00Z"),   // other key
                      rec("a", "eu", 2, "2026-01-01T10:00:59.5Z"), // duplicate
                      // 1 min and 1 ms later, in another zone: passes.
                      rec("a", "eu", 3, "2026-01-01T11:01:00.001+01:00"),
                      {"a", R"({"order_id":"a","region":"us","n":4})", 0}, // no time: DLQ
                  });
  auto dir = state_dir("fields");
  auto run = run_to_end(config(
      b, "g-fields", dir,
      {R"(parse.schema={"order_id":"string","region":"string","n":"long","at":"timestamp"})",
       R"(dedup.key=["order_id","region"])", "dedup.timeField=at",
       "dedup.changelog=false"}));
  BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
  BOOST_TEST(ns_in(b, "out") == (std::vector<std::int64_t>{0, 1, 3}),
             boost::test_tools::per_element());
  auto dlq = read_topic(b, "dlq");
  BOOST_REQUIRE(dlq.size() == 1u);
  BOOST_TEST(dlq[0].header_value("sluice.error.type").value_or("") ==
             "invalid_dedup_time");
  BOOST_TEST(run.summary.duplicate_rows == 1);
  fs::remove_all(dir);
}

// Without a schema a key is the JSON the producer wrote: 7 and 7.0 are one
// number, and an object's members in another order are one object. They were
// different keys, so such a re-send passed.
BOOST_AUTO_TEST_CASE(equal_json_keys_written_differently_are_one_key) {
  auto kept = kept_by_order_id("canonical",
                               {
                                   "7", "7.0", "70e-1", // one number
                                   "7.5",               // another
                                   R"("7")",            // a string: another key
                                   R"({"a":1,"b":[2]})",
                                   R"({"b":[2.0],"a":1})", // the same object
                               },
                               {"parse=null"});
  BOOST_TEST(kept.ns == (std::vector<std::int64_t>{0, 3, 4, 5}),
             boost::test_tools::per_element());
  BOOST_TEST(kept.duplicates == 3);
}

// In a `double` field of the schema, 7 and 7.0 are one value, so one key.
BOOST_AUTO_TEST_CASE(a_double_key_field_is_one_key_however_written) {
  auto kept = kept_by_order_id("double-key", {"7", "7.0", "7.5", "7e0"},
                               {R"(parse.schema={"order_id":"double","n":"long"})"});
  BOOST_TEST(kept.ns == (std::vector<std::int64_t>{0, 2}),
             boost::test_tools::per_element());
  BOOST_TEST(kept.duplicates == 2);
}

// Two neighbouring doubles are two keys: Boost.JSON 1.81's parser read the
// first as the second, and the second record was dropped as a duplicate.
BOOST_AUTO_TEST_CASE(neighbouring_double_keys_stay_two_keys) {
  auto kept = kept_by_order_id(
      "neighbours", {"933.0544305299615", "933.05443052996156", "933.0544305299615"},
      {R"(parse.schema={"order_id":"double","n":"long"})"});
  BOOST_TEST(kept.ns == (std::vector<std::int64_t>{0, 1}),
             boost::test_tools::per_element());
  BOOST_TEST(kept.duplicates == 1);
}

BOOST_AUTO_TEST_CASE(a_second_run_drops_duplicates_of_the_first) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("events", 2);
  cluster.create_topic("out", 2);
  cluster.create_topic("dlq", 1);
  produce_first_events(b, 2);
  auto dir = state_dir("restart");
  auto first = run_to_end(config(b, "g-restart", dir));
  BOOST_REQUIRE_MESSAGE(first.summary.ok, first.summary.error);
  BOOST_TEST(first.summary.output_rows == 200);
  BOOST_TEST(first.summary.duplicate_rows == 0);
  produce_resent_and_new(b, 2);
  auto second = run_to_end(config(b, "g-restart", dir));
  BOOST_REQUIRE_MESSAGE(second.summary.ok, second.summary.error);
  BOOST_TEST(second.summary.input_rows == 200);
  BOOST_TEST(second.summary.output_rows == 100);
  BOOST_TEST(second.summary.duplicate_rows == 100);
  std::multiset<std::int64_t> ns;
  for (auto n : ns_in(b, "out"))
    ns.insert(n);
  BOOST_TEST(ns.size() == 300u);
  for (int i = 0; i < 150; ++i)
    BOOST_TEST(ns.count(i) == 2u, "event " << i); // once per partition
  BOOST_TEST(committed_offsets(b, "g-restart", "events") ==
             (std::map<std::int32_t, std::int64_t>{{0, 200}, {1, 200}}));
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_lost_state_directory_is_restored_from_the_changelog) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  // 6 input partitions; the embedded broker creates the changelog on first
  // use with its own count (4), so partitions share changelog partitions.
  cluster.create_topic("events", 6);
  cluster.create_topic("out", 6);
  cluster.create_topic("dlq", 1);
  produce_first_events(b, 6);
  auto dir = state_dir("restore");
  auto first = run_to_end(config(b, "g-restore", dir));
  BOOST_REQUIRE_MESSAGE(first.summary.ok, first.summary.error);
  BOOST_TEST(first.summary.output_rows == 600);
  BOOST_TEST(end_offsets(b, "events-changelog").size() == 4u);
  fs::remove_all(dir); // the disk is lost
  produce_resent_and_new(b, 6);
  auto second = run_to_end(config(b, "g-restore", dir));
  BOOST_REQUIRE_MESSAGE(second.summary.ok, second.summary.error);
  BOOST_TEST(second.summary.output_rows == 300);
  BOOST_TEST(second.summary.duplicate_rows == 300);
  BOOST_TEST(second.summary.state_rows == 900); // 150 keys per partition
  // And without the changelog, the same loss forgets every key.
  fs::remove_all(dir);
  for (int p = 0; p < 6; ++p)
    produce_records(b, "events", p,
                    events("k" + std::to_string(p) + "-", 0, 10, 2000, t0 + 30000));
  auto third = run_to_end(config(b, "g-restore", dir, {"dedup.changelog=false"}));
  BOOST_REQUIRE_MESSAGE(third.summary.ok, third.summary.error);
  BOOST_TEST(third.summary.duplicate_rows == 0);
  BOOST_TEST(third.summary.output_rows == 60);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(expired_keys_are_purged_and_the_changelog_forgets_them) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("events", 1);
  cluster.create_topic("out", 1);
  cluster.create_topic("dlq", 1);
  cluster.create_topic("events-changelog", 1);
  // 100 keys, then event time moves 10 minutes on: all of them expire.
  auto records = events("k", 0, 100, 0, t0);
  records.push_back(event("late", 100, t0 + 600000));
  produce_records(b, "events", 0, records);
  auto dir = state_dir("purge");
  auto run = run_to_end(config(b, "g-purge", dir));
  BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
  BOOST_TEST(run.summary.output_rows == 101);
  BOOST_TEST(run.summary.state_rows == 1); // only `late` is held
  BOOST_TEST(sum_of(run, "numRowsRemoved") == 100);
  std::map<std::string, std::optional<std::string>> latest;
  for (auto& c : read_topic(b, "events-changelog"))
    latest[c.key.value_or("")] = c.value;
  BOOST_TEST(latest.size() == 101u);
  BOOST_TEST(!latest[R"(events/0/["k7"])"].has_value()); // a tombstone
  BOOST_TEST(latest[R"(events/0/["late"])"].has_value());
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(one_memory_budget_holds_over_64_partitions) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("events", 64);
  cluster.create_topic("out", 4);
  cluster.create_topic("dlq", 1);
  // 64 partitions x 600 keys of 200 bytes: about 40 MB written to the state
  // (row and expiry entries), against a budget of 16 MiB.
  const std::string pad(200, 'p');
  for (int p = 0; p < 64; ++p)
    produce_records(b, "events", p, events(pad + std::to_string(p) + "-", 0, 600, 0, t0));
  auto dir = state_dir("budget");
  auto run = run_to_end(config(
      b, "g-budget", dir, {"runtime.memoryBudget=16777216", "dedup.changelog=false"}));
  BOOST_REQUIRE_MESSAGE(run.summary.ok, run.summary.error);
  BOOST_TEST(run.summary.output_rows == 64 * 600);
  std::int64_t peak = 0;
  for (auto& p : run.progress)
    for (auto& op : p.at("stateOperators").as_array())
      peak = std::max(peak, op.at("memoryUsedBytes").as_int64());
  // The state outgrew the budget (about 40 MB written), so the cache was
  // filled to it, and held there.
  BOOST_TEST(peak >= 4 * 1024 * 1024, "peak " << peak);
  BOOST_TEST(peak <= 16 * 1024 * 1024 * 11 / 10, "peak " << peak);
  BOOST_TEST(run.summary.state_rows == 64 * 600);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_restore_reads_its_partitions_records_from_its_position) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("cl", 2);
  // Input partitions 0 and 2 share changelog partition 0 (2 partitions).
  auto sighting_of = [](int offset) {
    return sluice::dedup::encode_sighting({offset, t0 + offset});
  };
  produce_records(b, "cl", 0,
                  std::vector<std::pair<std::string, std::string>>{
                      {R"(ev/0/["a"])", sighting_of(1)},
                      {R"(ev/2/["a"])", sighting_of(2)},
                      {R"(ev/0/["b"])", sighting_of(3)},
                      {R"(ev/0/["c"])", "not a sighting"},
                  });
  auto dir = state_dir("restore-unit");
  state::store store(dir, 32 << 20, "dedup.stateDir");
  auto lease = store.table("ev/0").acquire(1s);
  sluice::dedup::dedup_table table(*lease);
  sluice::dedup::changelog_log log{"cl", 0, 2};
  std::map<std::string, std::string> client{{"bootstrap.servers", b}};
  auto first = sluice::dedup::restore_from_changelog(client, log, {"ev", 0}, table, 30s);
  BOOST_TEST(first.applied == 2); // a and b of input partition 0
  BOOST_TEST(first.unreadable == 1);
  BOOST_TEST(first.end == 4);
  BOOST_TEST(!first.wiped);
  BOOST_TEST(table.rows() == 2);
  // More changes: a second restore reads from the recorded position on.
  produce_records(b, "cl", 0,
                  std::vector<std::pair<std::string, std::string>>{
                      {R"(ev/0/["d"])", sighting_of(5)},
                  });
  auto second = sluice::dedup::restore_from_changelog(client, log, {"ev", 0}, table, 30s);
  BOOST_TEST(second.applied == 1);
  BOOST_TEST(second.end == 5);
  BOOST_TEST(table.rows() == 3);
  // A position recorded in another log (the partition count changed) is not
  // trusted: the table is rebuilt from the log's start.
  auto other =
      sluice::dedup::restore_from_changelog(client, {"cl", 0, 4}, {"ev", 0}, table, 30s);
  BOOST_TEST(other.wiped);
  BOOST_TEST(other.applied == 3);
  BOOST_TEST(table.rows() == 3);
  // A position past the end (the topic was made anew) is not trusted either.
  table.set_changelog_position(99, log.identity());
  auto past = sluice::dedup::restore_from_changelog(client, log, {"ev", 0}, table, 30s);
  BOOST_TEST(past.wiped);
  BOOST_TEST(past.end == 5);
  lease = {};
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(another_clusters_state_is_rebuilt_from_the_changelog) {
  // The same pipeline name and state directory, first against one cluster,
  // then against another whose changelog has grown past the position the
  // first recorded: the first cluster's sightings must not drop the second
  // one's records (they were 2000 "duplicates" dropped and committed).
  testing::mock_cluster first_cluster(1), second_cluster(1);
  auto a = first_cluster.bootstrap_servers(), b = second_cluster.bootstrap_servers();
  for (auto* c : {&first_cluster, &second_cluster}) {
    c->create_topic("events", 1);
    c->create_topic("out", 1);
    c->create_topic("dlq", 1);
    c->create_topic("events-changelog", 1);
  }
  produce_records(a, "events", 0, events("k", 0, 2000, 0, t0));
  auto dir = state_dir("elsewhere");
  auto first = run_to_end(config(a, "g-elsewhere", dir));
  BOOST_REQUIRE_MESSAGE(first.summary.ok, first.summary.error);
  BOOST_TEST(first.summary.output_rows == 2000);
  BOOST_TEST(end_offsets(a, "events-changelog").at(0) == 2000);
  // The second cluster: its changelog holds 2000 changes of another input,
  // and its events are other records at the same keys, one offset later.
  std::vector<std::pair<std::string, std::string>> others;
  for (int i = 0; i < 2000; ++i)
    others.push_back({"other/0/[\"o" + std::to_string(i) + "\"]",
                      sluice::dedup::encode_sighting({i, t0})});
  produce_records(b, "events-changelog", 0, others);
  auto records = std::vector<timed_record>{{"x", R"({"n":-1})", t0}}; // to the DLQ
  auto fresh = events("k", 0, 2000, 5000, t0 + 1000);
  records.insert(records.end(), fresh.begin(), fresh.end());
  produce_records(b, "events", 0, records);
  captured_log log;
  auto second = run_to_end(config(b, "g-elsewhere", dir));
  BOOST_REQUIRE_MESSAGE(second.summary.ok, second.summary.error);
  BOOST_TEST(second.summary.input_rows == 2001);
  BOOST_TEST(second.summary.duplicate_rows == 0);
  BOOST_TEST(second.summary.output_rows == 2000);
  BOOST_TEST(second.summary.dlq_rows == 1);
  BOOST_TEST(read_topic(b, "out").size() == 2000u);
  auto warned = log.containing("not to this run");
  BOOST_REQUIRE(warned.size() == 1u);
  BOOST_TEST(warned[0].find("cluster `mockCluster") != std::string::npos, warned[0]);
  BOOST_TEST(warned[0].find("@" + a + "`") != std::string::npos, warned[0]);
  BOOST_TEST(warned[0].find("@" + b + "`") != std::string::npos, warned[0]);
  // Back on the first cluster, the state is the second's: rebuilt from the
  // first cluster's changelog, it still drops re-sends of what the first wrote.
  produce_records(a, "events", 0, events("k", 0, 10, 9000, t0 + 2000));
  auto third = run_to_end(config(a, "g-elsewhere", dir));
  BOOST_REQUIRE_MESSAGE(third.summary.ok, third.summary.error);
  BOOST_TEST(third.summary.duplicate_rows == 10);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(another_pipelines_state_without_a_changelog_fails_at_start) {
  // Two pipelines share one state directory, without changelogs, each on
  // its own cluster with a topic `events`: the second took the first's
  // sightings for its own and dropped 2000 of its 2300 records. Now it fails
  // at start naming both owners, before it reads or commits anything.
  testing::mock_cluster eu_cluster(1), us_cluster(1);
  auto eu_bootstrap = eu_cluster.bootstrap_servers();
  auto us_bootstrap = us_cluster.bootstrap_servers();
  for (auto* c : {&eu_cluster, &us_cluster})
    for (auto t : {"events", "out", "dlq"})
      c->create_topic(t, 1);
  produce_records(eu_bootstrap, "events", 0, events("k", 0, 2000, 0, t0));
  auto us_records = events("u", 0, 300, 0, t0);
  auto same_keys = events("k", 0, 2000, 5000, t0 + 1000);
  us_records.insert(us_records.end(), same_keys.begin(), same_keys.end());
  produce_records(us_bootstrap, "events", 0, us_records);
  auto dir = state_dir("shared");
  auto eu =
      config(eu_bootstrap, "g-eu", dir, {"name=orders-eu", "dedup.changelog=false"});
  auto us =
      config(us_bootstrap, "g-us", dir, {"name=orders-us", "dedup.changelog=false"});
  auto first = run_to_end(eu);
  BOOST_REQUIRE_MESSAGE(first.summary.ok, first.summary.error);
  BOOST_TEST(first.summary.output_rows == 2000);
  auto second = run_to_end(us);
  BOOST_TEST(!second.summary.ok);
  BOOST_TEST(second.summary.input_rows == 0);
  BOOST_TEST(second.summary.duplicate_rows == 0);
  auto& why = second.summary.error;
  BOOST_TEST(why.find("pipeline `orders-eu`, group `g-eu`, input [events] on cluster "
                      "`mockCluster") != std::string::npos,
             why);
  BOOST_TEST(why.find("pipeline `orders-us`, group `g-us`, input [events] on cluster "
                      "`mockCluster") != std::string::npos,
             why);
  BOOST_TEST(why.find("delete `" + dir + "`") != std::string::npos, why);
  BOOST_TEST(committed_offsets(us_bootstrap, "g-us", "events").at(0) < 0); // none
  BOOST_TEST(read_topic(us_bootstrap, "out").empty());
  // The owner's own next run keeps its state: re-sends are dropped.
  produce_records(eu_bootstrap, "events", 0, events("k", 0, 50, 1000, t0 + 2000));
  auto again = run_to_end(eu);
  BOOST_REQUIRE_MESSAGE(again.summary.ok, again.summary.error);
  BOOST_TEST(again.summary.duplicate_rows == 50);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_damaged_state_directory_is_rebuilt_from_the_changelog) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  cluster.create_topic("events", 2);
  cluster.create_topic("out", 2);
  cluster.create_topic("dlq", 1);
  produce_first_events(b, 2);
  auto dir = state_dir("damaged");
  auto first = run_to_end(config(b, "g-damaged", dir));
  BOOST_REQUIRE_MESSAGE(first.summary.ok, first.summary.error);
  fs::resize_file(fs::path(dir) / "CURRENT", 0); // a crash, a full disk, a bad copy
  produce_resent_and_new(b, 2);
  auto second = run_to_end(config(b, "g-damaged", dir));
  BOOST_REQUIRE_MESSAGE(second.summary.ok, second.summary.error);
  BOOST_TEST(second.summary.output_rows == 100);
  BOOST_TEST(second.summary.duplicate_rows == 100);
  std::vector<fs::path> aside;
  for (auto& e : fs::directory_iterator(fs::path(dir).parent_path()))
    if (e.path().string().starts_with(dir + ".damaged-")) aside.push_back(e.path());
  BOOST_REQUIRE(aside.size() == 1u);
  BOOST_TEST(fs::file_size(aside[0] / "CURRENT") == 0u);
  // Without a changelog nothing can rebuild it: the run fails at start, as a
  // failure (exit 1), not a bad option, saying what to delete.
  fs::resize_file(fs::path(dir) / "CURRENT", 0);
  try {
    pipeline p(config(b, "g-damaged", dir, {"dedup.changelog=false"}));
    BOOST_FAIL("a damaged state opened without a changelog");
  } catch (const config_error& e) {
    BOOST_FAIL("taken for a bad option: " << e.what());
  } catch (const fatal_error& e) {
    std::string why = e.what();
    BOOST_TEST(why.find("`" + dir + "` is damaged") != std::string::npos, why);
    BOOST_TEST(why.find("delete `" + dir + "`") != std::string::npos, why);
  }
  fs::remove_all(aside[0]);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_state_directory_in_use_fails_at_start) {
  testing::mock_cluster cluster(1);
  auto b = cluster.bootstrap_servers();
  auto dir = state_dir("locked");
  pipeline first(config(b, "g-locked", dir));
  try {
    pipeline second(config(b, "g-locked", dir));
    BOOST_FAIL("a second pipeline opened the same state directory");
  } catch (const config_error& e) {
    BOOST_TEST(e.option() == "dedup.stateDir");
    BOOST_TEST(std::string(e.what()).find("in use by another process") !=
               std::string::npos);
  }
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
