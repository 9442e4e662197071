#pragma once

#include <cstdint>

namespace sluice {

/// What became of records: the counts a batch's acknowledgement carries, the
/// run adds up and an epoch's report shows as deltas.
struct row_counts {
  std::int64_t outputs = 0;
  std::int64_t dlq = 0;
  std::int64_t dropped = 0;    ///< handled on purpose without a write (tombstones)
  std::int64_t duplicates = 0; ///< of `dropped`: duplicates the dedup stage dropped
  std::int64_t late = 0;       ///< passed by the dedup stage as late (written or DLQ)

  row_counts& operator+=(const row_counts& o) {
    outputs += o.outputs;
    dlq += o.dlq;
    dropped += o.dropped;
    duplicates += o.duplicates;
    late += o.late;
    return *this;
  }
  friend row_counts operator-(row_counts a, const row_counts& b) {
    a.outputs -= b.outputs;
    a.dlq -= b.dlq;
    a.dropped -= b.dropped;
    a.duplicates -= b.duplicates;
    a.late -= b.late;
    return a;
  }
};

} // namespace sluice
