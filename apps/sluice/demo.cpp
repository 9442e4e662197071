#include "apps/sluice/commands.hpp"

#include <sluice/config.hpp>
#include <sluice/pipeline.hpp>
#include <sluice/testing/mock_cluster.hpp>
#include <sluice/testing/order_events.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <unistd.h>

namespace sluice::app {

namespace {

/// The demo's pipeline: the same JSON a user would write in a file.
std::string demo_pipeline(const std::string& bootstrap, const std::string& state_dir) {
  return R"({
    "name": "demo",
    "source": {
      "kafka.bootstrap.servers": ")" +
         bootstrap + R"(",
      "subscribe": "orders",
      "startingOffsets": "earliest",
      "includeHeaders": true,
      "kafka.session.timeout.ms": 6000
    },
    "parse": )" +
         testing::order_parse_section() + R"(,
    "route": {"field": "priority",
              "topics": {"high": "orders-high", "medium": "orders-medium", "low": "orders-low"},
              "default": "orders-low"},
    "sink": {"kafka.bootstrap.servers": ")" +
         bootstrap + R"(", "kafka.linger.ms": 5},
    "dlq": {"topic": "orders-dlq"},
    "dedup": {"key": ["order_id"], "within": "1 hour", "stateDir": ")" +
         state_dir + R"("},
    "trigger": {"availableNow": true}
  })";
}

} // namespace

int run_demo(const demo_args& args) {
  // The mock keeps at most 5 MiB per partition: spread ~200-byte events wide enough.
  const int input_partitions = 16;
  testing::mock_cluster cluster(3);
  cluster.create_topic("orders", input_partitions);
  for (auto t : {"orders-high", "orders-medium", "orders-low"})
    cluster.create_topic(t, 8);
  cluster.create_topic("orders-dlq", 2);
  auto bootstrap = cluster.bootstrap_servers();
  std::printf("embedded broker: %s\n", bootstrap.c_str());

  const std::uint64_t seed = 42;
  std::printf("producing %lld order events (%.1f%% malformed, %.1f%% re-sent) to "
              "`orders` (%d partitions)...\n",
              static_cast<long long>(args.events), args.malformed_fraction * 100,
              args.duplicate_fraction * 100, input_partitions);
  auto t0 = std::chrono::steady_clock::now();
  auto written =
      testing::produce_orders(bootstrap, "orders", args.events, std::nullopt,
                              args.malformed_fraction, seed, {}, args.duplicate_fraction);
  double produce_secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("  wrote %lld events in %.2f s\n", static_cast<long long>(args.events),
              produce_secs);

  // What the pipeline must produce, from the same generator.
  // A re-sent valid event is a duplicate (same order_id, same key, hence
  // same partition, within the hour); a re-sent broken one goes to the DLQ
  // again (DLQ records are not deduplicated).
  std::map<std::string, std::int64_t> expected;
  std::int64_t expected_duplicates = 0;
  testing::order_generator gen(seed, args.malformed_fraction, 5000,
                               args.duplicate_fraction);
  for (std::int64_t i = 0; i < args.events; ++i) {
    auto e = gen.make(i);
    if (e.duplicate_of && e.malformation.empty())
      ++expected_duplicates;
    else
      ++expected[e.malformation.empty() ? "orders-" + e.priority : "orders-dlq"];
  }

  // Dedup state of this demo only: a fresh directory, removed at the end.
  auto state_dir = std::filesystem::temp_directory_path() /
                   ("sluice-demo-state-" + std::to_string(::getpid()));
  std::filesystem::remove_all(state_dir);
  struct cleanup {
    std::filesystem::path dir;
    ~cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove_state{state_dir};

  std::printf("running the priority-routing pipeline with dedup on order_id "
              "(availableNow)...\n");
  run_summary summary;
  {
    pipeline p(parse_pipeline_config(demo_pipeline(bootstrap, state_dir.string())));
    summary = p.run();
  }
  if (!summary.ok) {
    std::fprintf(stderr, "sluice demo: the run failed: %s\n", summary.error.c_str());
    return 1;
  }
  std::printf("\nSluice demo summary\n");
  std::printf("  rows in:            %lld\n", static_cast<long long>(summary.input_rows));
  bool all_match = summary.input_rows == args.events;
  for (auto t : {"orders-high", "orders-medium", "orders-low", "orders-dlq"}) {
    auto got = summary.rows_by_topic[t];
    bool match = got == expected[t];
    all_match = all_match && match;
    std::printf("  out %-15s %lld%s\n", (std::string(t) + ":").c_str(),
                static_cast<long long>(got), match ? "" : "  (MISMATCH)");
  }
  bool duplicates_match = summary.duplicate_rows == expected_duplicates;
  all_match = all_match && duplicates_match;
  std::printf("  duplicates dropped: %lld of %lld re-sent events%s\n",
              static_cast<long long>(summary.duplicate_rows),
              static_cast<long long>(written.duplicates),
              duplicates_match ? " (re-sent broken events go to the DLQ again)"
                               : "  (MISMATCH)");
  std::printf("  dedup state:        %lld keys, %lld bytes of RocksDB files\n",
              static_cast<long long>(summary.state_rows),
              static_cast<long long>(summary.state_disk_bytes));
  std::printf(
      "  malformed produced: %lld (all in orders-dlq with the reason in headers)\n",
      static_cast<long long>(written.malformed));
  std::printf("  run time:           %.2f s (%.2f s joining the consumer group)\n",
              summary.seconds, summary.seconds - summary.processing_seconds);
  std::printf(
      "  throughput:         %.0f records/s (from assignment to the last commit)\n",
      summary.processing_seconds > 0
          ? static_cast<double>(summary.input_rows) / summary.processing_seconds
          : 0);
  std::printf("  max in flight per partition: %lld (credit %zu)\n",
              static_cast<long long>(summary.max_in_flight),
              runtime_options{}.max_in_flight_per_partition);
  std::printf("  %s\n",
              all_match ? "every record accounted for: outputs + DLQ + duplicates = input"
                        : "MISMATCH between input and outputs");
  return all_match ? 0 : 1;
}

} // namespace sluice::app
