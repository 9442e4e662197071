#pragma once

#include "actors/run_context.hpp"

#include <caf/fwd.hpp>

namespace sluice::actors {

/// Collects every partition's watermark and counters (reported by the
/// consumer actors), and at the end of each epoch commits the watermarks the
/// group does not hold yet (asynchronously: it never blocks), then publishes
/// one progress report once the commit answered, with `endOffset` what the
/// group holds. Fails the run when a cluster stays unreachable longer than
/// `runtime.brokerTimeout`. For availableNow, tells the run when every
/// partition's watermark reached its end offset.
///
/// The epoch rules (rate limits, bounded runs) are the `epoch_planner`'s,
/// the reports' numbers the `progress_builder`'s; the actor does the reading,
/// the commits and the timers.
///
/// Messages: `partition_report` (from each consumer); `assign_atom,
/// assignment` (the partitions and their starts; the numbering continues
/// after their commits' batch ids); `watermark_atom, topic, partition` ->
/// int64_t; `take_atom, partition_list` -> (offset_map, batch_id): closes an
/// epoch, hands over the uncommitted watermarks of those partitions (all
/// when empty) and forgets them; the caller commits them and answers
/// `final_committed`, which publishes that epoch's report. Its own epoch
/// commits answer `epoch_committed{seq}`. Commits go one at a time: an epoch
/// that closes while the last commit is unanswered leaves its offsets to the
/// next, and the final take (all partitions) waits for that answer, at most
/// 5 s.
caf::actor spawn_checkpoint(caf::actor_system& system, run_context* ctx);

} // namespace sluice::actors
