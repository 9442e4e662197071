#pragma once

#include <sluice/topic_partition.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace sluice::guarantee {

/// Exactly-once: outputs the broker refused for good (too large for the
/// topic, invalid for it), by source partition and offset, with the reason.
/// The refusal aborted their transaction; read again, they go to the DLQ.
class refused_outputs {
public:
  void add(const kafka::topic_partition& tp, std::int64_t offset, std::string reason) {
    std::lock_guard<std::mutex> guard{mutex_};
    refused_[{tp, offset}] = std::move(reason);
    any_ = true;
  }
  /// The reason `tp`@`offset` was refused, if it was. Kept for the run: the
  /// transaction its DLQ record goes in may be aborted too.
  std::optional<std::string> find(const std::string& topic, std::int32_t partition,
                                  std::int64_t offset) {
    if (!any_.load(std::memory_order_relaxed)) return std::nullopt;
    std::lock_guard<std::mutex> guard{mutex_};
    auto it = refused_.find({{topic, partition}, offset});
    if (it == refused_.end()) return std::nullopt;
    return it->second;
  }

private:
  std::mutex mutex_;
  std::atomic<bool> any_{false}; ///< a read without the lock, per record
  std::map<std::pair<kafka::topic_partition, std::int64_t>, std::string> refused_;
};

} // namespace sluice::guarantee
