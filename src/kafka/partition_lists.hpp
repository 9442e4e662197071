#pragma once

// librdkafka partition lists as the consumer's files use them (internal).

#include <sluice/topic_partition.hpp>

#include <librdkafka/rdkafka.h>

#include <chrono>

namespace sluice::kafka {

using tp_list = rd_kafka_topic_partition_list_t;

/// Destroys a list when it goes out of scope.
struct list_guard {
  tp_list* list;
  ~list_guard() { rd_kafka_topic_partition_list_destroy(list); }
};

/// A list of one partition, at `offset`.
inline tp_list* one(const topic_partition& tp,
                    std::int64_t offset = RD_KAFKA_OFFSET_INVALID) {
  auto* l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, tp.topic.c_str(), tp.partition)->offset = offset;
  return l;
}

/// Kafka's own topics, which a pattern never matches.
constexpr const char* internal_topics_pattern =
    "^(__consumer_offsets|__transaction_state)$";

} // namespace sluice::kafka
