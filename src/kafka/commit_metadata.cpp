#include "kafka/commit_metadata.hpp"

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace sluice::kafka {

namespace {
constexpr std::string_view batch_id_key = "sluice.batchId=";
}

tp_list* commit_list(const offset_map& offsets, std::int64_t batch_id) {
  auto* l = rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size()));
  auto meta = std::string(batch_id_key) + std::to_string(batch_id);
  for (auto& [tp, off] : offsets) {
    auto* e = rd_kafka_topic_partition_list_add(l, tp.topic.c_str(), tp.partition);
    e->offset = off;
    if (batch_id >= 0) {
      // Freed by librdkafka with the list.
      e->metadata = std::malloc(meta.size());
      std::memcpy(e->metadata, meta.data(), meta.size());
      e->metadata_size = meta.size();
    }
  }
  return l;
}

std::int64_t batch_id_of(const rd_kafka_topic_partition_t& e) {
  if (!e.metadata || e.metadata_size <= batch_id_key.size()) return -1;
  std::string_view meta(static_cast<const char*>(e.metadata), e.metadata_size);
  if (!meta.starts_with(batch_id_key)) return -1;
  try {
    return std::stoll(std::string(meta.substr(batch_id_key.size())));
  } catch (...) {
    return -1;
  }
}

} // namespace sluice::kafka
