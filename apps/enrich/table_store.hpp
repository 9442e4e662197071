#pragma once

// The table of enrichment (`sluice enrich`): the latest value of each key of
// a compacted topic, in RocksDB, with how far each partition was read, so
// that a restart goes on from there (and a lost directory is read again
// from the topic's start).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::enrich {

/// One change of the table: a value, or a delete (a tombstone).
struct table_change {
  std::string key;
  std::optional<std::string> value;
};

class table_store {
public:
  /// Opens (or makes) the store in `dir`; throws std::runtime_error naming it.
  explicit table_store(const std::string& dir);
  ~table_store();
  table_store(const table_store&) = delete;
  table_store& operator=(const table_store&) = delete;

  /// Applies a batch of one partition's changes, in order, and records that
  /// the partition was read up to `next_offset`, atomically.
  void apply(std::int32_t partition, const std::vector<table_change>& changes,
             std::int64_t next_offset);

  /// Ties the store to the topic it keeps: the first call records it; a
  /// later one with another topic throws std::runtime_error (a directory
  /// reused for another table would join with its stale rows).
  void bind_topic(const std::string& topic);

  /// The latest value of `key`; nullopt when the table has none.
  std::optional<std::string> get(std::string_view key) const;

  /// The next offset to read of each partition read so far.
  std::map<std::int32_t, std::int64_t> offsets() const;

  /// Keys held (RocksDB's estimate).
  std::int64_t estimated_keys() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace sluice::enrich
