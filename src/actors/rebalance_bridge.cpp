#include "actors/rebalance_bridge.hpp"

#include "actors/messages.hpp"
#include "core/log.hpp"
#include "kafka/source_bounds.hpp"

#include <caf/all.hpp>

namespace sluice::actors {

void rebalance_bridge::attach(caf::actor_system& system, run_context& ctx,
                              caf::actor checkpoint, caf::actor supervisor) {
  system_ = &system;
  ctx_ = &ctx;
  checkpoint_ = std::move(checkpoint);
  supervisor_ = std::move(supervisor);
}

void rebalance_bridge::detach() {
  checkpoint_ = nullptr;
  supervisor_ = nullptr;
  ctx_ = nullptr;
  system_ = nullptr;
}

/// What this member holds after an assignment or revocation: with the cooperative
/// protocol an assignment only adds (often nothing) and a revocation only removes.
/// At most the first 20 partitions, and how many more: a member of a
/// pattern over many topics may hold thousands.
void rebalance_bridge::log_held() const {
  constexpr std::size_t shown = 20;
  std::string list;
  std::size_t n = 0;
  for (auto& tp : held_)
    if (n++ < shown) list += (list.empty() ? "" : ", ") + tp.str();
  if (n > shown) list += ", ... " + std::to_string(n - shown) + " more";
  sluice::logger().info("holding: {}", list.empty() ? "(none)" : list);
}

void rebalance_bridge::on_assigned(
    const std::vector<kafka::assigned_partition>& assigned) {
  if (!ctx_) {
    // The consumer starts after attach() and is closed before detach().
    sluice::logger().error("an assignment came with no run to take it: ignored");
    return;
  }
  auto& ends = ctx_->end_offsets;
  std::string list;
  auto parts = assigned;
  for (auto& p : parts) {
    // Retention deleted even the end (failOnDataLoss false): the partition
    // reads nothing, and only what its range held counts as lost here.
    if (auto end = ends.find(p.tp); end != ends.end())
      kafka::cap_loss_at_end(p, end->second);
    list +=
        (list.empty() ? "" : ", ") + p.tp.str() + "@" + std::to_string(p.start_offset);
    if (p.lost > 0) ctx_->metrics.add_lost(p.tp, p.lost);
    // Spark: "starting offset is after the ending offset".
    if (!p.from_commit)
      if (auto end = ends.find(p.tp); end != ends.end() && p.start_offset > end->second) {
        control_.fail(p.tp.str() + ": the start options put its start at " +
                      std::to_string(p.start_offset) + ", after its end " +
                      std::to_string(end->second) + " (set source.startingOffsets)");
        return;
      }
  }
  sluice::logger().info("assigned: {}", list.empty() ? "(none)" : list);
  for (auto& p : parts)
    held_.insert(p.tp);
  log_held();
  if (!parts.empty()) control_.note_assigned();
  ctx_->quiesced = false; // the rebalance is over
  caf::scoped_actor self{*system_};
  self->send(checkpoint_, assign_atom::value, assignment(parts));
  // Never wait without a bound from librdkafka's thread.
  self->request(supervisor_, actor_timeout, assign_atom::value, assignment(parts))
      .receive([](bool) {},
               [&](caf::error& err) {
                 // An assignment that lands while the run stops (its actors are
                 // gone): nothing of it was read, and closing the consumer
                 // revokes it.
                 if (err == caf::sec::request_receiver_down && control_.ending()) return;
                 control_.fail("cannot start partition chains: " + system_->render(err));
               });
}

void rebalance_bridge::on_revoked(const std::vector<kafka::topic_partition>& parts,
                                  bool lost) {
  if (!ctx_) {
    sluice::logger().error("a revocation came with no run to take it: ignored");
    return;
  }
  if (lost)
    // Kafka's onPartitionsLost: the group moved on without this member.
    // Their chains stop at once (no drain); what they handled is still
    // committed below, or after the rejoin when the group refuses it.
    sluice::logger().warn(
        "lost {} partition(s) (the group moved on without this member): "
        "stopping their chains",
        parts.size());
  else
    sluice::logger().info("revoked {} partition(s): draining and committing",
                          parts.size());
  for (auto& p : parts)
    held_.erase(p);
  log_held();
  // With a cluster unreachable, in-flight outputs cannot be delivered: do not
  // hold the group's thread for the whole delivery timeout.
  auto bound = cluster_down() ? std::chrono::milliseconds(10000) : drain_timeout();
  if (!parts.empty()) {
    caf::scoped_actor self{*system_};
    self->request(supervisor_, bound, revoke_atom::value, partition_list(parts), lost)
        .receive(
            [&](bool clean) {
              if (!clean)
                control_.fail("revoked partitions could not be drained: outputs were "
                              "still in flight after the producer's message.timeout.ms");
            },
            [&](caf::error& err) {
              if (err != caf::sec::request_receiver_down)
                control_.fail("revoked partitions could not be drained in time: " +
                              system_->render(err));
            });
  }
  if (parts.empty()) return; // an empty list would mean "all" to the checkpoint
  // Exactly-once: the group has moved on, so the coordinator refuses the
  // transaction's offsets; the supervisor aborts it instead.
  bool commit = !(lost && ctx_->committer.discards_on_failure());
  auto outcome = commit_final(partition_list(parts), commit);
  if (outcome.rebalancing) {
    ctx_->committer.commit_after_rebalance(outcome.refused, outcome.batch_id);
    sluice::logger().info("the group refused the commit while rebalancing; it is "
                          "retried as the rebalance ends");
  } else if (outcome.error) {
    sluice::logger().warn("the commit on revocation failed ({}); the next owner reads "
                          "those records again",
                          *outcome.error);
  }
}

void rebalance_bridge::on_error(const std::string& what, bool is_fatal) {
  if (is_fatal)
    control_.fail("Kafka consumer: " + what);
  else
    sluice::logger().warn("Kafka consumer: {}", what);
}

bool rebalance_bridge::cluster_down() const {
  return ctx_->consumer.health().down() || ctx_->producer.health().down();
}

std::chrono::milliseconds rebalance_bridge::drain_timeout() const {
  return 3 * ctx_->producer.delivery_timeout() + std::chrono::seconds(30);
}

kafka::commit_outcome
rebalance_bridge::commit_final(std::vector<kafka::topic_partition> parts, bool commit) {
  caf::scoped_actor self{*system_};
  offset_map offsets;
  std::int64_t batch_id = -1;
  self->request(checkpoint_, actor_timeout, take_atom::value, std::move(parts))
      .receive(
          [&](offset_map& m, std::int64_t id) {
            offsets = std::move(m);
            batch_id = id;
          },
          [](caf::error&) {});
  if (offsets.empty()) return {};
  if (!commit) {
    self->send(checkpoint_, final_committed{});
    return {};
  }
  auto outcome = ctx_->committer.commit_sync(offsets, batch_id, commit_timeout);
  outcome.batch_id = batch_id;
  for (auto& [tp, off] : offsets)
    if (!outcome.committed.contains(tp)) outcome.refused[tp] = off;
  self->send(checkpoint_, final_committed{outcome});
  // A round trip: the checkpoint has published the epoch's report before
  // anyone stops it.
  self->request(checkpoint_, actor_timeout, watermark_atom::value, std::string(),
                std::int32_t{0})
      .receive([](std::int64_t) {}, [](caf::error&) {});
  if (!outcome.error)
    sluice::logger().info("committed the offsets of {} partition(s)", offsets.size());
  for (auto& [tp, off] : offsets)
    sluice::logger().debug("committed {} at {}", tp.str(), off);
  // What could not be committed is read again: name it.
  if (outcome.error) {
    std::string missed;
    for (auto& [tp, off] : offsets)
      if (!outcome.committed.contains(tp))
        missed +=
            (missed.empty() ? "" : ", ") + tp.str() + " below " + std::to_string(off);
    outcome.error = *outcome.error + "; the records of " + missed +
                    " since the last successful commit will be read again";
  }
  return outcome;
}

} // namespace sluice::actors
