#include "tests/support/kafka_testing.hpp"

#include "kafka/config.hpp"

#include <librdkafka/rdkafka.h>

#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace sluice::testing {

namespace {

rd_kafka_t* make_consumer(const std::string& bootstrap, const std::string& group) {
  auto* conf = kafka::make_conf({{"bootstrap.servers", bootstrap},
                                 {"group.id", group},
                                 {"enable.auto.commit", "false"},
                                 {"log_level", "3"}},
                                "test");
  char err[512];
  auto* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) throw std::runtime_error(err);
  return rk;
}

int partition_count(rd_kafka_t* rk, const std::string& topic) {
  auto* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  auto err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
  rd_kafka_topic_destroy(rkt);
  if (err)
    throw std::runtime_error("metadata of " + topic + ": " + rd_kafka_err2str(err));
  int n = md->topic_cnt > 0 ? md->topics[0].partition_cnt : 0;
  rd_kafka_metadata_destroy(md);
  return n;
}

} // namespace

std::optional<std::string> consumed::header_value(const std::string& name) const {
  for (auto& h : headers)
    if (h.name == name) return h.value;
  return std::nullopt;
}

std::vector<consumed> read_topic(const std::string& bootstrap, const std::string& topic) {
  auto* rk = make_consumer(bootstrap, "sluice-test-reader");
  std::vector<consumed> out;
  int n = partition_count(rk, topic);
  auto* parts = rd_kafka_topic_partition_list_new(n);
  std::map<std::int32_t, std::int64_t> ends;
  for (int p = 0; p < n; ++p) {
    int64_t lo = 0, hi = 0;
    rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 10000);
    if (hi > lo) {
      ends[p] = hi;
      rd_kafka_topic_partition_list_add(parts, topic.c_str(), p)->offset = lo;
    }
  }
  rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  auto deadline = std::chrono::steady_clock::now() + scaled(std::chrono::seconds(60));
  while (!ends.empty() && std::chrono::steady_clock::now() < deadline) {
    auto* m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (!m->err) {
      auto& c = out.emplace_back();
      c.partition = m->partition;
      c.offset = m->offset;
      if (m->key) c.key.emplace(static_cast<const char*>(m->key), m->key_len);
      if (m->payload) c.value.emplace(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* value;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i)
          c.headers.push_back({name, value ? std::optional<std::string>(std::string(
                                                 static_cast<const char*>(value), size))
                                           : std::nullopt});
      }
      if (auto it = ends.find(m->partition);
          it != ends.end() && m->offset + 1 >= it->second)
        ends.erase(it);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (!ends.empty()) throw std::runtime_error("timed out reading " + topic);
  return out;
}

std::map<std::int32_t, std::int64_t> committed_offsets(const std::string& bootstrap,
                                                       const std::string& group,
                                                       const std::string& topic) {
  auto* rk = make_consumer(bootstrap, group);
  int n = partition_count(rk, topic);
  auto* parts = rd_kafka_topic_partition_list_new(n);
  for (int p = 0; p < n; ++p)
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), p);
  auto err = rd_kafka_committed(rk, parts, 10000);
  std::map<std::int32_t, std::int64_t> out;
  for (int i = 0; i < parts->cnt; ++i)
    out[parts->elems[i].partition] = parts->elems[i].offset;
  rd_kafka_topic_partition_list_destroy(parts);
  rd_kafka_destroy(rk);
  if (err)
    throw std::runtime_error(std::string("committed offsets: ") + rd_kafka_err2str(err));
  return out;
}

std::map<std::int32_t, std::int64_t> end_offsets(const std::string& bootstrap,
                                                 const std::string& topic) {
  auto* rk = make_consumer(bootstrap, "sluice-test-reader");
  std::map<std::int32_t, std::int64_t> out;
  int n = partition_count(rk, topic);
  for (int p = 0; p < n; ++p) {
    int64_t lo = 0, hi = 0;
    rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 10000);
    out[p] = hi;
  }
  rd_kafka_destroy(rk);
  return out;
}

void produce_records(const std::string& bootstrap, const std::string& topic,
                     std::int32_t partition,
                     const std::vector<std::pair<std::string, std::string>>& records) {
  std::vector<timed_record> timed;
  for (auto& [key, value] : records)
    timed.push_back({key, value, 0});
  produce_records(bootstrap, topic, partition, timed);
}

void produce_records(const std::string& bootstrap, const std::string& topic,
                     std::int32_t partition, const std::vector<timed_record>& records) {
  auto* conf = kafka::make_conf({{"bootstrap.servers", bootstrap},
                                 {"enable.idempotence", "true"},
                                 {"log_level", "3"}},
                                "test");
  char err[512];
  auto* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) throw std::runtime_error(err);
  for (auto& [key, value, timestamp_ms] : records) {
    for (;;) {
      auto e = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
          RD_KAFKA_V_KEY(key.data(), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk, 10);
        continue;
      }
      if (e) {
        rd_kafka_destroy(rk);
        throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(e));
      }
      break;
    }
  }
  auto e = rd_kafka_flush(rk, 30000);
  rd_kafka_destroy(rk);
  if (e) throw std::runtime_error(std::string("flush: ") + rd_kafka_err2str(e));
}

void produce_to_partition(const std::string& bootstrap, const std::string& topic,
                          std::int32_t partition, int count, std::size_t value_bytes) {
  std::vector<std::pair<std::string, std::string>> records;
  for (int i = 0; i < count; ++i) {
    auto key = std::to_string(partition) + "-" + std::to_string(i);
    std::string value = "{\"n\":" + std::to_string(i);
    if (value_bytes > value.size() + 12)
      value += ",\"pad\":\"" + std::string(value_bytes - value.size() - 10, 'x') + "\"";
    value += "}";
    records.emplace_back(std::move(key), std::move(value));
  }
  produce_records(bootstrap, topic, partition, records);
}

std::chrono::milliseconds scaled(std::chrono::milliseconds base) {
  double m = 1.0;
  if (auto* env = std::getenv("SLUICE_TEST_TIMEOUT_MULTIPLIER"))
    m = std::max(1.0, std::atof(env));
  return std::chrono::milliseconds(
      static_cast<std::int64_t>(static_cast<double>(base.count()) * m));
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

} // namespace sluice::testing
