#pragma once

// The dedup stage's work for one input partition, apart from the actor that
// runs it: keys taken from the records' fields, the window rules applied to a
// batch against the partition's table, expiry, and the changes the sink
// writes to the changelog with the batch. Blocking (RocksDB, and a restore
// from the changelog when it opens): run it off the actor scheduler.

#include "dedup/dedup_table.hpp"
#include "state/state_store.hpp"

#include <sluice/config.hpp>
#include <sluice/record.hpp>
#include <sluice/topic_partition.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>

namespace sluice::dedup {

/// What one batch did to the state.
struct batch_effect {
  std::int64_t updated = 0;    ///< sightings stored (first, leftover, renewed)
  std::int64_t removed = 0;    ///< expired sightings purged
  std::int64_t duplicates = 0; ///< records marked as dropped duplicates
  /// Records marked late (dedup.lateRecords says what became of them).
  std::int64_t late = 0;
};

/// Where the changelog is, for a partition's restore and writes.
struct changelog_target {
  std::string topic; ///< empty: no changelog
  std::int32_t partitions = 0;
  std::map<std::string, std::string> client; ///< reader properties
  std::chrono::milliseconds timeout{60000};
};

class partition_dedup {
public:
  /// Takes the partition's table (waiting, at most the changelog timeout,
  /// for a previous user of it to finish: a restarted chain's old stage) and,
  /// with a changelog, restores it from there first (blocking). Throws
  /// fatal_error when either fails.
  /// `cancelled` says the chain stopped: a restore then gives up.
  partition_dedup(const dedup_options& options, state::store& store,
                  kafka::topic_partition input, const changelog_target& changelog,
                  std::function<bool()> cancelled = {});

  /// Marks the batch's duplicates dropped, sends records without a usable
  /// key or event time to the DLQ, purges what expired, and attaches the
  /// changes for the changelog to the batch.
  batch_effect process(record_batch& batch);

  /// Records how far the changelog holds this partition's changes, as the
  /// deliveries seen so far say, so that the next open reads less.
  ~partition_dedup();
  partition_dedup(const partition_dedup&) = delete;
  partition_dedup& operator=(const partition_dedup&) = delete;

  std::int64_t rows() const noexcept { return table_.rows(); }
  /// Changelog records of this partition applied when it opened.
  std::int64_t restored() const noexcept { return restored_; }

private:
  const dedup_options& options_;
  kafka::topic_partition input_;
  changelog_target changelog_;
  std::int32_t changelog_partition_ = 0;
  std::string changelog_prefix_;
  std::string changelog_identity_;
  state::partition_table::lease lease_;
  dedup_table table_;
  std::int64_t restored_ = 0;
  /// Event-time progress at the last purge.
  std::int64_t purged_at_ = std::numeric_limits<std::int64_t>::min();
  /// Highest changelog offset the sink saw delivered for this partition,
  /// and the position last recorded from it.
  std::shared_ptr<std::atomic<std::int64_t>> delivered_;
  std::int64_t recorded_ = -1;
  std::vector<keyed_sighting> scratch_;
  std::vector<std::size_t> positions_;
  std::vector<change> changes_;
  bool warned_ahead_ = false;
  bool warned_late_ = false;

  void record_position();
};

} // namespace sluice::dedup
