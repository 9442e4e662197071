#include "kafka/producer.hpp"

#include "core/log.hpp"
#include "kafka/config.hpp"

#include <sluice/errors.hpp>

#include <librdkafka/rdkafka.h>

#include <cstdio>

namespace sluice::kafka {

void* delivery_group::expect_one(std::size_t index, bool track_offset) {
  remaining_.fetch_add(1);
  return &slots_.emplace_back(slot{this, index, track_offset});
}

void delivery_group::report(void* opaque, const void* message) {
  auto* s = static_cast<slot*>(opaque);
  auto* g = s->group;
  auto* m = static_cast<const rd_kafka_message_t*>(message);
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    g->delivered_.fetch_add(1);
    if (s->track_offset) {
      auto seen = g->tracked_offset_.load();
      while (m->offset > seen &&
             !g->tracked_offset_.compare_exchange_weak(seen, m->offset)) {
      }
    }
  } else {
    delivery_failure f;
    f.index = s->index;
    f.topic = rd_kafka_topic_name(m->rkt);
    f.reason = denial(m->err, "Write", "topic `" + f.topic + "`");
    f.denied = !f.reason.empty();
    if (f.reason.empty()) f.reason = rd_kafka_err2str(m->err);
    f.permanent = is_permanent_record_error(m->err);
    if (m->key) f.key.emplace(static_cast<const char*>(m->key), m->key_len);
    if (m->payload) f.value.emplace(static_cast<const char*>(m->payload), m->len);
    f.timestamp_ms = rd_kafka_message_timestamp(m, nullptr);
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name;
      const void* value;
      size_t size;
      for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == 0;
           ++i) {
        auto& h = f.headers.emplace_back();
        h.name = name;
        if (value) h.value.emplace(static_cast<const char*>(value), size);
      }
    }
    std::lock_guard<std::mutex> guard{g->failures_mutex_};
    g->failures_.push_back(std::move(f));
  }
  g->release();
}

void delivery_group::release() {
  if (remaining_.fetch_sub(1) == 1) {
    on_done_(*this);
    delete this;
  }
}

bool is_permanent_record_error(int err) {
  switch (static_cast<rd_kafka_resp_err_t>(err)) {
  case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_INVALID_RECORD:
  case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_INVALID_MSG:
  case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
  case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    return true;
  default:
    return false;
  }
}

namespace {

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
    static_cast<cluster_health*>(opaque)->mark_up();
  if (msg->_private) delivery_group::report(msg->_private, msg);
}

void on_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto code = static_cast<rd_kafka_resp_err_t>(err);
  auto* health = static_cast<cluster_health*>(opaque);
  if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || code == RD_KAFKA_RESP_ERR__RESOLVE)
    health->mark_down(reason);
  else if (code != RD_KAFKA_RESP_ERR__FATAL)
    health->note_broker_error(reason);
  sluice::logger().warn("Kafka producer: {}", reason);
}

/// Keeps OpenSSL's verdict, and says which it was (librdkafka's own message
/// is the same for an unknown CA and a hostname mismatch).
int on_certificate(rd_kafka_t*, const char* broker, int32_t, int* x509_error, int depth,
                   const char*, size_t, char* errstr, size_t errstr_size, void* opaque) {
  if (*x509_error == 0) return 1;
  auto why = describe_certificate_error(*x509_error, depth, broker);
  std::snprintf(errstr, errstr_size, "%s", why.c_str());
  static_cast<cluster_health*>(opaque)->note_certificate_error(why);
  return 0;
}

} // namespace

std::map<std::string, std::string>
producer_properties(std::map<std::string, std::string> props) {
  // Idempotence keeps per-partition order across internal retries; murmur2
  // places keys on the same partitions as Java clients do.
  set_default(props, "enable.idempotence", "true");
  set_default(props, "partitioner", "murmur2_random");
  set_default(props, "queue.buffering.max.messages", "1000000");
  set_default(props, "log_level", "4");
  return props;
}

producer::producer(std::map<std::string, std::string> props,
                   const std::string& option_prefix) {
  auto all = producer_properties(std::move(props));
  auto* conf = make_conf(all, option_prefix);
  if (verifies_certificates(all))
    rd_kafka_conf_set_ssl_cert_verify_cb(conf, on_certificate);
  char value[64];
  size_t size = sizeof value;
  if (rd_kafka_conf_get(conf, "message.timeout.ms", value, &size) == RD_KAFKA_CONF_OK)
    delivery_timeout_ = std::chrono::milliseconds(std::stoll(value));
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_opaque(conf, &health_);
  char err[512];
  rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    throw config_error(option_prefix + ".kafka",
                       std::string("cannot create the producer: ") + err);
  }
  poller_ = std::thread([this] {
    auto last_probe = cluster_health::clock::now();
    while (!stop_.load()) {
      rd_kafka_poll(rk_, 50);
      // librdkafka says when every broker is down, never when one is back.
      auto now = cluster_health::clock::now();
      if (health_.down() && now - last_probe >= std::chrono::seconds(1)) {
        last_probe = now;
        const rd_kafka_metadata_t* md = nullptr;
        if (rd_kafka_metadata(rk_, 0, nullptr, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          rd_kafka_metadata_destroy(md);
          health_.mark_up();
        }
      }
    }
  });
}

producer::~producer() {
  flush(std::chrono::seconds(30));
  stop_.store(true);
  poller_.join();
  rd_kafka_poll(rk_, 0);
  for (auto& [name, rkt] : topics_)
    rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk_);
}

rd_kafka_topic_s* producer::topic(std::string_view name) {
  std::lock_guard<std::mutex> guard{topics_mutex_};
  auto it = topics_.find(name);
  if (it != topics_.end()) return it->second;
  auto* rkt = rd_kafka_topic_new(rk_, std::string(name).c_str(), nullptr);
  if (!rkt)
    throw fatal_error("cannot use topic `" + std::string(name) +
                      "`: " + rd_kafka_err2str(rd_kafka_last_error()));
  topics_.emplace(std::string(name), rkt);
  return rkt;
}

producer::send_result
producer::send(delivery_group* group, std::size_t index, rd_kafka_topic_s* topic,
               const std::optional<std::string>& key, std::string_view value,
               const std::vector<header>& headers, std::int64_t timestamp_ms) {
  rd_kafka_headers_t* hdrs = nullptr;
  if (!headers.empty()) {
    hdrs = rd_kafka_headers_new(headers.size());
    for (auto& h : headers)
      rd_kafka_header_add(hdrs, h.name.data(), static_cast<ssize_t>(h.name.size()),
                          h.value ? h.value->data() : nullptr,
                          h.value ? static_cast<ssize_t>(h.value->size()) : 0);
  }
  auto* opaque = group->expect_one(index);
  auto err = rd_kafka_producev(
      rk_, RD_KAFKA_V_RKT(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY((key ? key->data() : nullptr), (key ? key->size() : 0)),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
      RD_KAFKA_V_TIMESTAMP(timestamp_ms > 0 ? timestamp_ms : 0), RD_KAFKA_V_HEADERS(hdrs),
      RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return send_result::queued;
  group->cancel_one();
  if (hdrs) rd_kafka_headers_destroy(hdrs); // not taken over on failure
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return send_result::queue_full;
  if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) return send_result::too_large;
  throw fatal_error("cannot produce to topic `" +
                    std::string(rd_kafka_topic_name(topic)) +
                    "`: " + rd_kafka_err2str(err));
}

producer::send_result
producer::send_to_partition(delivery_group* group, std::size_t index,
                            rd_kafka_topic_s* topic, std::int32_t partition,
                            const std::string& key,
                            const std::optional<std::string>& value) {
  auto* opaque = group->expect_one(index, true);
  // A null payload is a tombstone (the macro casts its arguments: no ?: in it).
  void* payload = value ? const_cast<char*>(value->data()) : nullptr;
  std::size_t size = value ? value->size() : 0;
  auto err = rd_kafka_producev(
      rk_, RD_KAFKA_V_RKT(topic), RD_KAFKA_V_PARTITION(partition),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key.data(), key.size()),
      RD_KAFKA_V_VALUE(payload, size), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return send_result::queued;
  group->cancel_one();
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return send_result::queue_full;
  if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) return send_result::too_large;
  throw fatal_error("cannot produce to topic `" +
                    std::string(rd_kafka_topic_name(topic)) +
                    "`: " + rd_kafka_err2str(err));
}

bool producer::flush(std::chrono::milliseconds timeout) {
  return rd_kafka_flush(rk_, static_cast<int>(timeout.count())) ==
         RD_KAFKA_RESP_ERR_NO_ERROR;
}

void producer::purge() {
  rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  flush(std::chrono::seconds(5));
}

} // namespace sluice::kafka
