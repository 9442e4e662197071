#pragma once

#include <sluice/topic_partition.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace sluice::kafka {

/// Per partition, the next offset to read.
using offset_map = std::map<topic_partition, std::int64_t>;

/// The outcome of an offset commit.
struct commit_outcome {
  offset_map committed;             ///< partitions whose offset the broker took
  std::optional<std::string> error; ///< the first failure, if any partition failed
  bool rebalancing = false;         ///< failed because the group is rebalancing
  bool denied = false;              ///< refused by the cluster's ACLs: never retried
  offset_map refused;               ///< what was asked and not committed
  std::int64_t batch_id = -1;       ///< the epoch id the commit carried
};

/// Where a run's handled offsets go, and where a restarted chain resumes: the
/// guarantee's seam. At-least-once (`group_committer`) commits them to the
/// consumer group; exactly-once will send them to the open transaction
/// instead. The checkpoint and the rebalance bridge know only this.
///
/// `batch_id` is the epoch id kept with the offsets, so that a restart
/// continues the epoch numbering. Thread-safe.
class offset_committer {
public:
  virtual ~offset_committer() = default;

  /// Commits without blocking; `done` runs later, on a client thread (it must
  /// be quick: send a message), or at once when nothing is asked or the
  /// request cannot be made.
  virtual void commit_async(const offset_map& offsets, std::int64_t batch_id,
                            std::function<void(commit_outcome)> done) = 0;

  /// Commits and waits for the outcome, at most `timeout`.
  virtual commit_outcome commit_sync(const offset_map& offsets, std::int64_t batch_id,
                                     std::chrono::milliseconds timeout) = 0;

  /// Keeps offsets whose commit the group refused because it was rebalancing,
  /// to commit them as the next assignment arrives (before any committed
  /// offset is read).
  virtual void commit_after_rebalance(const offset_map& offsets,
                                      std::int64_t batch_id) = 0;

  /// Commits what commit_after_rebalance() kept, if anything (a run that
  /// stops between a refused commit and the next assignment). Returns what
  /// went wrong, naming what will be read again.
  virtual std::optional<std::string>
  commit_deferred(std::chrono::milliseconds timeout) = 0;

  /// Where a restarted chain of `tp` resumes, given that every offset below
  /// `watermark` is handled and that its assignment started it at
  /// `assigned_start`. At-least-once resumes at the watermark (what the
  /// failed chain delivered is kept); a transactional committer resumes where
  /// its last committed transaction ends.
  virtual std::int64_t restart_point(const topic_partition& tp, std::int64_t watermark,
                                     std::int64_t assigned_start) const = 0;

  /// Whether what is written since the last commit is taken back when a
  /// chain fails (exactly-once): then every chain resumes at its restart
  /// point, after discard().
  virtual bool discards_on_failure() const { return false; }

  /// Takes back what was written since the last commit, where the guarantee
  /// can (exactly-once aborts the transaction); `done` runs afterwards, on a
  /// client thread (it must be quick: send a message).
  virtual void discard(const std::string& why, std::function<void()> done) {
    (void)why;
    if (done) done();
  }
};

} // namespace sluice::kafka
