#pragma once

// The message vocabulary of the actor graph. Included only by actor
// translation units: it pulls in CAF.

#include "kafka/consumer.hpp"
#include "kafka/producer.hpp"

#include <sluice/actor_stage.hpp> // batch_ptr as a message type
#include <sluice/record.hpp>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include <map>
#include <vector>

namespace sluice::actors {

/// Final offsets (next offset to read) per partition.
using offset_map = kafka::offset_map;

/// Sink -> consumer: a batch is fully handled (credit back), and what it wrote.
struct batch_ack {
  std::int64_t begin = 0;
  std::uint32_t generation = 0;
  std::int64_t rows = 0;
  std::int64_t bytes = 0;
  std::int64_t outputs = 0;
  std::int64_t dlq = 0;
  std::int64_t dropped = 0;    ///< handled on purpose without a write (tombstones)
  std::int64_t duplicates = 0; ///< of `dropped`: duplicates the dedup stage dropped
  std::int64_t late = 0;       ///< passed by the dedup stage as late (written or DLQ)
  std::map<std::string, std::int64_t> rows_by_topic;
};

/// Producer thread -> sink: records of a batch the broker refused for good;
/// they go to the DLQ, then the batch is acknowledged.
struct refused_records {
  batch_ack ack;
  std::vector<kafka::delivery_failure> failures;
};
using assignment = std::vector<kafka::assigned_partition>;
using partition_list = std::vector<kafka::topic_partition>;

// Consumer actor: read more records now / the queue has records / periodic poll.
using poll_atom = caf::atom_constant<caf::atom("poll")>;
using wake_atom = caf::atom_constant<caf::atom("wake")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
// Sink -> consumer: the batch starting at an offset is fully handled (credit back).
using ack_atom = caf::atom_constant<caf::atom("ack")>;
// Stop reading, wait for in-flight records, reply.
using drain_atom = caf::atom_constant<caf::atom("drain")>;
// Sink -> itself: a delivery failed / the producer queue has room again.
using failed_atom = caf::atom_constant<caf::atom("failed")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
// Sink -> itself: records the broker refused for good.
using refused_atom = caf::atom_constant<caf::atom("refused")>;
// Consumer -> checkpoint: a partition's watermark and counters.
using report_atom = caf::atom_constant<caf::atom("report")>;
// Checkpoint: epoch timer; hand over final offsets; current watermark of one partition.
using epoch_atom = caf::atom_constant<caf::atom("epoch")>;
using take_atom = caf::atom_constant<caf::atom("take")>;
using watermark_atom = caf::atom_constant<caf::atom("watermark")>;
// Checkpoint -> itself: stop holding a take back for an unanswered commit.
using expire_atom = caf::atom_constant<caf::atom("expire")>;
// Poll thread -> checkpoint: the outcome of an epoch's commit.
using committed_atom = caf::atom_constant<caf::atom("committed")>;
// Supervisor and checkpoint: partitions assigned; supervisor: revoked, restart one chain,
// a fatal error.
using assign_atom = caf::atom_constant<caf::atom("assign")>;
using revoke_atom = caf::atom_constant<caf::atom("revoke")>;
using restart_atom = caf::atom_constant<caf::atom("restart")>;
using fatal_atom = caf::atom_constant<caf::atom("fatal")>;
// Dedup stage -> itself: open the partition's state before any batch.
using open_atom = caf::atom_constant<caf::atom("open")>;
// Checkpoint -> consumer: the run has stalled, log your state.
using stall_atom = caf::atom_constant<caf::atom("stall")>;
// Supervisor: kill every chain now (no drain) and quit.
using stop_atom = caf::atom_constant<caf::atom("stop")>;

} // namespace sluice::actors

// Local-only messages: never serialized, so no inspect() needed.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::batch_ack)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::refused_records)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::kafka::commit_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::offset_map)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::assignment)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::partition_list)
