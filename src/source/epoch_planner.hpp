#pragma once

#include <sluice/topic_partition.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <utility>

namespace sluice {

/// Where one partition stands, as its consumer last reported.
struct partition_position {
  std::int64_t watermark = -1; ///< every offset below is handled
  std::int64_t latest = -1;    ///< the highest high watermark seen
  /// Below the open epoch's limit, the end the partition can read to now (an
  /// open transaction holds its last stable offset there); -1 otherwise.
  std::int64_t stable_end = -1;
};
using position_map = std::map<kafka::topic_partition, partition_position>;

/// Spark's micro-batch rules for a rate-limited or bounded source, with no
/// I/O: which offsets each epoch admits (`maxOffsetsPerTrigger` split in
/// proportion to the backlog, after `minOffsetsPerTrigger`'s wait), when an
/// epoch is handled, and when a bounded run is complete. The checkpoint actor
/// owns one and feeds it the partitions' positions.
class epoch_planner {
public:
  struct rules {
    bool once = false;        ///< trigger once: a single epoch
    bool runs_to_end = false; ///< once or availableNow: no minOffsets wait
    std::optional<std::int64_t> max_offsets;
    std::optional<std::int64_t> min_offsets;
    std::int64_t max_trigger_delay_ms = 0;
    /// A bounded run's end offsets (exclusive); empty: unbounded.
    std::map<kafka::topic_partition, std::int64_t> end_offsets;
  };
  /// An admitted range per partition: [from, limit).
  using range_map =
      std::map<kafka::topic_partition, std::pair<std::int64_t, std::int64_t>>;
  using limit_map = std::map<kafka::topic_partition, std::int64_t>;

  explicit epoch_planner(rules r);

  /// Opens the next epoch: admits each partition's next range and returns
  /// the new limits (what the partitions may read up to), or nothing when
  /// no offset is waiting or minOffsetsPerTrigger's wait holds the epoch.
  /// `cached_latest` is the client's latest known end of a partition, taken
  /// with the reported one.
  std::optional<limit_map>
  open(const position_map& positions, std::int64_t now_ms,
       const std::function<std::int64_t(const kafka::topic_partition&)>& cached_latest);

  /// Every partition handled what the open epoch admitted (a partition held
  /// at its last stable offset by an open transaction counts as handled).
  bool handled(const position_map& positions) const;

  /// Closes a handled epoch: a partition held at its last stable offset is
  /// admitted again from there by the next one.
  void close(const position_map& positions);

  /// A bounded run: every partition of its end offsets is known and reached
  /// its end (a capped `once`, its single epoch's limit).
  bool complete(const position_map& positions) const;

  /// Trigger once: every partition of the run is known, so its single epoch
  /// can be admitted, and it has not been yet.
  bool once_due(const position_map& positions) const;

  /// A revoked partition: its next owner starts from its own commit.
  void forget(const kafka::topic_partition& tp);

  /// Trigger once: the single epoch's limit of a partition, kept across a
  /// revocation so that a partition assigned again reads the same range.
  std::optional<std::int64_t> once_limit(const kafka::topic_partition& tp) const;

  bool is_open() const { return open_; }
  /// The open (or last) epoch's admitted ranges.
  const range_map& ranges() const { return ranges_; }
  /// When the last epoch opened (0: none yet).
  std::int64_t opened_at_ms() const { return last_trigger_ms_; }

private:
  rules rules_;
  bool open_ = false;
  bool once_admitted_ = false;
  /// For maxTriggerDelay; Spark starts it at 0: the first epoch does not
  /// wait for minOffsetsPerTrigger.
  std::int64_t last_trigger_ms_ = 0;
  limit_map once_limits_;
  /// Where the next admission of each partition starts.
  limit_map admitted_end_;
  range_map ranges_;
};

} // namespace sluice
