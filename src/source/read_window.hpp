#pragma once

#include <sluice/record.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

/// The bytes a record holds against the byte credit.
std::int64_t record_bytes(const record& r);

/// Decides which of the records polled from one partition are issued as the
/// next batch, with no I/O: re-deliveries before the read position and
/// records past the end offset go; records past the open epoch's admission
/// limit are held for a later epoch; a record set librdkafka cannot decode is
/// stepped over one offset at a time (each to the DLQ); a jump over offsets
/// below the log start is data loss; offsets that hold no record
/// (transaction markers, aborted records, a limit inside a hole) are handled
/// without a batch. Owned by the partition's consumer actor, which does the
/// polling, seeking and counting its answers ask for.
class read_window {
public:
  /// Where the partition stands when its records are trimmed.
  struct bounds {
    std::int64_t issued_end = 0; ///< the next offset to read
    /// The open epoch's admission limit (exclusive); the largest int64
    /// without a rate limit.
    std::int64_t limit = 0;
    std::optional<std::int64_t> end_offset; ///< a bounded run stops here
  };

  /// How deleted records are treated.
  struct loss_rules {
    bool fail_on_data_loss = true;
    /// Offsets below this were counted as lost already (by an earlier chain).
    std::int64_t lost_until = -1;
    /// The log's first offset, asked for at the first gap only (I/O).
    std::function<std::int64_t()> log_start;
    /// The partition's name, for the messages.
    std::string partition;
  };

  /// Records deleted before they were read, skipped: [from, to).
  struct lost_range {
    std::int64_t from = 0;
    std::int64_t to = 0;
    std::string what; ///< the message that says so
  };

  /// What the trim came to, besides the records left to issue.
  struct cut {
    /// Bytes of the records moved to the held ones (counted when read again).
    std::size_t bytes_held_back = 0;
    /// A record set that cannot be decoded: read on from here.
    std::optional<std::int64_t> seek_to;
    /// Deleted records skipped (failOnDataLoss false), in order.
    std::vector<lost_range> lost;
    /// Deleted records with failOnDataLoss true: the run fails with this.
    std::optional<std::string> loss_failure;
    /// Offsets [first, second) hold no record and are handled without a
    /// batch, after the records left (if any) are issued.
    std::optional<std::pair<std::int64_t, std::int64_t>> handled;
  };

  /// Moves up to `want` held records into `out` (first read them, in order);
  /// returns their bytes. Nothing when none are held.
  std::size_t take_held(std::vector<record>& out, std::size_t want);

  /// A poll of the queue: librdkafka's end-of-log event, remembered until a
  /// record comes from at or past it.
  void note_poll(std::optional<std::int64_t> end_of_log,
                 const std::vector<record>& polled);

  /// Trims `recs` (in offset order, as read) to the records to issue, in place.
  cut trim(std::vector<record>& recs, const bounds& at, const loss_rules& loss);

  bool holds() const { return !held_.empty(); }
  std::size_t held_count() const { return held_.size(); }
  /// The offset of the last end-of-log event while no record came past it
  /// (with read_committed, the last stable offset); -1 otherwise.
  std::int64_t end_of_log() const { return end_of_log_; }

private:
  std::vector<record> held_;
  /// First offset of a record set librdkafka cannot decode, while stepping over it.
  std::optional<std::int64_t> stepping_;
  std::int64_t end_of_log_ = -1;
};

} // namespace sluice
