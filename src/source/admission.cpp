#include "source/admission.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sluice {

std::map<kafka::topic_partition, std::int64_t>
prorate(const std::map<kafka::topic_partition, backlog_range>& backlog,
        std::optional<std::int64_t> cap) {
  std::map<kafka::topic_partition, std::int64_t> out;
  std::int64_t total = 0;
  constexpr auto most = std::numeric_limits<std::int64_t>::max();
  for (auto& [tp, r] : backlog) {
    auto size = std::max<std::int64_t>(0, r.end - r.begin);
    total = size > most - total ? most : total + size; // saturates, as Spark guards
  }
  for (auto& [tp, r] : backlog) {
    auto size = std::max<std::int64_t>(0, r.end - r.begin);
    if (!cap || total <= *cap) {
      out[tp] = r.begin + size;
      continue;
    }
    // Spark's KafkaMicroBatchStream.rateLimit: the share in double precision.
    auto share = static_cast<double>(*cap) *
                 (static_cast<double>(size) / static_cast<double>(total));
    share = std::min(share < 1 ? std::ceil(share) : std::floor(share),
                     9.0e18); // below 2^63: the cast stays defined
    auto n = static_cast<std::int64_t>(share);
    out[tp] = r.begin + std::min(n, size);
  }
  return out;
}

} // namespace sluice
