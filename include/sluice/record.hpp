#pragma once

#include <sluice/row.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// One Kafka record header. Values may be binary; a null value is kept apart
/// from an empty one.
struct header {
  std::string name;
  std::optional<std::string> value;
};

/// Why a record could not be processed; travels with it to the dead-letter queue.
struct record_error {
  std::string type;    ///< machine-readable class, e.g. `missing_field`
  std::string message; ///< what was wrong, for a human
};

/// One record as it moves through a partition chain. Its source coordinates
/// (batch topic and partition, `offset`) stay with it to the sink, so every
/// output can be traced back to its input.
struct record {
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = -1;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<header> headers;

  /// Filled by the parser: the fields decoded from `value` (with a
  /// `parse.schema`, the schema's fields only). Read and change them here.
  row fields;
  /// Set by any stage that rejects the record: it goes to the DLQ instead.
  std::optional<record_error> error;
  /// Set by the router: the topic the record is written to.
  std::string target_topic;
  /// Set by a stage that drops the record on purpose (a tombstone with
  /// `parse.tombstones` drop): handled, counted, not written.
  bool dropped = false;
  /// Set by the dedup stage with `dropped`: a duplicate within the window.
  bool duplicate = false;
  /// Set by the dedup stage: further behind its partition's event-time
  /// progress than sightings are kept (`dedup.lateRecords` says whether it
  /// passes unchecked, is dropped, or goes to the DLQ as `late`).
  bool late = false;
  /// Set for the records a delivering actor stage answered
  /// (`actor_stage::delivers`): written by it, counted as outputs, not
  /// routed nor sent to the sink.
  bool delivered = false;
};

/// Sluice's own bookkeeping of a batch (its credit, the state changes the
/// sink writes with it): not part of the API.
struct batch_bookkeeping;

/// A batch of consecutive records of one partition: the unit that travels
/// between actors and that the checkpoint acknowledges. It covers the source
/// offsets [`begin_offset`, `end_offset`), which may contain more offsets than
/// records (compaction and transaction markers leave gaps).
struct record_batch {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t begin_offset = 0;
  std::int64_t end_offset = 0;
  std::vector<record> records;
  /// Sluice's, carried with the batch: a stage leaves it as it is (a stage
  /// that answers with a new batch gets it back, with the coordinates).
  std::shared_ptr<batch_bookkeeping> bookkeeping;
};

/// Batches are handed from stage to stage by pointer; one stage owns it at a time.
using batch_ptr = std::shared_ptr<record_batch>;

/// Appends a record's fields as compact JSON on one line, as the
/// sink writes a record with a `parse.schema`: doubles in their shortest
/// round-trip form (67.27, 5.0).
void write_fields(const record& rec, std::string& out);

/// Milliseconds since the epoch of a timestamp as a `timestamp` field of
/// `parse.schema` accepts it (ISO-8601: `2024-05-01`, `2024-05-01T12:00:00Z`,
/// with a fraction or an offset; without a zone, UTC); nullopt for any other text.
std::optional<std::int64_t> parse_timestamp_ms(std::string_view text);

} // namespace sluice
