// Sluice against the raw librdkafka copy loop, on the same broker, in the same
// run: the ratio is the figure (these machines are noisy; absolute rates are not).
//
//   bench/copy_ratio [--events N] [--partitions P] [--bootstrap B]
//
// Without --bootstrap an embedded broker (3 mock brokers) runs in this process.
// Both contestants read the same N order events (~200 B JSON) from `bench-in`:
//  - copy loop: one librdkafka consumer -> one producer, key/value/headers copied;
//  - sluice: the pipeline with the order schema (parse + validate + fixed route).
// Each is timed from its first assignment to the last acknowledged output.

#include <sluice/config.hpp>
#include <sluice/pipeline.hpp>
#include <sluice/testing/mock_cluster.hpp>
#include <sluice/testing/order_events.hpp>

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

using namespace sluice;
using clock_type = std::chrono::steady_clock;

namespace {

rd_kafka_t* client(rd_kafka_type_t type, const std::string& bootstrap,
                   std::initializer_list<std::pair<const char*, const char*>> props) {
  char err[512];
  auto* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  for (auto& [k, v] : props)
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK)
      throw std::runtime_error(err);
  auto* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) throw std::runtime_error(err);
  return rk;
}

/// The raw copy loop: every record of `in` to `out`. Returns seconds.
double copy_loop(const std::string& bootstrap, int partitions, std::int64_t events) {
  auto* consumer = client(RD_KAFKA_CONSUMER, bootstrap,
                          {{"group.id", "bench-copy"}, {"enable.auto.commit", "false"}});
  auto* producer = client(RD_KAFKA_PRODUCER, bootstrap,
                          {{"linger.ms", "5"},
                           {"queue.buffering.max.messages", "1000000"},
                           {"enable.idempotence", "true"}});
  auto* parts = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(parts, "bench-in", p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(consumer, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  auto* queue = rd_kafka_queue_get_consumer(consumer);
  rd_kafka_message_t* msgs[1000];
  std::int64_t copied = 0;
  auto start = clock_type::now();
  while (copied < events) {
    auto n = rd_kafka_consume_batch_queue(queue, 100, msgs, 1000);
    for (ssize_t i = 0; i < n; ++i) {
      auto* m = msgs[i];
      if (!m->err) {
        rd_kafka_headers_t* hdrs = nullptr;
        rd_kafka_message_detach_headers(m, &hdrs);
        while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("bench-copy-out"),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_KEY(m->key, m->key_len),
                                 RD_KAFKA_V_VALUE(m->payload, m->len),
                                 RD_KAFKA_V_HEADERS(hdrs),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
          rd_kafka_poll(producer, 10);
        ++copied;
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_poll(producer, 0);
  }
  rd_kafka_flush(producer, 120000);
  double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  rd_kafka_destroy(producer);
  return secs;
}

/// The Sluice pipeline over the same input. Returns seconds from assignment to the end.
double sluice_run(const std::string& bootstrap) {
  auto text = R"({
    "name": "bench",
    "source": {"kafka.bootstrap.servers": ")" +
              bootstrap + R"(", "subscribe": "bench-in",
               "startingOffsets": "earliest", "includeHeaders": true,
               "kafka.session.timeout.ms": 6000},
    "parse": )" +
              testing::order_parse_section() + R"(,
    "route": {"topic": "bench-sluice-out"},
    "sink": {"kafka.bootstrap.servers": ")" +
              bootstrap + R"(", "kafka.linger.ms": 5},
    "dlq": {"topic": "bench-dlq"},
    "trigger": {"availableNow": true}
  })";
  pipeline p(parse_pipeline_config(text));
  auto summary = p.run();
  if (!summary.ok) throw std::runtime_error(summary.error);
  return summary.processing_seconds;
}

} // namespace

int main(int argc, char** argv) {
  std::int64_t events = 1000000;
  int partitions = 64;
  std::string bootstrap;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--events"))
      events = std::stoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--partitions"))
      partitions = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--bootstrap"))
      bootstrap = argv[i + 1];
  }
  std::unique_ptr<testing::mock_cluster> cluster;
  if (bootstrap.empty()) {
    cluster = std::make_unique<testing::mock_cluster>(3);
    for (auto t : {"bench-in", "bench-copy-out", "bench-sluice-out"})
      cluster->create_topic(t, partitions);
    cluster->create_topic("bench-dlq", 1);
    bootstrap = cluster->bootstrap_servers();
  }
  std::fprintf(stderr, "producing %lld events to bench-in (%d partitions)...\n",
               static_cast<long long>(events), partitions);
  testing::produce_orders(bootstrap, "bench-in", events, std::nullopt, 0.0, 1);
  auto copy_secs = copy_loop(bootstrap, partitions, events);
  auto sluice_secs = sluice_run(bootstrap);
  auto copy_rate = static_cast<double>(events) / copy_secs;
  auto sluice_rate = static_cast<double>(events) / sluice_secs;
  std::printf(
      "| events | partitions | copy loop msgs/s | sluice msgs/s | sluice / copy |\n");
  std::printf("|---|---|---|---|---|\n");
  std::printf("| %lld | %d | %.0f | %.0f | %.2f |\n", static_cast<long long>(events),
              partitions, copy_rate, sluice_rate, sluice_rate / copy_rate);
  return 0;
}
