#pragma once

#include <sluice/record.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

/// A change of a stage's state, written by the sink to a changelog topic
/// with the batch that caused it (one acknowledgement covers both). A null
/// value deletes the key (compaction then forgets it).
struct state_change {
  std::string topic;
  std::int32_t partition = 0;
  std::string key;
  std::optional<std::string> value;
};

/// What travels with a batch for Sluice alone: the credit it holds and the
/// state changes to write with it. Kept out of the public record_batch so
/// that a stage sees records and coordinates only.
struct batch_bookkeeping {
  /// Key, value and header bytes of the records: what the byte credit counts.
  std::int64_t bytes = 0;
  /// Records the consumer read into it: what the credit counts, whatever a
  /// user stage does to `records`.
  std::int64_t issued_records = 0;
  /// State changes to write with the records (dedup's changelog).
  std::vector<state_change> changes;
  /// Where the sink reports the highest changelog offset delivered for this
  /// partition (max of all batches), so that the stage can record how far
  /// its local state is known to match the changelog.
  std::shared_ptr<std::atomic<std::int64_t>> changes_delivered;
};

/// The batch's bookkeeping, made empty when it has none (a batch built by a
/// test or a stage).
inline batch_bookkeeping& bookkeeping_of(record_batch& batch) {
  if (!batch.bookkeeping) batch.bookkeeping = std::make_shared<batch_bookkeeping>();
  return *batch.bookkeeping;
}

} // namespace sluice
