#include "runtime/kafka/producer.hpp"

#include "runtime/errors.hpp"
#include "runtime/kafka/config.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

namespace sluice::kafka {

void delivery_group::report(bool ok, const char* why) {
  if (ok) {
    delivered_.fetch_add(1);
  } else {
    std::lock_guard<std::mutex> guard{error_mutex_};
    if (!error_) error_ = why;
  }
  release();
}

void delivery_group::release() {
  if (remaining_.fetch_sub(1) == 1) {
    if (!abandoned_.load()) on_done_(*this);
    delete this;
  }
}

namespace {

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  if (auto* group = static_cast<delivery_group*>(msg->_private))
    group->report(msg->err == RD_KAFKA_RESP_ERR_NO_ERROR, rd_kafka_err2str(msg->err));
}

} // namespace

producer::producer(std::map<std::string, std::string> props,
                   const std::string& option_prefix) {
  // Idempotence keeps per-partition order across internal retries; murmur2
  // places keys on the same partitions as Java clients do.
  set_default(props, "enable.idempotence", "true");
  set_default(props, "partitioner", "murmur2_random");
  set_default(props, "queue.buffering.max.messages", "1000000");
  set_default(props, "log_level", "4");
  auto* conf = make_conf(props, option_prefix);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  char err[512];
  rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    throw config_error(option_prefix + ".kafka",
                       std::string("cannot create the producer: ") + err);
  }
  poller_ = std::thread([this] {
    while (!stop_.load())
      rd_kafka_poll(rk_, 50);
  });
}

producer::~producer() {
  flush(std::chrono::seconds(30));
  stop_.store(true);
  poller_.join();
  rd_kafka_poll(rk_, 0);
  rd_kafka_destroy(rk_);
}

producer::send_result producer::send(delivery_group* group, std::string_view topic,
                                     const std::optional<std::string>& key,
                                     std::string_view value,
                                     const std::vector<header>& headers,
                                     std::int64_t timestamp_ms) {
  rd_kafka_headers_t* hdrs = nullptr;
  if (!headers.empty()) {
    hdrs = rd_kafka_headers_new(headers.size());
    for (auto& h : headers)
      rd_kafka_header_add(hdrs, h.name.data(), static_cast<ssize_t>(h.name.size()),
                          h.value ? h.value->data() : nullptr,
                          h.value ? static_cast<ssize_t>(h.value->size()) : 0);
  }
  group->expect_one();
  auto err = rd_kafka_producev(
      rk_, RD_KAFKA_V_TOPIC(std::string(topic).c_str()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY((key ? key->data() : nullptr), (key ? key->size() : 0)),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
      RD_KAFKA_V_TIMESTAMP(timestamp_ms > 0 ? timestamp_ms : 0), RD_KAFKA_V_HEADERS(hdrs),
      RD_KAFKA_V_OPAQUE(group), RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return send_result::queued;
  group->cancel_one();
  if (hdrs) rd_kafka_headers_destroy(hdrs); // not taken over on failure
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return send_result::queue_full;
  throw fatal_error("cannot produce to topic `" + std::string(topic) +
                    "`: " + rd_kafka_err2str(err));
}

bool producer::flush(std::chrono::milliseconds timeout) {
  return rd_kafka_flush(rk_, static_cast<int>(timeout.count())) ==
         RD_KAFKA_RESP_ERR_NO_ERROR;
}

} // namespace sluice::kafka

namespace sluice::kafka {

void producer::purge() {
  rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  flush(std::chrono::seconds(5));
}

} // namespace sluice::kafka
