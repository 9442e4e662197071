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

run_summary run_until_signal(pipeline& p, bool* signalled) {
  std::atomic<bool> finished{false};
  std::thread watcher([&] {
    bool stopping = false;
    std::chrono::steady_clock::time_point first;
    while (!finished.load())
      if (wait_stop_signal(200)) {
        // `timeout` sends SIGTERM to the process and then to its group: one
        // stop, twice within a moment. A second signal that means it comes later.
        if (stopping &&
            std::chrono::steady_clock::now() - first < std::chrono::milliseconds(500))
          continue;
        if (stopping) {
          // A second signal: the user will not wait for the drain.
          spdlog::error("second signal: exiting now, without draining or committing; "
                        "records since the last commit will be read again");
          std::fflush(stdout);
          std::_Exit(1);
        }
        spdlog::info("signal received: draining, committing, then exiting (a second "
                     "signal exits at once)");
        p.stop();
        stopping = true;
        if (signalled) *signalled = true;
        first = std::chrono::steady_clock::now();
      }
  });
  // The watcher is joined whatever happens: a joinable thread at an
  // exception would end the process with std::terminate.
  struct joiner {
    std::atomic<bool>& finished;
    std::thread& watcher;
    ~joiner() {
      finished.store(true);
      if (watcher.joinable()) watcher.join();
    }
  };
  joiner join{finished, watcher};
  return p.run();
}

int run_pipeline(const run_args& args) {
  block_stop_signals();
  // The file fills the builder a pipeline in code uses: one path to a run.
  auto builder = pipeline_builder::from_file(args.pipeline_file, args.overrides);
  builder.on_progress(print_progress);
  auto dedup = builder.config().dedup;
  auto built = builder.build();
  auto summary = run_until_signal(*built);
  spdlog::info("run ended: {} in, {} out, {} to the DLQ, {} dropped, {:.2f} s",
               summary.input_rows, summary.output_rows, summary.dlq_rows,
               summary.dropped_rows, summary.seconds);
  if (dedup)
    spdlog::info("dedup: {} duplicate(s) dropped, {} late record(s) passed; {} key(s) "
                 "held in `{}` ({} bytes on disk)",
                 summary.duplicate_rows, summary.late_rows, summary.state_rows,
                 dedup->state_dir, summary.state_disk_bytes);
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
