#pragma once

// The dedup changelog: a compacted topic on the sink's cluster that holds
// every change of the state (the truth; RocksDB is a cache of it).
//
// Record key: `<input topic>/<input partition>/<dedup key>` (topic names
// cannot hold `/`), so compaction keeps the latest entry per partition and
// key. Value: {"offset":N,"eventTime":T}, or null when the entry expired.
// An input partition p writes to changelog partition p mod (changelog
// partitions): the embedded broker creates topics with 4 partitions
// whatever the input has, so several input partitions may share one.

#include "dedup/dedup_table.hpp"

#include <sluice/topic_partition.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

struct rd_kafka_s;

namespace sluice::dedup {

/// The prefix of every changelog key of one input partition.
std::string changelog_prefix(const kafka::topic_partition& input);

/// The changelog partition an input partition writes to.
std::int32_t changelog_partition(std::int32_t input_partition, std::int32_t partitions);

/// Makes sure the changelog topic exists and returns its partition count.
/// A missing topic is created compacted (`cleanup.policy=compact`) with
/// `partitions` partitions; a cluster without CreateTopics (the embedded
/// broker) has `producer` create it on first use, as the cluster likes, with
/// a warning. `client` holds the sink's connection and security properties.
/// Throws fatal_error when the cluster cannot tell within `timeout`.
std::int32_t ensure_changelog(const std::map<std::string, std::string>& client,
                              rd_kafka_s* producer, const std::string& topic,
                              std::int32_t partitions, std::chrono::milliseconds timeout);

/// Where a table's changes go: a changelog partition, and how many the topic
/// has (the table's recorded position counts only in that same log).
struct changelog_log {
  std::string topic;
  std::int32_t partition = 0;
  std::int32_t partitions = 0;

  /// How the table names the log its position counts in.
  std::string identity() const {
    return topic + "/" + std::to_string(partition) + "/" + std::to_string(partitions);
  }
};

/// What a restore did.
struct restore_outcome {
  std::int64_t end = 0;        ///< changelog offset the table now includes
  std::int64_t applied = 0;    ///< changelog records of this partition applied
  std::int64_t unreadable = 0; ///< records of this partition whose value was no sighting
  /// The recorded position was outside the log (below its start: deleted;
  /// past its end: the topic was made anew): the table was rebuilt.
  bool wiped = false;
};

/// Brings `table` up to the changelog: reads `log` from the table's recorded
/// position (or the start) to the end offset seen now, applying the records
/// of `input`. Blocking: run it off the actor scheduler's threads. `client`
/// holds the sink's connection and security properties. Throws fatal_error
/// when the cluster does not answer, or the reading makes no progress, for
/// `timeout`, or when `cancelled` says the restore is no longer wanted (its
/// chain stopped). Nothing is recorded then: the next restore starts over.
restore_outcome restore_from_changelog(const std::map<std::string, std::string>& client,
                                       const changelog_log& log,
                                       const kafka::topic_partition& input,
                                       dedup_table& table,
                                       std::chrono::milliseconds timeout,
                                       const std::function<bool()>& cancelled = {});

/// The sink's properties without the producer-only ones: what a changelog
/// reader needs to reach the same cluster (connection, security, ...).
std::map<std::string, std::string>
reader_properties(const std::map<std::string, std::string>& sink);

} // namespace sluice::dedup
