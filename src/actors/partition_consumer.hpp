#pragma once

#include "actors/run_context.hpp"

#include <sluice/topic_partition.hpp>

#include <caf/fwd.hpp>

#include <cstdint>

namespace sluice::actors {

/// The head of one partition's chain. Reads its partition's own queue in
/// batches while it has credit: records read but not yet acknowledged by the
/// sink (at most `runtime.maxInFlightPerPartition`), and bytes across all
/// partitions (`runtime.maxInFlightBytes`). Out of credit it stops reading
/// and keeps librdkafka's prefetch, whose size is derived from the credit.
/// It spawns its stages linked to itself, so the chain lives and dies as one.
/// It tracks the partition's offset watermark, publishes it in `shared`
/// (where a restart resumes) and reports it to `checkpoint`.
///
/// Messages: `drain_atom` -> int64_t watermark, once nothing is in flight.
/// Spawned by (and monitored by) `owner`, the supervisor.
caf::actor spawn_partition_consumer(caf::event_based_actor* owner, run_context* ctx,
                                    kafka::topic_partition tp, std::int64_t start_offset,
                                    std::uint32_t generation,
                                    std::shared_ptr<partition_shared> shared,
                                    std::shared_ptr<chain_deliveries> deliveries,
                                    caf::actor checkpoint);

} // namespace sluice::actors
