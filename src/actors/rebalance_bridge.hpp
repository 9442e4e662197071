#pragma once

#include "actors/run_context.hpp"
#include "actors/run_control.hpp"
#include "kafka/consumer.hpp"

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <chrono>
#include <set>
#include <vector>

namespace sluice::actors {

/// The group consumer's rebalance callbacks, on librdkafka's poll thread,
/// turned into requests to the run's actors: an assignment starts the
/// partitions' chains (supervisor) and registers their starts (checkpoint);
/// a revocation drains the chains and commits what they handled before it
/// returns. Every request is bounded: librdkafka's thread never waits
/// forever on an actor.
///
/// Messages out: `assign_atom, assignment` (checkpoint, supervisor);
/// `revoke_atom, partition_list, lost` -> bool (supervisor); `take_atom`,
/// `final_committed`, `watermark_atom` (checkpoint, see commit_final).
class rebalance_bridge : public kafka::rebalance_listener {
public:
  explicit rebalance_bridge(run_control& control) : control_(control) {}

  /// The run's actors, from its start until they are gone.
  void attach(caf::actor_system& system, run_context& ctx, caf::actor checkpoint,
              caf::actor supervisor);
  void detach();

  void on_assigned(const std::vector<kafka::assigned_partition>& assigned) override;
  void on_revoked(const std::vector<kafka::topic_partition>& parts, bool lost) override;
  void on_error(const std::string& what, bool is_fatal) override;

  /// Takes the uncommitted watermarks of `parts` (all when empty) from the
  /// checkpoint and commits them (unless `commit` is false: the checkpoint
  /// just lets them go), waiting at most commit_timeout; the checkpoint has
  /// published the epoch's report when it returns.
  kafka::commit_outcome commit_final(std::vector<kafka::topic_partition> parts,
                                     bool commit = true);

  /// A cluster cannot be reached: in-flight outputs cannot be delivered.
  bool cluster_down() const;
  /// Bounds a drain: the chains' deliveries are reported within it.
  std::chrono::milliseconds drain_timeout() const;

  /// Requests into actors from threads outside CAF never wait forever.
  static constexpr auto actor_timeout = std::chrono::seconds(30);
  static constexpr auto commit_timeout = std::chrono::seconds(15);

private:
  void log_held() const;

  run_control& control_;
  caf::actor_system* system_ = nullptr;
  run_context* ctx_ = nullptr;
  caf::actor checkpoint_;
  caf::actor supervisor_;
  std::set<kafka::topic_partition> held_; ///< the poll thread's alone
};

} // namespace sluice::actors
