#include "runtime/dedup/state_guard.hpp"

#include "runtime/errors.hpp"

#include <spdlog/spdlog.h>

namespace sluice::dedup {

std::unique_ptr<state::store> open_state(const dedup_options& options,
                                         std::size_t memory_budget) {
  const auto& dir = options.state_dir;
  try {
    return std::make_unique<state::store>(dir, memory_budget, "dedup.stateDir");
  } catch (const state::damaged_error& e) {
    if (options.changelog.empty())
      throw fatal_error(
          "the dedup state in `" + dir + "` is damaged (" + e.detail() +
          "), and without a changelog (dedup.changelog is false) it cannot be rebuilt: "
          "delete `" +
          dir +
          "` and run again (the keys it held are forgotten: re-sent records seen "
          "before pass once)");
    auto aside = state::set_aside(dir);
    spdlog::warn("the dedup state in `{}` is damaged ({}): moved to `{}`, and rebuilt "
                 "from the changelog `{}` (delete `{}` when you no longer need it)",
                 dir, e.detail(), aside, options.changelog, aside);
    return std::make_unique<state::store>(dir, memory_budget, "dedup.stateDir");
  }
}

} // namespace sluice::dedup
