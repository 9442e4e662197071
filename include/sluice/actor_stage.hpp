#pragma once

// User actors as stages: the one public header that includes CAF (0.17).
// Link the CMake target sluice::actors (sluice::sluice plus CAF).

#include <sluice/builder.hpp>
#include <sluice/record.hpp>

#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>

namespace sluice {

/// The interface of a stage actor: it gets a batch of one partition, in
/// offset order, and answers with it (the same pointer, or another batch):
/// records changed in place, marked bad with `record::error` (they go to the
/// DLQ with that reason), `dropped`, removed (counted as drops) or added
/// (give each the offset of the record it came from; one with fields and no
/// value is written from its fields). Answering with an
/// error (`caf::make_error(caf::sec::runtime_error, "why")`), throwing (see
/// report_exceptions), or not answering within `actor_stage::timeout` fails
/// the chain: it restarts from its last handled offset, with a new actor,
/// within `runtime.restartBudget`; the run's error names the reason.
using stage_actor = caf::typed_actor<caf::replies_to<batch_ptr>::with<batch_ptr>>;

/// The chain an actor serves: one per partition (per lane with
/// `source.minPartitions`).
struct stage_origin {
  std::string topic;
  std::int32_t partition = 0;
  /// With `source.minPartitions`, which of the partition's lanes (from 0);
  /// a key's records always go to the same lane.
  int lane = 0;
};

/// A stage made of one user actor per partition chain. Sluice calls `make`
/// at every start and restart of a chain, sends it that chain's batches in
/// order, takes its answers in order, and holds the chain's credit meanwhile
/// (the actor never sees backpressure). Its state is the chain's: a running
/// aggregate per key lives in the actor, and starts afresh when the chain
/// restarts (records since the last commit are then seen again).
///
/// `make` is shared by every chain and called from several scheduler threads
/// at once: keep it thread-safe and quick, and return a new actor each time.
/// Sluice ends that actor when its chain ends; actors it spawned itself (a
/// pool of helpers) are its to end (`attach_functor`). A run waits for its
/// actors at its end: a blocking call in a detached actor needs a bound of
/// its own. Helpers may read a batch's rows at once, but change them from one
/// thread at a time: the rows of a batch share one memory arena (see `row`).
///
/// How to spawn it, in `make`:
/// - `sys.spawn(fn)`: on CAF's scheduler, as Sluice's own stages. Each
///   message must be short: work in memory, no blocking calls.
/// - `sys.spawn<caf::detached>(fn)`: a thread of its own, for blocking calls
///   (a synchronous client, a file). A slow one holds back its own partition
///   only.
/// - For a service with an asynchronous client: answer with a response
///   promise when the call completes, and set `max_in_flight` above 1 so
///   that several batches of the partition are out at once (their answers
///   are still taken in offset order).
struct actor_stage {
  std::function<stage_actor(caf::actor_system& sys, const stage_origin& origin)> make;
  /// Batches of one chain sent before the first of them is answered.
  std::size_t max_in_flight = 1;
  /// Longest wait for an answer before the chain fails, counted from when the
  /// batch is sent (behind the batches before it). A stop or rebalance waits
  /// for in-flight batches at most the producer's delivery timeout + 5 s.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  /// Set for a stage that writes the records itself (files, a database):
  /// a name for where they go (`files:/data/lake`). Its answer to a batch
  /// says that the batch's records are durable: each it answers without
  /// `error` and not `dropped` is `delivered`, counted as an output (under
  /// this name in run_summary::rows_by_topic) and committed from then on;
  /// the rest go to the DLQ or are drops, as for any stage. It must be the
  /// pipeline's last step, and the pipeline has no route and no dedup. To
  /// write in bigger pieces than a batch, hold answers (response promises)
  /// and raise `max_in_flight`; the partition's credit
  /// (`runtime.maxInFlightPerPartition`) bounds what is held.
  std::string delivers;
};

/// Makes an exception in a stage actor fail its chain with the exception's
/// text: CAF's default handler prints it on stderr and ends the actor with a
/// bare `runtime_error`. Call it first in the actor's behaviour function.
template <class Self>
void report_exceptions(Self* self) {
  self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      return caf::make_error(caf::sec::runtime_error, std::string(x.what()));
    } catch (...) {
      return caf::make_error(caf::sec::runtime_error,
                             std::string("an exception that is not a std::exception"));
    }
  });
}

} // namespace sluice

// Batches are handed between actors of one process by pointer, never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sluice::batch_ptr)
