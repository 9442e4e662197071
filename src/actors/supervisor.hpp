#pragma once

#include "actors/run_context.hpp"

#include <caf/fwd.hpp>

namespace sluice::actors {

/// Owns the partition chains: spawns one per assigned partition, monitors
/// them, and restarts a failed chain from its partition's watermark (the
/// offset below which everything is handled) after a backoff that doubles on
/// every restart. When one partition's chain has failed more than
/// `runtime.restartBudget` times, the run ends with the last error.
///
/// Messages: `assign_atom, assignment` -> bool; `revoke_atom, partition_list,
/// lost` -> bool (drains those chains: stop reading, wait for in-flight
/// records, stop; `lost`: stop them at once, nothing can be committed); `drain_atom` ->
/// bool (all chains); `stop_atom` -> bool (kill every chain at once, then quit).
caf::actor spawn_supervisor(caf::actor_system& system, run_context* ctx,
                            caf::actor checkpoint);

} // namespace sluice::actors
