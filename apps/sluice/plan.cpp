#include "apps/sluice/commands.hpp"

#include <sluice/config.hpp>
#include <sluice/plan.hpp>

#include <iostream>

namespace sluice::app {

int run_plan(const run_args& args) {
  auto cfg = load_pipeline_config(args.pipeline_file, args.overrides);
  std::cout << plan_json(plan(cfg)) << "\n";
  return 0;
}

} // namespace sluice::app
