#pragma once

// The per-partition stages behind a consumer actor, spawned linked to it:
//   consumer -> parser -> steps -> router -> [dedup] -> [user stage] -> sink
// record_stages.cpp: the chain's assembly and the record stages; sink.cpp,
// dedup_stage.cpp, actor_stage.cpp: the others.
// Each takes `batch_ptr` messages and passes them on; the sink acknowledges
// fully delivered batches to the consumer. Included by actor code only.

#include "actors/run_context.hpp"

#include <caf/fwd.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace sluice::actors {

/// Spawns parser -> router -> [dedup] -> [user stage] -> sink, each linked to `owner`
/// (the partition's consumer actor, which the sink acknowledges), and
/// returns the first stage. The sink counts its open delivery groups in
/// `deliveries`.
/// A stage that fails writes its error here before it quits: the exit
/// message its link partners receive does not reliably carry the reason in
/// CAF 0.17.6 (seen as `unreachable`), and the supervisor needs the text.
caf::actor spawn_stages(caf::event_based_actor* owner, run_context* ctx,
                        const kafka::topic_partition& tp, int lane,
                        std::uint32_t generation,
                        std::shared_ptr<chain_deliveries> deliveries,
                        std::shared_ptr<std::string> chain_error);

/// Spawns, linked to `owner`, the chain's sink (sink.cpp): writes outputs and
/// DLQ records in order, one delivery group per batch, and acknowledges each
/// batch to `consumer` once all of it is delivered.
caf::actor spawn_sink(caf::event_based_actor* owner, run_context* ctx,
                      caf::actor consumer, std::uint32_t generation,
                      std::shared_ptr<chain_deliveries> deliveries,
                      std::shared_ptr<std::string> chain_error);

/// Spawns, linked to `owner` and detached (RocksDB blocks), the partition's
/// dedup stage (dedup_stage.cpp); it opens the partition's state, restoring
/// it from the changelog, before any batch.
caf::actor spawn_dedup_stage(caf::event_based_actor* owner, run_context* ctx,
                             const kafka::topic_partition& tp, caf::actor next,
                             std::shared_ptr<chain_deliveries> deliveries,
                             std::shared_ptr<std::string> chain_error);

/// Spawns, linked to `owner`, the actor that sends a chain's batches to a
/// user's stage actor (made by `stage.make`) and passes its answers on to
/// `next` in order (actor_stage.cpp).
caf::actor spawn_actor_stage(caf::event_based_actor* owner,
                             std::shared_ptr<const actor_stage> stage,
                             const kafka::topic_partition& tp, int lane,
                             const parse_options& parse, caf::actor next,
                             std::shared_ptr<std::string> chain_error);

/// Counts `actor` among the run's live actors until it exits; returns it.
caf::actor tracked(run_context* ctx, caf::actor actor);

/// Throws config_error when an actor step cannot work (no stage, no `make`,
/// max_in_flight 0, a timeout not above 0); `step` is its place, from 1.
void check_actor_step(const actor_step& step, std::size_t place);

/// Throws config_error unless a stage that writes the records itself
/// (`actor_stage::delivers`) is the last step and is the one
/// `route.delivered_by` names, and unless one is when it names one.
void check_delivering_steps(const std::vector<processing_step>& steps,
                            const std::string& delivered_by);

/// Turns exceptions into the actor's exit reason, keeping their text, and
/// records it in `chain_error` when given.
void fail_on_exception(caf::scheduled_actor* self,
                       std::shared_ptr<std::string> chain_error = nullptr);

} // namespace sluice::actors
