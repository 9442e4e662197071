#include "kafka/prefetch_policy.hpp"

#include "kafka/config.hpp"

#include <algorithm>
#include <string>

namespace sluice::kafka {

source_options with_prefetch_limits(const pipeline_config& cfg, std::size_t partitions) {
  auto src = cfg.source;
  auto& rt = cfg.runtime;
  auto share = std::clamp<std::size_t>(partitions, 1, 64);
  auto kib = std::clamp<std::size_t>(rt.max_in_flight_bytes / 1024 / share, 64, 65536);
  set_default(src.kafka, "queued.max.messages.kbytes", std::to_string(kib));
  // Fewer than a credit's worth starves the chain (measured: a quarter of
  // it halves throughput against the embedded broker); the byte limit
  // above is what bounds memory.
  set_default(
      src.kafka, "queued.min.messages",
      std::to_string(std::min<std::size_t>(rt.max_in_flight_per_partition * (64 / share),
                                           10'000'000))); // librdkafka's maximum
  // One fetch response holds at most this per partition / in all.
  set_default(src.kafka, "fetch.message.max.bytes",
              std::to_string(std::min<std::size_t>(kib * 1024, 1 << 20)));
  set_default(src.kafka, "fetch.max.bytes",
              std::to_string(std::clamp<std::size_t>(rt.max_in_flight_bytes / 2, 1 << 20,
                                                     50u << 20)));
  return src;
}

} // namespace sluice::kafka
