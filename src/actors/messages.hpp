#pragma once

// The message vocabulary of the actor graph. Included only by actor
// translation units: it pulls in CAF.

#include "core/row_counts.hpp"
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
  std::int64_t rows = 0;  ///< records the consumer issued (the credit back)
  std::int64_t bytes = 0; ///< their bytes (the byte credit back)
  row_counts counts;      ///< what became of them
  std::map<std::string, std::int64_t> rows_by_topic;
};

/// Producer thread -> sink: records of a batch the broker refused for good;
/// they go to the DLQ, then the batch is acknowledged.
struct refused_records {
  batch_ack ack;
  std::vector<kafka::delivery_failure> failures;
};
/// Consumer -> checkpoint: where a partition stands.
struct partition_report {
  kafka::topic_partition tp;
  std::int64_t watermark = -1; ///< every offset below is handled
  std::int64_t consumed = 0;   ///< input rows counted for the partition
  std::int64_t in_flight = 0;
  std::int64_t latest = -1; ///< the high watermark, as far as known
  /// Below the open epoch's limit, where the partition can read to now (an
  /// open transaction's last stable offset); -1 otherwise.
  std::int64_t stable_end = -1;
};

/// Poll thread -> checkpoint: the outcome of an epoch's asynchronous commit.
struct epoch_committed {
  std::uint64_t seq = 0; ///< the commit's number (one outstanding at a time)
  kafka::commit_outcome outcome;
};

/// Pipeline -> checkpoint: the outcome of the commit of what `take_atom`
/// handed over (at a revocation or the run's end).
struct final_committed {
  kafka::commit_outcome outcome;
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
// Checkpoint: epoch timer; hand over final offsets; current watermark of one partition.
using epoch_atom = caf::atom_constant<caf::atom("epoch")>;
using take_atom = caf::atom_constant<caf::atom("take")>;
using watermark_atom = caf::atom_constant<caf::atom("watermark")>;
// Checkpoint -> itself: stop holding a take back for an unanswered commit.
using expire_atom = caf::atom_constant<caf::atom("expire")>;
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
// Exactly-once, checkpoint -> supervisor -> consumers: stop issuing batches
// and answer once none is in flight (the epoch's transaction then holds
// exactly what the answered watermarks cover) / go on.
using hold_atom = caf::atom_constant<caf::atom("hold")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
// Exactly-once, pipeline -> checkpoint: the supervisor to hold the chains with.
using supervisor_atom = caf::atom_constant<caf::atom("supervisor")>;
// Exactly-once rewinds: checkpoint -> supervisor `rewind_atom, why` (a commit
// was aborted: restart every chain from the last commit); supervisor ->
// checkpoint `rewind_atom` (a rewind began: the watermarks are void) and
// `rewind_atom, offset_map` (every chain restarted, from these offsets);
// supervisor -> itself `rewind_step_atom` (the next step, once due).
using rewind_atom = caf::atom_constant<caf::atom("rewind")>;
using rewind_step_atom = caf::atom_constant<caf::atom("rewindstep")>;

/// Supervisor -> checkpoint: the answer to `hold_atom`.
enum class hold_status : std::uint8_t {
  held,     ///< every chain is held: commit `offsets`, then release
  busy,     ///< partitions are being drained or chains restarted: skip this epoch
  rewinding ///< a chain failed: the transaction is being aborted
};
struct hold_answer {
  hold_status status = hold_status::busy;
  offset_map offsets; ///< held: every chain's watermark
};

} // namespace sluice::actors

// Local-only messages: never serialized, so no inspect() needed.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::batch_ack)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::refused_records)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::partition_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::epoch_committed)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::final_committed)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::hold_answer)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::offset_map)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::assignment)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::actors::partition_list)
