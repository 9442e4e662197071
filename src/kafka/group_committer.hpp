#pragma once

#include "kafka/cluster_health.hpp"
#include "kafka/offset_committer.hpp"

#include <mutex>
#include <string>

struct rd_kafka_s;
struct rd_kafka_queue_s;

namespace sluice::kafka {

/// At-least-once: commits offsets to the consumer group (OffsetCommit), with
/// the epoch id in each offset's metadata. A restarted chain resumes at its
/// watermark. Owned by the group_consumer whose client it commits through;
/// its poll thread serves the answers.
class group_committer final : public offset_committer {
public:
  /// `health` is the source cluster's: an answered commit marks it up.
  group_committer(rd_kafka_s* consumer, std::string group, cluster_health& health);
  /// Frees the callbacks of commits answered late, without calling them: the
  /// actors they would tell are gone. Before the client is destroyed.
  ~group_committer() override;
  group_committer(const group_committer&) = delete;
  group_committer& operator=(const group_committer&) = delete;

  void commit_async(const offset_map& offsets, std::int64_t batch_id,
                    std::function<void(commit_outcome)> done) override;
  commit_outcome commit_sync(const offset_map& offsets, std::int64_t batch_id,
                             std::chrono::milliseconds timeout) override;
  /// The embedded broker refuses commits during a rebalance; Kafka accepts
  /// them from the current generation. Kept offsets are committed at the
  /// next assignment: a partition that comes back to this member resumes
  /// exactly there, and one that moves usually does.
  void commit_after_rebalance(const offset_map& offsets, std::int64_t batch_id) override;
  std::optional<std::string> commit_deferred(std::chrono::milliseconds timeout) override;
  std::int64_t restart_point(const topic_partition& tp, std::int64_t watermark,
                             std::int64_t assigned_start) const override;

  /// Calls the callbacks of the asynchronous commits that were answered,
  /// waiting at most `timeout_ms` for the first (the poll thread's job).
  void serve(int timeout_ms);

  /// At an assignment, before the committed offsets are read: commits what
  /// the rebalance refused, so that it is what they (and, usually, the new
  /// owners) read; logs what could not be.
  void commit_refused_at_assignment();

private:
  /// Drops kept (refused) offsets that a later commit has gone past.
  void forget_deferred(const offset_map& committed);
  /// Takes the kept offsets and their epoch id.
  std::pair<offset_map, std::int64_t> take_deferred();

  rd_kafka_s* rk_;
  std::string group_;
  cluster_health& health_;
  rd_kafka_queue_s* answers_;
  std::mutex deferred_mutex_;
  offset_map deferred_;
  std::int64_t deferred_batch_id_ = -1;
};

} // namespace sluice::kafka
