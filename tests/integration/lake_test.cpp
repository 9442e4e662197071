// Kafka -> files (`sluice lake`'s stage on the embedded broker): every valid
// record in exactly one published file, each file named by its partition and
// first offset, offsets committed, invalid records in the DLQ; a restart
// replaces what an earlier run wrote but did not commit; a directory that
// cannot be written fails the run with nothing committed.
#include "apps/lake/lake_stage.hpp"
#include "tests/integration/pipeline_fixture.hpp"

#include <sluice/actor_stage.hpp>
#include <sluice/builder.hpp>

#include <filesystem>
#include <fstream>

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    char pattern[] = "/tmp/sluice-lake-it-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~temp_dir() { fs::remove_all(path); }
};

/// The order pipeline without a schema or a route, writing files under `dir`.
std::unique_ptr<pipeline> lake_pipeline(const order_cluster& oc, const std::string& group,
                                        const fs::path& dir,
                                        std::int64_t file_records = 700,
                                        std::vector<std::string> overrides = {}) {
  auto cfg = oc.config(group, std::move(overrides));
  cfg.route = route_options{};
  cfg.parse = parse_options{};
  lake::lake_options files;
  files.dir = dir;
  files.date_field = "order_time";
  files.file_records = file_records;
  files.file_interval = 200ms;
  return pipeline_builder::from_config(cfg).stage(lake::lake_stage(files)).build();
}

struct published_line {
  std::string file; // relative to the topic's directory
  std::string line;
};

/// Every line of every file under `topic_dir`, with its file.
std::vector<published_line> published(const fs::path& topic_dir) {
  std::vector<published_line> out;
  for (auto& e : fs::recursive_directory_iterator(topic_dir)) {
    if (!e.is_regular_file() || e.path().filename().string().starts_with("."))
      continue; // indexes and locks
    auto rel = fs::relative(e.path(), topic_dir).string();
    std::ifstream in(e.path());
    std::string line;
    while (std::getline(in, line))
      out.push_back({rel, line});
  }
  return out;
}

/// The UTC date of an order's `order_time` (the generator writes ...Z times).
std::string order_date(const std::string& value) {
  auto v = boost::json::parse(value).as_object();
  return std::string(v.at("order_time").as_string()).substr(0, 10);
}

} // namespace

BOOST_AUTO_TEST_SUITE(lake_files_on_kafka)

// Each valid order is a line, byte-equal to its value, in exactly one file,
// under its event date; each file starts with the record its name gives; the
// invalid orders are in the DLQ; the group committed the ends; no hidden
// file is left.
BOOST_AUTO_TEST_CASE(every_valid_record_is_in_exactly_one_published_file) {
  order_cluster oc(3);
  oc.produce(6000);
  temp_dir dir;
  auto summary = lake_pipeline(oc, "it-lake", dir.path)->run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);

  std::map<std::pair<std::int32_t, std::int64_t>, std::string> valid; // value by place
  std::multiset<std::string> want_lines;
  std::int64_t invalid = 0;
  for (auto& c : read_topic(oc.bootstrap, "orders")) {
    boost::json::error_code ec;
    auto v = boost::json::parse(c.value.value_or(""), ec);
    if (ec || !v.is_object() || !v.as_object().contains("order_time")) {
      ++invalid;
      continue;
    }
    valid[{c.partition, c.offset}] = *c.value;
    want_lines.insert(*c.value);
  }
  BOOST_REQUIRE(invalid > 0);
  auto lines = published(dir.path / "orders");
  std::multiset<std::string> got_lines;
  std::set<std::string> files;
  for (auto& l : lines) {
    got_lines.insert(l.line);
    files.insert(l.file);
    BOOST_TEST(l.file.substr(0, 13) == "dt=" + order_date(l.line), l.file);
  }
  BOOST_TEST(got_lines.size() == want_lines.size());
  BOOST_TEST((got_lines == want_lines)); // each valid record once, byte for byte
  // A file's name is its partition and first offset: its first line is that record.
  for (auto& f : files) {
    auto name = fs::path(f).filename().string(); // part-P-O.jsonl
    BOOST_TEST_REQUIRE(name.starts_with("part-"), f);
    auto dash = name.find('-', 5);
    auto p = std::stoi(name.substr(5, dash - 5));
    auto o = std::stoll(name.substr(dash + 1));
    std::ifstream in(dir.path / "orders" / f);
    std::string first;
    std::getline(in, first);
    BOOST_TEST(valid[std::make_pair(p, o)] == first, f);
  }
  BOOST_TEST(files.size() > 3u); // several files per partition (700 lines each)
  for (auto& e : fs::recursive_directory_iterator(dir.path))
    BOOST_TEST(!e.path().filename().string().ends_with(".tmp"), e.path());
  BOOST_TEST(read_topic(oc.bootstrap, "orders-dlq").size() ==
             static_cast<std::size_t>(invalid));
  BOOST_TEST(summary.output_rows == static_cast<std::int64_t>(want_lines.size()));
  BOOST_TEST(summary.dlq_rows == invalid);
  BOOST_TEST(summary.rows_by_topic["files:" + dir.path.string()] ==
             static_cast<std::int64_t>(want_lines.size()));
  BOOST_TEST((committed_offsets(oc.bootstrap, "it-lake", "orders") ==
              end_offsets(oc.bootstrap, "orders")));
}

// What an earlier run published past the group's commit (and its hidden
// half file) is replaced: after the run, each record is in one file.
BOOST_AUTO_TEST_CASE(a_restart_replaces_what_was_written_but_not_committed) {
  order_cluster oc(1);
  oc.malformed_fraction = 0;
  oc.produce(1000);
  temp_dir dir;
  // An earlier run, killed: a file past the commit (none) and a half file.
  auto day = dir.path / "orders" / "dt=2026-01-01";
  fs::create_directories(day);
  std::ofstream(day / "part-0-0.jsonl") << "{\"stale\":1}\n";
  std::ofstream(day / "part-0-400.jsonl") << "{\"stale\":2}\n";
  std::ofstream(day / ".part-0-900.jsonl.tmp") << "{\"half";
  auto summary = lake_pipeline(oc, "it-lake-again", dir.path, 300)->run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  auto lines = published(dir.path / "orders");
  BOOST_TEST(lines.size() == 1000u);
  for (auto& l : lines)
    BOOST_TEST(l.line.find("stale") == std::string::npos, l.file);
  BOOST_TEST(!fs::exists(day / ".part-0-900.jsonl.tmp"));
}

// A path that cannot hold the files: the chain fails, is restarted within
// the budget, and the run fails naming the path; no offset past the start
// is committed.
BOOST_AUTO_TEST_CASE(files_that_cannot_be_written_fail_the_run_with_nothing_committed) {
  order_cluster oc(2);
  oc.produce(500);
  temp_dir dir;
  std::ofstream(dir.path / "orders") << "a file where the topic's directory would go";
  auto summary = lake_pipeline(oc, "it-lake-unwritable", dir.path, 700,
                               {"runtime.restartBudget=1", "runtime.restartBackoff=10ms"})
                     ->run();
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find((dir.path / "orders").string()) != std::string::npos,
             summary.error);
  for (auto& [partition, offset] :
       committed_offsets(oc.bootstrap, "it-lake-unwritable", "orders"))
    BOOST_TEST(offset <= 0, "partition " << partition << " committed " << offset);
}

// Lanes would make two writers for one partition, each cleaning up the
// other's files at its start: refused when the chains start, and the
// partition does not move past its start.
BOOST_AUTO_TEST_CASE(lanes_are_refused_before_anything_is_written) {
  order_cluster oc(1);
  oc.produce(200);
  temp_dir dir;
  auto summary = lake_pipeline(oc, "it-lake-lanes", dir.path, 700,
                               {"source.minPartitions=4", "runtime.restartBudget=1",
                                "runtime.restartBackoff=10ms"})
                     ->run();
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("minPartitions") != std::string::npos, summary.error);
  for (auto& [partition, offset] :
       committed_offsets(oc.bootstrap, "it-lake-lanes", "orders"))
    BOOST_TEST(offset <= 0, "partition " << partition << " committed " << offset);
}

// A stage that writes records must be the last step, with no route and no dedup.
BOOST_AUTO_TEST_CASE(a_delivering_stage_is_last_without_route_or_dedup) {
  order_cluster oc(1);
  temp_dir dir;
  lake::lake_options files;
  files.dir = dir.path;
  auto stage = lake::lake_stage(files);
  auto cfg = oc.config("it-lake-checks");
  auto refused = [&](auto&& build, const std::string& option) {
    try {
      build();
    } catch (const config_error& e) {
      BOOST_TEST(e.option() == option, e.what());
      return;
    }
    BOOST_ERROR("not refused: expected an error naming " << option);
  };
  // The order pipeline routes by priority.
  refused([&] { pipeline_builder::from_config(cfg).stage(stage).build(); }, "route");
  cfg.route = route_options{};
  refused(
      [&] {
        pipeline_builder::from_config(cfg).stage(stage).map([](record&) {}).build();
      },
      "steps");
  dedup_options dedup;
  dedup.key = {"order_id"};
  dedup.within = std::chrono::minutes(1);
  cfg.dedup = dedup;
  refused([&] { pipeline_builder::from_config(cfg).stage(stage).build(); }, "dedup");
}

BOOST_AUTO_TEST_SUITE_END()
