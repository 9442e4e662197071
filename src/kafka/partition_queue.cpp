// One partition's queue of fetched records, read one message per call.
#include "kafka/config.hpp"
#include "kafka/consumer.hpp"
#include "kafka/errors.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>

namespace sluice::kafka {

namespace {} // namespace

// -- partition_queue ----------------------------------------------------------

partition_queue::partition_queue(rd_kafka_queue_s* q, bool include_headers)
    : q_(q), include_headers_(include_headers) {
  // Enabled once: librdkafka calls the trampoline under its queue lock, so
  // on_ready() must not touch the queue while holding wake_mutex_.
  rd_kafka_queue_cb_event_enable(q_, trampoline, this);
}

partition_queue::~partition_queue() {
  rd_kafka_queue_cb_event_enable(q_, nullptr, nullptr);
  rd_kafka_queue_destroy(q_);
}

void partition_queue::trampoline(rd_kafka_s*, void* self) {
  auto* q = static_cast<partition_queue*>(self);
  std::lock_guard<std::mutex> guard{q->wake_mutex_};
  if (q->wake_) q->wake_();
}

std::size_t partition_queue::length() const {
  return rd_kafka_queue_length(q_);
}

void partition_queue::on_ready(std::function<void()> wake) {
  std::lock_guard<std::mutex> guard{wake_mutex_};
  wake_ = std::move(wake);
}

poll_result partition_queue::poll(std::vector<record>& out, std::size_t max) {
  // One message per call, never rd_kafka_consume_batch_queue: in librdkafka
  // 2.0.2 a batch that meets a seek, pause, resume or rebalance of its
  // partition (the barrier of a new fetch version) drops the records it had
  // already taken after moving the application position past them, and a
  // resume then fetches from that position: records lost without a trace
  // (2.0.0 Known Issues, fixed in 2.1.0 by #4208). A single pop moves the
  // position only for the record it returns.
  poll_result result;
  out.reserve(out.size() + std::min<std::size_t>(max, 1024));
  while (result.events < max) {
    auto* m = rd_kafka_consume_queue(q_, 0);
    if (!m) break;
    ++result.events;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      result.end_of_log = m->offset;
      rd_kafka_message_destroy(m);
      continue;
    }
    if (m->err && classify(m->err) != error_kind::undecodable) {
      // A partition-level error (a failed fetch...): it carries the fetch
      // offset, but no record was skipped.
      if (!result.error) result.error = rd_kafka_message_errstr(m);
      auto why = denial(
          m->err, "Read",
          "topic `" + std::string(m->rkt ? rd_kafka_topic_name(m->rkt) : "?") + "`");
      if (!why.empty() && !result.denied) result.denied = why;
      rd_kafka_message_destroy(m);
      continue;
    }
    auto& rec = out.emplace_back();
    rec.offset = m->offset;
    if (m->err) {
      // librdkafka skipped a record (or a whole record set) it could not
      // decode and moved past it: the DLQ gets its offset and the reason.
      rec.error = record_error{"consume-error", rd_kafka_message_errstr(m)};
      rd_kafka_message_destroy(m);
      continue;
    }
    rec.timestamp_ms = rd_kafka_message_timestamp(m, nullptr);
    if (m->key) rec.key.emplace(static_cast<const char*>(m->key), m->key_len);
    if (m->payload) rec.value.emplace(static_cast<const char*>(m->payload), m->len);
    result.bytes += m->key_len + m->len;
    rd_kafka_headers_t* hdrs = nullptr;
    if (include_headers_ &&
        rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name;
      const void* value;
      size_t size;
      for (size_t idx = 0; rd_kafka_header_get_all(hdrs, idx, &name, &value, &size) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
           ++idx) {
        auto& h = rec.headers.emplace_back();
        h.name = name;
        if (value) h.value.emplace(static_cast<const char*>(value), size);
        result.bytes += h.name.size() + size;
      }
    }
    rd_kafka_message_destroy(m);
  }
  return result;
}

} // namespace sluice::kafka
