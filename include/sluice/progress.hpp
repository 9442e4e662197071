#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice {

/// One partition's share of an epoch.
struct partition_progress {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t start_offset = -1;  ///< watermark when the epoch began
  std::int64_t end_offset = -1;    ///< offset the group holds after the epoch's commit
  std::int64_t latest_offset = -1; ///< broker's high watermark, as last seen
  std::int64_t num_input_rows = 0;
  std::int64_t in_flight = 0;
  std::int64_t num_lost_rows =
      0; ///< deleted before they were read (failOnDataLoss false)
  /// With a rate limit: the end of the range the epoch admitted (-1: none).
  std::int64_t admitted_offset = -1;
  std::int64_t admitted_rows = 0;
};

/// A stateful operator's share of an epoch, as Spark's StateOperatorProgress.
struct state_operator_progress {
  std::string name = "dedupe";
  std::int64_t rows_total = 0;   ///< keys held (open partitions)
  std::int64_t rows_updated = 0; ///< stored in the epoch
  std::int64_t rows_removed = 0; ///< expired and purged in the epoch
  std::int64_t memory_used_bytes = 0;
  std::int64_t dropped_duplicates = 0; ///< handled in the epoch
  /// Late records handled in the epoch (dedup.lateRecords said what became of them).
  std::int64_t late_rows = 0;
};

/// What one epoch did: printed as one JSON line with Spark's
/// StreamingQueryProgress field names, plus Sluice's own counters.
struct epoch_progress {
  std::string id;     ///< stable across restarts of the same pipeline and group
  std::string run_id; ///< new for every run
  std::string name;
  std::int64_t batch_id = 0;
  std::int64_t timestamp_ms = 0; ///< epoch start, wall clock
  std::int64_t duration_ms = 0;
  std::int64_t num_input_rows = 0;
  std::int64_t num_processed_rows = 0; ///< outputs + DLQ rows acknowledged
  std::int64_t num_output_rows = 0;
  std::int64_t num_dlq_rows = 0;
  std::int64_t num_dropped_rows = 0; ///< handled on purpose without a write
  std::int64_t num_lost_rows = 0;    ///< deleted before they were read, skipped
  /// The run's state in words, like Spark's status message ("Waiting for
  /// data to arrive", or why the cluster cannot be reached).
  std::string message;
  /// "at-least-once" or "exactly-once" (the pipeline's `guarantee`).
  std::string guarantee = "at-least-once";
  /// Exactly-once: Kafka transactions committed and aborted since the last
  /// report (-1 for at-least-once, which runs none).
  std::int64_t transactions_committed = -1;
  std::int64_t transactions_aborted = -1;
  std::string source_description;
  std::string sink_description;
  std::vector<partition_progress> partitions;
  std::vector<state_operator_progress> state_operators;
};

/// Renders the progress line (single line, no trailing newline).
std::string to_json(const epoch_progress& p);

/// The wall clock, in epoch milliseconds.
std::int64_t wall_clock_ms();

/// Formats epoch milliseconds as ISO-8601 UTC with milliseconds, like Spark.
std::string iso8601_utc(std::int64_t epoch_ms);

/// A random RFC 4122 version-4 UUID.
std::string random_uuid();

/// A UUID derived from `seed`, so the same pipeline keeps the same query id.
std::string stable_uuid(const std::string& seed);

} // namespace sluice
