#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

namespace sluice {

/// Tracks the offset ranges of one partition that were read and which of them
/// are fully handled, and yields the contiguous watermark: every offset below
/// it is handled, so it is the offset to commit. Ranges are acknowledged in
/// any order (outputs of different batches are delivered out of order), but
/// the watermark only moves over an unbroken run of acknowledged ranges.
/// Owned by one partition's consumer actor.
class offset_watermark {
public:
  explicit offset_watermark(std::int64_t start) : watermark_(start), issued_end_(start) {}

  /// Records that [begin, end) was read and sent down the chain. Ranges are
  /// issued in order; `begin` must equal the previous range's end, except that
  /// the first range may start after `start` (a gap that is already handled).
  void issue(std::int64_t begin, std::int64_t end);

  /// Marks the range that starts at `begin` as handled and moves the
  /// watermark as far as it can. Returns false, changing nothing, for an
  /// unknown range (e.g. one issued before a restart, or acknowledged twice).
  bool ack(std::int64_t begin);

  /// Every offset below this is handled: the offset to commit.
  std::int64_t watermark() const noexcept { return watermark_; }

  /// End of the last issued range: the next offset to read.
  std::int64_t issued_end() const noexcept { return issued_end_; }

  /// Ranges issued and not yet passed by the watermark.
  std::size_t pending() const noexcept { return ranges_.size(); }

private:
  struct range {
    std::int64_t end;
    bool acked;
  };
  std::int64_t watermark_;
  std::int64_t issued_end_;
  std::map<std::int64_t, range> ranges_;
};

} // namespace sluice
