#include "runtime/admission.hpp"

#include <cmath>

namespace sluice {

std::map<kafka::topic_partition, std::int64_t>
prorate(const std::map<kafka::topic_partition, backlog_range>& backlog,
        std::optional<std::int64_t> cap) {
  std::map<kafka::topic_partition, std::int64_t> out;
  std::int64_t total = 0;
  for (auto& [tp, r] : backlog)
    total += std::max<std::int64_t>(0, r.end - r.begin);
  for (auto& [tp, r] : backlog) {
    auto size = std::max<std::int64_t>(0, r.end - r.begin);
    if (!cap || total <= *cap) {
      out[tp] = r.begin + size;
      continue;
    }
    // Spark's KafkaMicroBatchStream.rateLimit: the share in double precision.
    auto share = static_cast<double>(*cap) *
                 (static_cast<double>(size) / static_cast<double>(total));
    auto n = static_cast<std::int64_t>(share < 1 ? std::ceil(share) : std::floor(share));
    out[tp] = r.begin + std::min(n, size);
  }
  return out;
}

} // namespace sluice
