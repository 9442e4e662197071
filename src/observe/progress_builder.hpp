#pragma once

#include "core/row_counts.hpp"
#include "source/epoch_planner.hpp"

#include <sluice/progress.hpp>
#include <sluice/topic_partition.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace sluice {

/// The run's counters that a report shows per epoch (what changed in it).
struct epoch_counts {
  row_counts rows;
  std::int64_t state_updated = 0; ///< dedup state rows written
  std::int64_t state_removed = 0; ///< and purged
};

/// Where the run stands, as Spark's status message says it.
enum class run_status {
  waiting_for_data,
  waiting_for_trigger, ///< a rate limit holds records back
  processing,
  source_unreachable,
  sink_unreachable,
};

inline bool is_unreachable(run_status s) {
  return s == run_status::source_unreachable || s == run_status::sink_unreachable;
}

/// One partition as an epoch closes.
struct partition_reading {
  std::int64_t epoch_start = -1; ///< what the group held when the epoch began
  std::int64_t watermark = -1;
  std::int64_t latest = -1;
  std::int64_t committed = -1; ///< last offset the group confirmed
  std::int64_t consumed = 0;   ///< input rows counted for it (its chain's counter)
  std::int64_t in_flight = 0;
};

/// A cluster's reachability when an epoch closes.
struct cluster_reading {
  std::int64_t down_ms = 0; ///< 0: reachable
  std::string error;
};

/// Everything an epoch's report is made of, read when it closes.
struct epoch_reading {
  epoch_counts counts;
  std::map<kafka::topic_partition, partition_reading> partitions;
  /// Records deleted before they were read, per partition, since the start.
  std::map<kafka::topic_partition, std::int64_t> lost;
  /// The open epoch's admitted ranges, when no report showed them yet.
  const epoch_planner::range_map* admitted = nullptr;
  bool rate_limited = false;
  bool assigned = false; ///< the group assigned this member (maybe nothing)
  cluster_reading source;
  cluster_reading sink;
  /// Dedup's state: rows held and memory used (none without dedup).
  struct state_reading {
    std::int64_t rows = 0;
    std::int64_t memory_bytes = 0;
  };
  std::optional<state_reading> state;
};

/// An epoch's report, waiting for its commit's outcome to set `endOffset`.
struct closed_epoch {
  epoch_progress progress;
  run_status status = run_status::waiting_for_data;
  /// What the group held before the commit, per partition.
  std::map<kafka::topic_partition, std::int64_t> prior_committed;
};

/// Turns what the checkpoint reads at each epoch's end into the progress
/// report: counters as deltas since the last epoch, the status message, and
/// whether an idle epoch is reported at all (a heartbeat every 10 s). Pure:
/// it keeps the baselines, its caller does the reading.
class progress_builder {
public:
  struct identity {
    std::string query_id;
    std::string run_id;
    std::string name;
    std::string source_description;
    std::string sink_description;
  };
  /// An idle epoch is reported at least this often, as a heartbeat.
  static constexpr std::int64_t idle_report_ms = 10000;

  progress_builder(identity id, std::int64_t now_ms);

  /// Closes the epoch at `now_ms` and starts the next. Its report, or
  /// nothing when it was idle and no heartbeat is due (`force`: always).
  std::optional<closed_epoch> close(const epoch_reading& reading, std::int64_t now_ms,
                                    bool force);

  /// The id the next report gets.
  std::int64_t batch_id() const { return batch_id_; }
  /// The numbering continues after a commit's batch id.
  void continue_after(std::int64_t committed_batch_id);
  /// A partition taken away: its input counter starts again when it comes back.
  void forget(const kafka::topic_partition& tp) { consumed_at_start_.erase(tp); }

private:
  identity id_;
  std::int64_t batch_id_ = 0;
  std::int64_t epoch_start_ms_;
  std::int64_t last_report_ms_ = 0;
  run_status last_status_ = run_status::waiting_for_data;
  epoch_counts at_start_;
  std::map<kafka::topic_partition, std::int64_t> consumed_at_start_;
  /// Lost records already reported, per partition.
  std::map<kafka::topic_partition, std::int64_t> lost_reported_;
};

} // namespace sluice
