#pragma once

// Whether a state directory may serve this run, decided once at start,
// before any partition's table is opened: it opens. A damaged one is a
// cache, set aside and rebuilt from the changelog (or, without one, the run
// fails saying what to delete).

#include "runtime/options.hpp"
#include "runtime/state/state_store.hpp"

#include <memory>

namespace sluice::dedup {

/// Opens the store under `options.state_dir` (see state::store). A damaged
/// one is moved aside (state::set_aside) and a new one opened, with a
/// warning, when a changelog can rebuild it; without a changelog, throws
/// fatal_error saying what is damaged and what to delete.
std::unique_ptr<state::store> open_state(const dedup_options& options,
                                         std::size_t memory_budget);

} // namespace sluice::dedup
