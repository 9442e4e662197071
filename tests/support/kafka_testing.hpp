#pragma once

// Test helpers: read whole topics back with a plain librdkafka consumer (not
// Sluice's), read a group's committed offsets, and wait for conditions.

#include <sluice/record.hpp>
#include <sluice/topic_partition.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::testing {

/// A record read back from a topic.
struct consumed {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<header> headers;

  /// The first header with that name, if any.
  std::optional<std::string> header_value(const std::string& name) const;
};

/// Reads every record of `topic` from the beginning up to the current end.
std::vector<consumed> read_topic(const std::string& bootstrap, const std::string& topic);

/// The committed offsets of `group` for every partition of `topic` (-1: none).
std::map<std::int32_t, std::int64_t> committed_offsets(const std::string& bootstrap,
                                                       const std::string& group,
                                                       const std::string& topic);

/// The end offset of every partition of `topic`.
std::map<std::int32_t, std::int64_t> end_offsets(const std::string& bootstrap,
                                                 const std::string& topic);

/// Writes `count` records into one partition, in order, and waits until the
/// broker has them: keys `<partition>-<i>`, values {"n": i} padded with a
/// "pad" string to `value_bytes` when that is larger. Throws on failure.
void produce_to_partition(const std::string& bootstrap, const std::string& topic,
                          std::int32_t partition, int count, std::size_t value_bytes = 0);

/// Writes (key, value) records into one partition, in order, and waits until
/// the broker has them. Throws on failure.
void produce_records(const std::string& bootstrap, const std::string& topic,
                     std::int32_t partition,
                     const std::vector<std::pair<std::string, std::string>>& records);

/// A record with its Kafka timestamp (epoch ms; 0: the producer's clock).
struct timed_record {
  std::string key;
  std::string value;
  std::int64_t timestamp_ms = 0;
};

/// Writes records with their timestamps into one partition, in order, and
/// waits until the broker has them. Throws on failure.
void produce_records(const std::string& bootstrap, const std::string& topic,
                     std::int32_t partition, const std::vector<timed_record>& records);

/// Kafka protocol request keys, for the embedded broker's error injection
/// (librdkafka keeps its own names in a private header).
namespace api_key {
constexpr std::int16_t produce = 0;
constexpr std::int16_t fetch = 1;
constexpr std::int16_t offset_commit = 8;
constexpr std::int16_t offset_fetch = 9;
constexpr std::int16_t init_producer_id = 22;
constexpr std::int16_t end_txn = 26;
} // namespace api_key

/// Timeouts scale with SLUICE_TEST_TIMEOUT_MULTIPLIER (e.g. 3 under sanitizers).
std::chrono::milliseconds scaled(std::chrono::milliseconds base);

/// Polls `cond` every 10 ms until it holds or `timeout` (scaled) passes.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

} // namespace sluice::testing
