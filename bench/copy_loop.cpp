// The raw librdkafka copy loop as a process of its own: the ceiling that
// bench/run_bench.sh measures Sluice (and a Python loop) against.
//
//   bench/copy_loop --bootstrap B --group G [--input bench-in] [--output bench-copy-out]
//                   [--count 1000000] [--assign | --subscribe]
//                   [--consumer-set key=value ...]
//
// One consumer (group G, fetch.wait.max.ms 50 -- as the Sluice runs use) and one
// producer (idempotent, linger.ms 5, as Sluice's sink); key, value and headers of
// every record copied, nothing parsed, no offsets committed. --assign (the
// default) takes every partition of the input at its beginning, with no group
// join; --subscribe joins group G (earliest, session.timeout.ms 6000) instead.
// Exits once it has copied --count records and the producer has flushed,
// printing one JSON line on stdout:
//   {"contestant":"copy_loop","records":N,"seconds":S,"rate":R}
// seconds run from the first record read to the last delivery report;
// read_seconds from the first record read to the last.
// Depends on librdkafka only, not on Sluice.

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct delivery_state {
  std::int64_t delivered = 0;
  std::int64_t failed = 0;
  clock_type::time_point last{};
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* st = static_cast<delivery_state*>(opaque);
  if (m->err) {
    if (st->failed++ == 0)
      std::fprintf(stderr, "copy_loop: delivery failed: %s\n", rd_kafka_err2str(m->err));
  } else {
    ++st->delivered;
  }
  st->last = clock_type::now();
}

rd_kafka_conf_t*
make_conf(const std::string& bootstrap,
          const std::vector<std::pair<const char*, std::string>>& props) {
  char err[512];
  auto* conf = rd_kafka_conf_new();
  auto set = [&](const char* k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
      throw std::runtime_error(std::string(k) + ": " + err);
  };
  set("bootstrap.servers", bootstrap);
  for (auto& [k, v] : props)
    set(k, v);
  return conf;
}

rd_kafka_t* make_client(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  auto* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) throw std::runtime_error(err);
  return rk;
}

int usage() {
  std::fprintf(stderr,
               "usage: copy_loop --bootstrap B --group G [--input T] [--output T] "
               "[--count N] [--assign | --subscribe] [--consumer-set key=value ...]\n");
  return 2;
}

/// Every partition of `topic` at its beginning, the partition count from the
/// cluster's metadata.
rd_kafka_topic_partition_list_t* all_partitions(rd_kafka_t* rk,
                                                const std::string& topic) {
  auto* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  auto e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
  rd_kafka_topic_destroy(rkt);
  if (e) throw std::runtime_error("metadata of " + topic + ": " + rd_kafka_err2str(e));
  int n = md->topic_cnt == 1 && !md->topics[0].err ? md->topics[0].partition_cnt : 0;
  rd_kafka_metadata_destroy(md);
  if (n <= 0) throw std::runtime_error("topic " + topic + " has no partitions");
  auto* parts = rd_kafka_topic_partition_list_new(n);
  for (int p = 0; p < n; ++p)
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  return parts;
}

} // namespace

int main(int argc, char** argv) try {
  std::string bootstrap, group, input = "bench-in", output = "bench-copy-out";
  std::int64_t count = 1000000;
  bool assign = true;
  std::vector<std::pair<const char*, std::string>> cprops = {
      {"auto.offset.reset", "earliest"},
      {"enable.auto.commit", "false"},
      {"session.timeout.ms", "6000"},
      {"fetch.wait.max.ms", "50"}};
  std::vector<std::string> extra; // keys of --consumer-set, kept alive for cprops
  extra.reserve(argc);
  for (int i = 1; i < argc; i += 2) {
    std::string opt = argv[i];
    if (opt == "--assign" || opt == "--subscribe") { // flags: no value
      assign = opt == "--assign";
      --i;
      continue;
    }
    if (i + 1 >= argc) return usage();
    std::string val = argv[i + 1];
    if (opt == "--bootstrap")
      bootstrap = val;
    else if (opt == "--group")
      group = val;
    else if (opt == "--input")
      input = val;
    else if (opt == "--output")
      output = val;
    else if (opt == "--count")
      count = std::stoll(val);
    else if (opt == "--consumer-set" && val.find('=') != std::string::npos) {
      extra.push_back(val.substr(0, val.find('=')));
      cprops.emplace_back(extra.back().c_str(), val.substr(val.find('=') + 1));
    } else
      return usage();
  }
  if (bootstrap.empty() || group.empty() || count <= 0) return usage();

  cprops.emplace_back("group.id", group);
  auto* consumer = make_client(RD_KAFKA_CONSUMER, make_conf(bootstrap, cprops));
  delivery_state dstate;
  auto* pconf = make_conf(bootstrap, {{"linger.ms", "5"},
                                      {"enable.idempotence", "true"},
                                      {"queue.buffering.max.messages", "1000000"}});
  rd_kafka_conf_set_dr_msg_cb(pconf, on_delivery);
  rd_kafka_conf_set_opaque(pconf, &dstate);
  auto* producer = make_client(RD_KAFKA_PRODUCER, pconf);

  rd_kafka_poll_set_consumer(consumer);
  if (assign) {
    // Explicit offsets: no group join and no committed-offset lookup.
    auto* parts = all_partitions(consumer, input);
    auto e = rd_kafka_assign(consumer, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) throw std::runtime_error(std::string("assign: ") + rd_kafka_err2str(e));
  } else {
    auto* topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, input.c_str(), RD_KAFKA_PARTITION_UA);
    auto e = rd_kafka_subscribe(consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) throw std::runtime_error(std::string("subscribe: ") + rd_kafka_err2str(e));
  }
  auto* out = rd_kafka_topic_new(producer, output.c_str(), nullptr);
  auto* queue = rd_kafka_queue_get_consumer(consumer);

  std::vector<rd_kafka_message_t*> msgs(1000);
  std::int64_t copied = 0;
  clock_type::time_point first{}, last_read{};
  while (copied < count) {
    auto n = rd_kafka_consume_batch_queue(queue, 100, msgs.data(), msgs.size());
    for (ssize_t i = 0; i < n; ++i) {
      auto* m = msgs[i];
      if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
          std::fprintf(stderr, "copy_loop: consume: %s\n", rd_kafka_message_errstr(m));
      } else if (copied < count) {
        if (copied == 0) first = clock_type::now();
        rd_kafka_headers_t* hdrs = nullptr;
        rd_kafka_message_detach_headers(m, &hdrs);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(producer, RD_KAFKA_V_RKT(out),
                                      RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_KEY(m->key, m->key_len),
                                      RD_KAFKA_V_VALUE(m->payload, m->len),
                                      RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
          rd_kafka_poll(producer, 10);
        if (e) { // the headers stay ours when producev fails
          if (hdrs) rd_kafka_headers_destroy(hdrs);
          throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(e));
        }
        if (++copied == count) last_read = clock_type::now();
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_poll(producer, 0);
  }
  if (rd_kafka_flush(producer, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("flush timed out");
  double secs = std::chrono::duration<double>(dstate.last - first).count();
  double read_secs = std::chrono::duration<double>(last_read - first).count();
  std::printf("{\"contestant\":\"copy_loop\",\"records\":%lld,\"seconds\":%.3f,"
              "\"rate\":%.0f,\"read_seconds\":%.3f}\n",
              static_cast<long long>(dstate.delivered), secs,
              static_cast<double>(dstate.delivered) / secs, read_secs);
  std::fflush(stdout);
  rd_kafka_queue_destroy(queue);
  rd_kafka_topic_destroy(out);
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  rd_kafka_destroy(producer);
  return dstate.failed ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "copy_loop: %s\n", e.what());
  return 1;
}
