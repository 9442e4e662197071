// stage_cost: `sluice run` with one identity step added by the builder, to
// measure what the step path costs (bench/README.md, "Steps").
//
//   SLUICE_BIN=identity-stage=build/bench/stage_cost bench/run_bench.sh
//
// Takes `run FILE [--set K=V]...` as `sluice run` does, adds an identity
// batch stage (or, with SLUICE_BENCH_STEP=map, an identity map), runs the
// pipeline and logs the same `run ended:` line, which run_bench.sh reads.
// Built a second time as actor_stage_cost, whose step is an identity actor
// stage (<sluice/actor_stage.hpp>): one user actor per partition.

#include <sluice/builder.hpp>
#include <sluice/logging.hpp>
#ifdef SLUICE_BENCH_ACTOR
#include <sluice/actor_stage.hpp>

#include <caf/all.hpp>
#endif

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
#ifdef SLUICE_BENCH_ACTOR
    (void)step;
    sluice::actor_stage identity;
    identity.make = [](caf::actor_system& sys, const sluice::stage_origin&) {
      return sys.spawn([]() -> sluice::stage_actor::behavior_type {
        return {[](sluice::batch_ptr& b) { return b; }};
      });
    };
    builder.stage(identity);
#else
    if (step && std::string(step) == "map")
      builder.map([](sluice::record&) {});
    else
      builder.stage([](sluice::record_batch&) {});
#endif
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
