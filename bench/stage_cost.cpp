// stage_cost: `sluice run` with one identity step added by the builder, to
// measure what the step path costs (bench/README.md, "Steps").
//
//   SLUICE_BIN=identity-stage=build/bench/stage_cost bench/run_bench.sh
//
// Takes `run FILE [--set K=V]...` as `sluice run` does, adds an identity
// batch stage (or, with SLUICE_BENCH_STEP=map, an identity map), runs the
// pipeline and logs the same `run ended:` line, which run_bench.sh reads.

#include <sluice/builder.hpp>
#include <sluice/logging.hpp>

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3 || std::string(argv[1]) != "run") {
    std::fprintf(stderr, "usage: stage_cost run FILE [--set K=V]...\n");
    return 2;
  }
  std::vector<std::string> overrides;
  for (int i = 3; i + 1 < argc; i += 2)
    if (std::string(argv[i]) == "--set") overrides.push_back(argv[i + 1]);
  try {
    sluice::init_logging("info");
    auto builder = sluice::pipeline_builder::from_file(argv[2], overrides);
    const char* step = std::getenv("SLUICE_BENCH_STEP");
    if (step && std::string(step) == "map")
      builder.map([](sluice::record&) {});
    else
      builder.stage([](sluice::record_batch&) {});
    auto s = builder.build()->run();
    spdlog::info("run ended: {} in, {} out, {} to the DLQ, {} dropped, {:.2f} s",
                 s.input_rows, s.output_rows, s.dlq_rows, s.dropped_rows, s.seconds);
    if (!s.ok) std::fprintf(stderr, "stage_cost: %s\n", s.error.c_str());
    return s.ok ? 0 : 1;
  } catch (const sluice::config_error& e) {
    std::fprintf(stderr, "stage_cost: %s\n", e.what());
    return 2;
  }
}
