// A/B: the reading thread's CPU per record when a partition queue is drained with
// rd_kafka_consume_batch_queue (500 per call, what Sluice used before) or with
// rd_kafka_consume_queue one record per call (what it uses now: librdkafka 2.0.2's
// batch call is not safe beside a parallel seek/pause/resume/rebalance). The records
// are prefetched first (mock cluster, 1 partition, 60-byte values), so only the calls
// are measured; rounds alternate.
//   g++ -O2 -std=c++20 bench/queue_read_ab.cpp -o /tmp/queue_read_ab -lrdkafka
//   /tmp/queue_read_ab 30000      (the mock keeps 5 MiB per partition: stay under it)
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>
static double cpu() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}
int main(int argc, char** argv) {
  int n = atoi(argv[1]);
  char err[512];
  auto* pc = rd_kafka_conf_new();
  rd_kafka_conf_set(pc, "test.mock.num.brokers", "1", err, sizeof err);
  auto* prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
  auto* mc = rd_kafka_handle_mock_cluster(prod);
  rd_kafka_mock_topic_create(mc, "t", 1, 1);
  std::string bs = rd_kafka_mock_cluster_bootstraps(mc);
  std::string v(60, 'x');
  for (int i = 0; i < n; ++i) {
    while (rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("t"), RD_KAFKA_V_PARTITION(0),
                             RD_KAFKA_V_VALUE((void*)v.data(), v.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
      rd_kafka_poll(prod, 10);
  }
  rd_kafka_flush(prod, 60000);
  for (int round = 0; round < 6; ++round) {
    bool batch = round % 2 == 0;
    auto* cc = rd_kafka_conf_new();
    rd_kafka_conf_set(cc, "bootstrap.servers", bs.c_str(), err, sizeof err);
    rd_kafka_conf_set(cc, "group.id", "g", err, sizeof err);
    rd_kafka_conf_set(cc, "queued.max.messages.kbytes", "1000000", err, sizeof err);
    rd_kafka_conf_set(cc, "queued.min.messages", "10000000", err, sizeof err);
    auto* c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
    rd_kafka_poll_set_consumer(c);
    auto* q = rd_kafka_queue_get_partition(c, "t", 0);
    rd_kafka_queue_forward(q, nullptr);
    auto* l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "t", 0)->offset = 0;
    rd_kafka_assign(c, l);
    while (rd_kafka_queue_length(q) < (size_t)n)
      rd_kafka_poll(c, 10);
    auto t0 = std::chrono::steady_clock::now();
    double c0 = cpu();
    int got = 0;
    std::vector<rd_kafka_message_t*> msgs(500);
    while (got < n) {
      if (batch) {
        auto k = rd_kafka_consume_batch_queue(q, 0, msgs.data(), 500);
        for (ssize_t i = 0; i < k; ++i) {
          if (!msgs[i]->err) ++got;
          rd_kafka_message_destroy(msgs[i]);
        }
        if (k <= 0) rd_kafka_poll(c, 1);
      } else {
        int k = 0;
        while (k < 500) {
          auto* m = rd_kafka_consume_queue(q, 0);
          if (!m) break;
          ++k;
          if (!m->err) ++got;
          rd_kafka_message_destroy(m);
        }
        if (k == 0) rd_kafka_poll(c, 1);
      }
    }
    double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("%s: %d records, reader thread CPU %.1f ns per record (wall %.4f s)\n",
           batch ? "batch " : "single", got, (cpu() - c0) * 1e9 / got, wall);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
  }
  rd_kafka_destroy(prod);
}
