// `sluice lake`: Kafka -> files, the seed's lake pattern, on the public API:
// a pipeline whose last step is the lake's delivering actor stage.

#include "apps/lake/lake_stage.hpp"
#include "apps/sluice/commands.hpp"

#include <sluice/builder.hpp>
#include <sluice/errors.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <unistd.h>

namespace sluice::app {

int run_lake(const lake_args& args) {
  block_stop_signals();
  source_options source;
  source.bootstrap_servers = args.bootstrap;
  // A topic named twice is read once.
  for (auto& t : args.topics)
    if (std::find(source.subscribe.begin(), source.subscribe.end(), t) ==
        source.subscribe.end())
      source.subscribe.push_back(t);
  source.group_id = args.group;
  if (args.starting != "earliest" && args.starting != "latest")
    throw config_error("--starting-offsets",
                       "expected earliest or latest, got `" + args.starting + "`");
  source.starting =
      args.starting == "earliest" ? starting_offsets::earliest : starting_offsets::latest;
  sink_options sink; // for the DLQ
  sink.bootstrap_servers = args.bootstrap;
  add_client_properties(args.kafka, source, sink);

  // The directory is checked now, not at the first record.
  {
    std::error_code ec;
    std::filesystem::create_directories(args.dir, ec);
    if (ec || ::access(args.dir.c_str(), W_OK | X_OK) != 0)
      throw config_error("--dir", "cannot write files under `" + args.dir +
                                      "`: " + (ec ? ec.message() : std::strerror(errno)));
  }
  lake::lake_options files;
  files.dir = args.dir;
  files.date_field = args.date_field;
  files.file_records = args.file_records;
  files.file_interval = parse_duration(args.file_interval, "--file-interval");
  // A stop or a rebalance waits for the files being filled: keep it short.
  if (files.file_interval > std::chrono::seconds(30))
    throw config_error("--file-interval",
                       "at most 30 seconds (a stop waits for the files "
                       "being filled), got `" +
                           args.file_interval + "`");
  if (files.file_interval <= std::chrono::milliseconds::zero())
    throw config_error("--file-interval", "expected a positive duration such as "
                                          "\"2 seconds\" or 500ms, got `" +
                                              args.file_interval + "`");

  trigger_options trigger;
  if (args.available_now) trigger.mode = trigger_options::kind::available_now;
  runtime_options runtime;
  // A partition's credit bounds the lines waiting for a file: room for two files.
  runtime.max_in_flight_per_partition =
      std::max<std::size_t>(runtime.max_in_flight_per_partition,
                            2 * static_cast<std::size_t>(args.file_records));

  auto builder = pipeline_builder("lake")
                     .source(source)
                     .parse(parse_options{}) // any JSON object
                     .stage(lake::lake_stage(files))
                     .sink(sink)
                     .trigger(trigger)
                     .runtime(runtime)
                     .on_progress(print_progress);
  if (!args.dlq.empty()) builder.dlq(args.dlq);
  std::unique_ptr<pipeline> built;
  try {
    built = builder.build();
  } catch (const config_error& e) {
    throw as_flag_error(e);
  }
  auto summary = run_until_signal(*built);
  spdlog::info("lake: {} in, {} written under {}, {} to the DLQ, {} dropped, {:.2f} s",
               summary.input_rows, summary.output_rows, args.dir, summary.dlq_rows,
               summary.dropped_rows, summary.seconds);
  if (!summary.ok) {
    std::cerr << "sluice: lake failed: " << summary.error << "\n";
    return 1;
  }
  return 0;
}

} // namespace sluice::app
