#pragma once

#include <sluice/config.hpp>
#include <sluice/record.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// A record the cluster did not take, with the tag it was written with.
struct write_failure {
  std::uint64_t tag = 0;
  std::string topic;
  std::string reason;
  /// The cluster refuses this record for good (too large, invalid): writing
  /// it again cannot help. Otherwise its delivery timed out or the cluster
  /// failed (`message.timeout.ms`).
  bool permanent = false;
  /// The record as it was written, to write again or keep.
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<header> headers;
};

/// What a topic_writer's records became, as of a flush().
struct write_summary {
  std::int64_t written = 0; ///< acknowledged by every in-sync replica
  std::map<std::string, std::int64_t> written_by_topic;
  /// Not written, in the order the cluster reported them; each failure is
  /// reported by one flush() only.
  std::vector<write_failure> failures;
};

/// Writes records to Kafka with the guarantees of a pipeline's sink:
/// idempotent (per-partition order kept across retries, no duplicates from
/// them), acks from every in-sync replica, keys placed as Java clients place
/// them. Not thread-safe: one writer per thread.
class topic_writer {
public:
  /// Checks the options as a pipeline's sink (config_error naming
  /// `sink.kafka.<name>`) and makes the producer; nothing is sent yet.
  explicit topic_writer(sink_options options);
  /// Flushes (see flush()); what it learns is lost: call flush() first.
  ~topic_writer();
  topic_writer(const topic_writer&) = delete;
  topic_writer& operator=(const topic_writer&) = delete;

  /// Queues `rec` (its key, value, headers and timestamp; -1: now) for
  /// `topic`; `tag` comes back with it if it fails (a line number, say).
  /// Waits while librdkafka's queue is full. Throws fatal_error when nothing
  /// can be written any more (an unknown topic, a cluster gone past the
  /// delivery timeout, a fatal producer error).
  void write(std::string_view topic, const record& rec, std::uint64_t tag);

  /// Waits until every record written so far is delivered or failed, and
  /// returns what they became since the last flush(). librdkafka reports a
  /// record by `message.timeout.ms` plus some seconds; the wait gives up
  /// after twice that (at least the timeout plus 30 s) with fatal_error.
  write_summary flush();

  /// Records written and not reported yet.
  std::int64_t in_flight() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace sluice
