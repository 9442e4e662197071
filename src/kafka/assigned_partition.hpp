#pragma once

#include <sluice/topic_partition.hpp>

#include <cstdint>

namespace sluice::kafka {

/// A partition the group gave us, and the offset reading starts from
/// (the committed offset, or `startingOffsets` when none is committed).
struct assigned_partition {
  topic_partition tp;
  std::int64_t start_offset = 0;
  std::int64_t log_start = -1; ///< broker's low watermark at assignment
  std::int64_t latest = -1;    ///< broker's high watermark at assignment
  std::int64_t batch_id = -1;  ///< last epoch id kept in the commit metadata
  /// Records deleted by retention before they were read, skipped because
  /// failOnDataLoss is false (the start moved up to the log start).
  std::int64_t lost = 0;
  /// The start is the group's committed offset (not a start option).
  bool from_commit = false;
};

} // namespace sluice::kafka
