#include "apps/sluice/commands.hpp"

#include <sluice/builder.hpp>
#include <sluice/config.hpp>
#include <sluice/pipeline.hpp>

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

namespace sluice::app {

config_error as_flag_error(const config_error& e) {
  for (std::string prefix : {"source.kafka.", "sink.kafka."})
    if (e.option().starts_with(prefix))
      return config_error("--kafka " + e.option().substr(prefix.size()), e.reason());
  return e;
}

void add_client_properties(const std::vector<std::string>& properties,
                           source_options& source, sink_options& sink) {
  for (auto& property : properties) {
    auto eq = property.find('=');
    if (eq == std::string::npos || eq == 0)
      throw config_error("--kafka", "expected NAME=VALUE, got `" + property + "`");
    auto name = property.substr(0, eq), value = property.substr(eq + 1);
    if (!is_producer_property(name)) source.kafka[name] = value;
    if (!is_consumer_property(name)) sink.kafka[name] = value;
  }
}

void print_progress(const epoch_progress& progress) {
  auto line = to_json(progress);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

signal_watcher::signal_watcher(std::string what_first, std::string what_second,
                               std::function<void()> on_first)
    : thread_([this, what_first = std::move(what_first),
               what_second = std::move(what_second), on_first = std::move(on_first)] {
        std::chrono::steady_clock::time_point first;
        while (!finished_.load())
          if (wait_stop_signal(200)) {
            auto now = std::chrono::steady_clock::now();
            if (!signalled_.load()) {
              signalled_ = true;
              first = now;
              spdlog::info("signal received: {} (a second signal exits at once)",
                           what_first);
              on_first();
            } else if (now - first > std::chrono::milliseconds(500)) {
              // Not `timeout`'s echo (it signals the process, then its group):
              // the user will not wait.
              spdlog::error("second signal: exiting now; {}", what_second);
              std::fflush(stdout);
              std::_Exit(1);
            }
          }
      }) {}

signal_watcher::~signal_watcher() {
  finished_ = true;
  if (thread_.joinable()) thread_.join();
}

run_summary run_until_signal(pipeline& p, bool* signalled) {
  signal_watcher watcher("draining, committing, then exiting",
                         "without draining or committing; records since the last "
                         "commit will be read again",
                         [&p] { p.stop(); });
  auto summary = p.run();
  if (signalled) *signalled = watcher.signalled();
  return summary;
}

int run_pipeline(const run_args& args) {
  block_stop_signals();
  // The file fills the builder a pipeline in code uses: one path to a run.
  auto builder = pipeline_builder::from_file(args.pipeline_file, args.overrides);
  builder.on_progress(print_progress);
  auto dedup = builder.config().dedup;
  bool exactly_once = builder.config().guarantee == delivery_guarantee::exactly_once;
  auto built = builder.build();
  auto summary = run_until_signal(*built);
  spdlog::info("run ended: {} in, {} out, {} to the DLQ, {} dropped, {:.2f} s",
               summary.input_rows, summary.output_rows, summary.dlq_rows,
               summary.dropped_rows, summary.seconds);
  if (dedup) {
    // What became of late records is dedup.lateRecords' choice (those of a
    // state restored from the changelog pass: README, "Late records").
    const char* late = dedup->late_records == late_policy::drop  ? "drop"
                       : dedup->late_records == late_policy::dlq ? "dlq"
                                                                 : "pass";
    spdlog::info("dedup: {} duplicate(s) dropped, {} late record(s) (lateRecords {}); "
                 "{} key(s) held in `{}` ({} bytes on disk)",
                 summary.duplicate_rows, summary.late_rows, late, summary.state_rows,
                 dedup->state_dir, summary.state_disk_bytes);
  }
  if (exactly_once)
    spdlog::info("guarantee exactly-once: {} transaction(s) committed, {} aborted",
                 summary.transactions_committed, summary.transactions_aborted);
  if (!summary.ok) {
    std::cerr << "sluice: run failed: " << summary.error << "\n";
    return 1;
  }
  return 0;
}

void print_options(std::ostream& out) {
  out << option_reference_markdown();
}

} // namespace sluice::app
