#pragma once

#include <sluice/topic_partition.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>

namespace sluice {

/// What one partition has not been admitted yet: offsets [begin, end).
struct backlog_range {
  std::int64_t begin = 0;
  std::int64_t end = 0;
};

/// Spark's rate limit (`maxOffsetsPerTrigger`): an epoch admits at most `cap`
/// offsets, split over the partitions in proportion to their backlog. A share
/// under one offset is rounded up (no partition starves), others down. Without
/// a cap, or when the backlog fits, every partition is admitted to its end.
/// Returns each partition's new admission end.
std::map<kafka::topic_partition, std::int64_t>
prorate(const std::map<kafka::topic_partition, backlog_range>& backlog,
        std::optional<std::int64_t> cap);

/// How far each partition may read in the open epoch, when the source has a
/// rate limit (`maxOffsetsPerTrigger`, `minOffsetsPerTrigger`). Written by the
/// checkpoint when it opens an epoch, read by the partition consumers before
/// each poll; without a rate limit it is disabled and every read is admitted.
class admission_gate {
public:
  explicit admission_gate(bool enabled) : enabled_(enabled) {}

  bool enabled() const { return enabled_; }

  /// The offset a partition may read up to (exclusive); -1 when nothing has
  /// been admitted for it yet.
  std::int64_t limit(const kafka::topic_partition& tp) const {
    std::lock_guard<std::mutex> guard{mutex_};
    auto it = limits_.find(tp);
    return it == limits_.end() ? -1 : it->second;
  }

  void admit(const std::map<kafka::topic_partition, std::int64_t>& limits) {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& [tp, until] : limits)
      limits_[tp] = until;
  }

  /// A revoked partition: whoever owns it next starts from its own commit.
  void forget(const kafka::topic_partition& tp) {
    std::lock_guard<std::mutex> guard{mutex_};
    limits_.erase(tp);
  }

private:
  const bool enabled_;
  mutable std::mutex mutex_;
  std::map<kafka::topic_partition, std::int64_t> limits_;
};

} // namespace sluice
