#include "runtime/kafka/consumer.hpp"

#include "runtime/errors.hpp"
#include "runtime/kafka/config.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <cstring>

namespace sluice::kafka {

namespace {

using tp_list = rd_kafka_topic_partition_list_t;

struct list_guard {
  tp_list* list;
  ~list_guard() { rd_kafka_topic_partition_list_destroy(list); }
};

tp_list* one(const topic_partition& tp, std::int64_t offset = RD_KAFKA_OFFSET_INVALID) {
  auto* l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, tp.topic.c_str(), tp.partition)->offset = offset;
  return l;
}

} // namespace

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

void partition_queue::on_ready(std::function<void()> wake) {
  std::lock_guard<std::mutex> guard{wake_mutex_};
  wake_ = std::move(wake);
}

std::optional<std::string> partition_queue::poll(std::vector<record>& out,
                                                 std::size_t max) {
  thread_local std::vector<rd_kafka_message_t*> msgs;
  msgs.resize(max);
  auto n = rd_kafka_consume_batch_queue(q_, 0, msgs.data(), max);
  std::optional<std::string> error;
  for (ssize_t i = 0; i < n; ++i) {
    auto* m = msgs[i];
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && !error)
        error = rd_kafka_message_errstr(m);
      rd_kafka_message_destroy(m);
      continue;
    }
    auto& rec = out.emplace_back();
    rec.offset = m->offset;
    rec.timestamp_ms = rd_kafka_message_timestamp(m, nullptr);
    if (m->key) rec.key.emplace(static_cast<const char*>(m->key), m->key_len);
    if (m->payload) rec.value.emplace(static_cast<const char*>(m->payload), m->len);
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
      }
    }
    rd_kafka_message_destroy(m);
  }
  return error;
}

// -- group_consumer -----------------------------------------------------------

group_consumer::group_consumer(const source_options& opts) : opts_(opts) {
  auto props = opts.kafka;
  props["bootstrap.servers"] = opts.bootstrap_servers;
  props["group.id"] = opts.group_id;
  // Sluice commits offsets itself, after the outputs are acknowledged.
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  // Start offsets are chosen explicitly on assignment; this only applies when
  // a position falls out of the log's range while running.
  props["auto.offset.reset"] = "earliest";
  set_default(props, "log_level", "4");
  auto* conf = make_conf(props, "source");
  rd_kafka_conf_set_rebalance_cb(
      conf, [](rd_kafka_t* rk, rd_kafka_resp_err_t err, tp_list* parts, void* opaque) {
        rebalance_trampoline(rk, err, parts, opaque);
      });
  rd_kafka_conf_set_offset_commit_cb(
      conf, [](rd_kafka_t*, rd_kafka_resp_err_t err, tp_list*, void*) {
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
          spdlog::warn("offset commit failed: {} (retried at the next epoch)",
                       rd_kafka_err2str(err));
      });
  rd_kafka_conf_set_opaque(conf, this);
  char err[512];
  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    throw config_error("source.kafka", std::string("cannot create the consumer: ") + err);
  }
  rd_kafka_poll_set_consumer(rk_);
}

group_consumer::~group_consumer() {
  close();
  rd_kafka_destroy(rk_);
}

void group_consumer::start(rebalance_listener& listener) {
  listener_ = &listener;
  auto* topics =
      rd_kafka_topic_partition_list_new(static_cast<int>(opts_.subscribe.size()));
  list_guard guard{topics};
  for (auto& t : opts_.subscribe)
    rd_kafka_topic_partition_list_add(topics, t.c_str(), RD_KAFKA_PARTITION_UA);
  if (auto err = rd_kafka_subscribe(rk_, topics))
    throw fatal_error(std::string("cannot subscribe: ") + rd_kafka_err2str(err));
  poller_ = std::thread([this] {
    while (!stop_.load()) {
      auto* m = rd_kafka_consumer_poll(rk_, 100);
      if (!m) continue;
      if (m->err) {
        bool fatal = m->err == RD_KAFKA_RESP_ERR__FATAL;
        listener_->on_error(rd_kafka_message_errstr(m), fatal);
      } else {
        // Every assigned partition is read from its own queue; a record here
        // would bypass its chain and the watermark, so stop rather than lose it.
        listener_->on_error("internal: a record of " +
                                std::string(rd_kafka_topic_name(m->rkt)) +
                                " arrived on the main queue",
                            true);
      }
      rd_kafka_message_destroy(m);
    }
  });
}

std::shared_ptr<partition_queue> group_consumer::queue(const topic_partition& tp) {
  std::lock_guard<std::mutex> guard{queues_mutex_};
  auto& q = queues_[tp];
  if (!q) {
    auto* raw = rd_kafka_queue_get_partition(rk_, tp.topic.c_str(), tp.partition);
    if (!raw) throw fatal_error("no queue for partition " + tp.str());
    rd_kafka_queue_forward(raw, nullptr); // take it off the main queue
    q = std::make_shared<partition_queue>(raw, opts_.include_headers);
  }
  return q;
}

void group_consumer::pause(const topic_partition& tp) {
  auto* l = one(tp);
  list_guard guard{l};
  rd_kafka_pause_partitions(rk_, l);
}

void group_consumer::resume(const topic_partition& tp) {
  auto* l = one(tp);
  list_guard guard{l};
  rd_kafka_resume_partitions(rk_, l);
}

void group_consumer::seek(const topic_partition& tp, std::int64_t offset) {
  auto* l = one(tp, offset);
  list_guard guard{l};
  // Asynchronous (timeout 0): callers are actors. The version barrier is set
  // before this returns, so records fetched before the seek are never served.
  if (auto* err = rd_kafka_seek_partitions(rk_, l, 0)) {
    spdlog::warn("seek {} to {} failed: {}", tp.str(), offset,
                 rd_kafka_error_string(err));
    rd_kafka_error_destroy(err);
  }
}

std::optional<std::string>
group_consumer::commit(const std::map<topic_partition, std::int64_t>& offsets,
                       bool sync) {
  if (offsets.empty()) return std::nullopt;
  auto* l = rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size()));
  list_guard guard{l};
  for (auto& [tp, off] : offsets)
    rd_kafka_topic_partition_list_add(l, tp.topic.c_str(), tp.partition)->offset = off;
  auto err = rd_kafka_commit(rk_, l, sync ? 0 : 1);
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
    return std::string(rd_kafka_err2str(err));
  return std::nullopt;
}

std::pair<std::int64_t, std::int64_t>
group_consumer::cached_watermarks(const topic_partition& tp) {
  int64_t lo = -1, hi = -1;
  rd_kafka_get_watermark_offsets(rk_, tp.topic.c_str(), tp.partition, &lo, &hi);
  return {lo, hi};
}

std::map<topic_partition, std::int64_t>
group_consumer::end_offsets(const std::vector<std::string>& topics,
                            std::chrono::milliseconds timeout) {
  std::map<topic_partition, std::int64_t> out;
  auto ms = static_cast<int>(timeout.count());
  for (auto& name : topics) {
    auto* rkt = rd_kafka_topic_new(rk_, name.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    auto err = rd_kafka_metadata(rk_, 0, rkt, &md, ms);
    rd_kafka_topic_destroy(rkt);
    if (err)
      throw fatal_error("cannot read metadata of topic `" + name +
                        "`: " + rd_kafka_err2str(err));
    for (int t = 0; t < md->topic_cnt; ++t) {
      auto& mt = md->topics[t];
      if (mt.err) {
        auto what = std::string(rd_kafka_err2str(mt.err));
        rd_kafka_metadata_destroy(md);
        throw fatal_error("topic `" + name + "`: " + what);
      }
      for (int p = 0; p < mt.partition_cnt; ++p) {
        int64_t lo = 0, hi = 0;
        auto id = mt.partitions[p].id;
        if (auto e =
                rd_kafka_query_watermark_offsets(rk_, name.c_str(), id, &lo, &hi, ms)) {
          rd_kafka_metadata_destroy(md);
          throw fatal_error("cannot read end offset of " + name + "/" +
                            std::to_string(id) + ": " + rd_kafka_err2str(e));
        }
        out[{name, id}] = hi;
      }
    }
    rd_kafka_metadata_destroy(md);
  }
  return out;
}

void group_consumer::close() {
  if (closed_) return;
  closed_ = true;
  stop_.store(true);
  if (poller_.joinable()) poller_.join();
  if (listener_) rd_kafka_consumer_close(rk_); // revokes through the rebalance callback
  std::lock_guard<std::mutex> guard{queues_mutex_};
  queues_.clear();
}

void group_consumer::rebalance_trampoline(rd_kafka_s*, int err, void* parts,
                                          void* opaque) {
  static_cast<group_consumer*>(opaque)->on_rebalance(err, parts);
}

void group_consumer::on_rebalance(int err, void* raw) {
  auto* parts = static_cast<tp_list*>(raw);
  bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk_), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    // Start from the committed offset; without one, from startingOffsets.
    auto* committed = rd_kafka_topic_partition_list_copy(parts);
    list_guard guard{committed};
    if (auto e = rd_kafka_committed(rk_, committed, 10000))
      listener_->on_error(
          std::string("cannot read committed offsets: ") + rd_kafka_err2str(e), true);
    std::vector<assigned_partition> assigned;
    for (int i = 0; i < parts->cnt; ++i) {
      auto& p = parts->elems[i];
      topic_partition tp{p.topic, p.partition};
      int64_t lo = 0, hi = 0;
      rd_kafka_query_watermark_offsets(rk_, p.topic, p.partition, &lo, &hi, 10000);
      auto start = committed->elems[i].offset;
      if (start < 0) {
        start = opts_.starting == starting_offsets::earliest ? lo : hi;
      } else if (start < lo) {
        spdlog::warn(
            "{}: committed offset {} is below the log start {}: records [{}, {}) were "
            "deleted before they were read",
            tp.str(), start, lo, start, lo);
        start = lo;
      }
      p.offset = start;
      queue(tp); // split the queue off before any record is fetched
      assigned.push_back({tp, start});
    }
    listener_->on_assigned(assigned);
    if (!cooperative)
      rd_kafka_assign(rk_, parts);
    else if (auto* e = rd_kafka_incremental_assign(rk_, parts))
      rd_kafka_error_destroy(e);
  } else {
    std::vector<topic_partition> revoked;
    for (int i = 0; i < parts->cnt; ++i)
      revoked.push_back({parts->elems[i].topic, parts->elems[i].partition});
    listener_->on_revoked(revoked);
    if (!cooperative)
      rd_kafka_assign(rk_, nullptr);
    else if (auto* e = rd_kafka_incremental_unassign(rk_, parts))
      rd_kafka_error_destroy(e);
  }
}

} // namespace sluice::kafka
