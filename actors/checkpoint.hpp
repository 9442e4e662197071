#pragma once

#include "actors/run_context.hpp"

#include <caf/fwd.hpp>

namespace sluice::actors {

/// Collects every partition's watermark and counters (reported by the
/// consumer actors), and at the end of each epoch commits the watermarks to
/// the consumer group (asynchronously: it never blocks) and publishes one
/// progress report. For availableNow, tells the run when every partition's
/// watermark reached its end offset.
///
/// Messages: `report_atom, topic, partition, watermark, consumed, in_flight,
/// latest`; `watermark_atom, topic, partition` -> int64_t;
/// `take_atom, partition_list` -> offset_map: closes an epoch, hands over the
/// watermarks of those partitions (all when empty) and forgets them.
caf::actor spawn_checkpoint(caf::actor_system& system, run_context* ctx);

} // namespace sluice::actors
