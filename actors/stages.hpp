#pragma once

// The per-partition stages behind a consumer actor, spawned linked to it:
//   consumer -> parser -> router -> [user stage] -> sink
// Each takes `batch_ptr` messages and passes them on; the sink acknowledges
// fully delivered batches to the consumer. Included by actor code only.

#include "actors/run_context.hpp"

#include <caf/fwd.hpp>

#include <cstdint>

namespace sluice::actors {

/// Parses every record of a batch (JSON + schema); invalid ones get an error.
caf::behavior parser_stage(caf::event_based_actor* self, parse_options opts, caf::actor next);

/// Chooses each valid record's output topic.
caf::behavior router_stage(caf::event_based_actor* self, run_context* ctx, caf::actor next);

/// Runs the user's batch function.
caf::behavior function_stage(caf::event_based_actor* self, batch_function fn, caf::actor next);

/// Spawns parser -> router -> [user stage] -> sink, each linked to `owner`
/// (the partition's consumer actor, which the sink acknowledges), and
/// returns the first stage.
caf::actor spawn_stages(caf::event_based_actor* owner, run_context* ctx,
                        std::uint32_t generation);

/// Turns exceptions into the actor's exit reason, keeping their text.
void fail_on_exception(caf::scheduled_actor* self);

} // namespace sluice::actors
