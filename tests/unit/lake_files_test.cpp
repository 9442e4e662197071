// Kafka -> files (`sluice lake`): event dates, and files that are published
// whole or not at all.
#include "apps/lake/lake_files.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace sluice;
using namespace sluice::lake;
namespace fs = std::filesystem;

namespace {

/// A fresh directory, removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    char pattern[] = "/tmp/sluice-lake-unit-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~temp_dir() { fs::remove_all(path); }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Every file under `root`, as paths relative to it; `hidden`: the dot
/// files (temporaries, indexes, locks) instead of the visible ones.
std::set<std::string> files_under(const fs::path& root, bool hidden = false) {
  std::set<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file() && e.path().filename().string().starts_with(".") == hidden)
      out.insert(fs::relative(e.path(), root).string());
  return out;
}

record with_fields(std::string json_text, std::int64_t kafka_ts = -1) {
  record r;
  r.timestamp_ms = kafka_ts;
  r.fields.tree() = boost::json::parse(json_text).as_object();
  return r;
}

} // namespace

BOOST_AUTO_TEST_SUITE(lake_files)

BOOST_AUTO_TEST_CASE(dates_are_the_utc_day_of_the_instant) {
  BOOST_TEST(utc_date(0) == "1970-01-01");
  BOOST_TEST(utc_date(-1) == "1969-12-31"); // floors, not towards zero
  BOOST_TEST(utc_date(951'782'400'000) == "2000-02-29");
  BOOST_TEST(utc_date(951'868'799'999) == "2000-02-29");
  BOOST_TEST(utc_date(951'868'800'000) == "2000-03-01");
  BOOST_TEST(utc_date(1'798'761'599'999) == "2026-12-31");
}

BOOST_AUTO_TEST_CASE(the_event_date_comes_from_the_field_or_the_kafka_timestamp) {
  BOOST_TEST(*event_date(with_fields(R"({"t":"2026-03-01T23:30:00-02:00"})"), "t") ==
             "2026-03-02"); // the UTC day of the instant
  BOOST_TEST(*event_date(with_fields(R"({"t":"2024-02-29"})"), "t") == "2024-02-29");
  BOOST_TEST(*event_date(with_fields(R"({"t":1709337600000})"), "t") == "2024-03-02");
  BOOST_TEST(!event_date(with_fields(R"({"t":1709337600})"), "t")); // seconds: no date
  BOOST_TEST(!event_date(with_fields(R"({"t":-5})"), "t"));
  BOOST_TEST(*event_date(with_fields("{}", 86'400'000 * 3), "") == "1970-01-04");
  // No date: the record goes to the DLQ.
  BOOST_TEST(!event_date(with_fields(R"({"x":1})"), "t"));
  BOOST_TEST(!event_date(with_fields(R"({"t":null})"), "t"));
  BOOST_TEST(!event_date(with_fields(R"({"t":"yesterday"})"), "t"));
  BOOST_TEST(!event_date(with_fields(R"({"t":"2023-02-29"})"), "t"));
  BOOST_TEST(!event_date(with_fields(R"({"t":1.5})"), "t"));
  BOOST_TEST(!event_date(with_fields("{}", -1), ""));
}

BOOST_AUTO_TEST_CASE(lines_are_hidden_until_published_then_whole) {
  temp_dir dir;
  partition_files files(dir.path, "orders", 3);
  files.append("2026-12-04", 100, R"({"a":1})");
  files.append("2026-12-05", 101, R"({"a":2})");
  files.append("2026-12-04", 102, R"({"a":3})");
  BOOST_TEST(files.pending_lines() == 3);
  // Before publish(): only hidden temporaries, which readers skip.
  BOOST_TEST(files_under(dir.path).empty());
  auto published = files.publish();
  BOOST_TEST(published.size() == 2u);
  BOOST_TEST(files.pending_lines() == 0);
  BOOST_TEST(files_under(dir.path) ==
                 (std::set<std::string>{"orders/dt=2026-12-04/part-3-100.jsonl",
                                        "orders/dt=2026-12-05/part-3-101.jsonl"}),
             boost::test_tools::per_element());
  BOOST_TEST(read_file(dir.path / "orders/dt=2026-12-04/part-3-100.jsonl") ==
             "{\"a\":1}\n{\"a\":3}\n");
  BOOST_TEST(read_file(dir.path / "orders/dt=2026-12-05/part-3-101.jsonl") ==
             "{\"a\":2}\n");
  // Each file's index lists its lines' offsets.
  BOOST_TEST(read_file(dir.path / "orders/dt=2026-12-04/.part-3-100.jsonl.idx") ==
             "100\n102\n");
  // The next lines start new files, named by their first offset.
  files.append("2026-12-05", 103, R"({"a":4})");
  files.publish();
  BOOST_TEST(read_file(dir.path / "orders/dt=2026-12-05/part-3-103.jsonl") ==
             "{\"a\":4}\n");
}

BOOST_AUTO_TEST_CASE(files_not_published_are_removed_when_their_writer_ends) {
  temp_dir dir;
  {
    partition_files files(dir.path, "orders", 0);
    files.append("2026-12-05", 7, "{}");
  }
  BOOST_TEST(files_under(dir.path).empty());
  BOOST_TEST(files_under(dir.path, true) == (std::set<std::string>{"orders/.lock-0"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_restart_forgets_what_was_written_from_its_start_offset_on) {
  temp_dir dir;
  {
    partition_files p0(dir.path, "orders", 0), p1(dir.path, "orders", 1);
    p0.append("2026-12-04", 0, "{\"p0\":0}");
    p0.publish();
    p0.append("2026-12-04", 50, "{\"p0\":50}");
    p0.append("2026-12-05", 60, "{\"p0\":60}");
    p0.publish();
    p1.append("2026-12-04", 50, "{\"p1\":50}");
    p1.publish();
  }
  // A killed writer's temporary, for partition 0 and for another topic.
  std::ofstream(dir.path / "orders/dt=2026-12-05/.part-0-70.jsonl.tmp") << "{\"half";
  fs::create_directories(dir.path / "other/dt=2026-12-05");
  std::ofstream(dir.path / "other/dt=2026-12-05/part-0-70.jsonl") << "{}\n";

  partition_files again(dir.path, "orders", 0);
  // Offsets from 50 on were not committed: they are read and written again.
  BOOST_TEST(again.forget_from(50) == 3u);
  BOOST_TEST(!fs::exists(dir.path / "orders/dt=2026-12-04/.part-0-50.jsonl.idx"));
  BOOST_TEST(files_under(dir.path) ==
                 (std::set<std::string>{"orders/dt=2026-12-04/part-0-0.jsonl",
                                        "orders/dt=2026-12-04/part-1-50.jsonl",
                                        "other/dt=2026-12-05/part-0-70.jsonl"}),
             boost::test_tools::per_element());
  BOOST_TEST(partition_files(dir.path, "absent", 0).forget_from(0) == 0u);
}

// A commit can fall between two batches of one file: the restart keeps the
// file's lines before it and writes the rest again.
BOOST_AUTO_TEST_CASE(a_file_that_straddles_the_restart_offset_keeps_its_head) {
  temp_dir dir;
  {
    partition_files p0(dir.path, "orders", 0);
    for (std::int64_t o : {10, 11, 13, 14, 15})
      p0.append("2026-12-05", o, "{\"o\":" + std::to_string(o) + "}");
    p0.publish();
  }
  partition_files again(dir.path, "orders", 0);
  BOOST_TEST(again.forget_from(13) == 1u);
  auto day = dir.path / "orders/dt=2026-12-05";
  BOOST_TEST(read_file(day / "part-0-10.jsonl") == "{\"o\":10}\n{\"o\":11}\n");
  BOOST_TEST(read_file(day / ".part-0-10.jsonl.idx") == "10\n11\n");
  BOOST_TEST(again.forget_from(13) == 0u); // nothing more to cut
}

// One writer per partition: a second waits for the first to end, and gives
// up, naming the lock, when it does not.
BOOST_AUTO_TEST_CASE(a_partition_has_one_writer_at_a_time) {
  temp_dir dir;
  auto first = std::make_unique<partition_files>(dir.path, "orders", 0);
  partition_files other_partition(dir.path, "orders", 1, std::chrono::milliseconds(0));
  try {
    partition_files second(dir.path, "orders", 0, std::chrono::milliseconds(100));
    BOOST_ERROR("a second writer of partition 0 was let in");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find(".lock-0") != std::string::npos, e.what());
  }
  std::thread ends([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    first.reset();
  });
  partition_files waits(dir.path, "orders", 0, std::chrono::seconds(10));
  ends.join();
}

BOOST_AUTO_TEST_CASE(a_directory_that_cannot_be_written_is_an_error_not_a_loss) {
  temp_dir dir;
  std::ofstream(dir.path / "orders") << "a file where the topic's directory would go";
  BOOST_CHECK_THROW(partition_files(dir.path, "orders", 0), std::exception);
}

BOOST_AUTO_TEST_SUITE_END()
