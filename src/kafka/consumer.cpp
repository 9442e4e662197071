#include "kafka/consumer.hpp"

#include "core/log.hpp"
#include "kafka/commit_metadata.hpp"
#include "kafka/config.hpp"
#include "kafka/errors.hpp"
#include "kafka/partition_lists.hpp"
#include "source/start_policy.hpp"

#include <sluice/errors.hpp>

#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <cstring>

namespace sluice::kafka {

namespace {

using steady = std::chrono::steady_clock;

} // namespace

// -- group_consumer -----------------------------------------------------------

std::map<std::string, std::string> consumer_properties(const source_options& opts) {
  auto props = opts.kafka;
  props["bootstrap.servers"] = opts.bootstrap_servers;
  props["group.id"] = opts.group_id;
  // Sluice commits offsets itself, after the outputs are acknowledged.
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  // Start offsets are chosen explicitly on assignment. A position that falls
  // below the log start while running is moved to it by librdkafka (with
  // "error", librdkafka 2.0.2 stops the partition for good); the partition
  // consumer sees the jump against the log start and applies failOnDataLoss.
  props["auto.offset.reset"] = "earliest";
  // The end-of-log event carries the fetch position: a bounded run finishes
  // by it even when the last offsets hold no record (transaction markers).
  props["enable.partition.eof"] = "true";
  // Aborted transactions are never read, and "latest" (the end of a bounded
  // run) is the last stable offset: an open transaction is not waited for.
  // librdkafka's default too; said here because the guarantee rests on it.
  set_default(props, "isolation.level", "read_committed");
  // A pattern never matches internal topics (where Sluice itself commits).
  if (opts.subscription == subscription_kind::pattern)
    set_default(props, "topic.blacklist", internal_topics_pattern);
  set_default(props, "log_level", "4");
  return props;
}

group_consumer::group_consumer(const source_options& opts,
                               std::chrono::milliseconds broker_timeout)
    : opts_(opts), broker_timeout_(broker_timeout) {
  auto props = consumer_properties(opts);
  auto* conf = make_conf(props, "source");
  rd_kafka_conf_set_rebalance_cb(
      conf, [](rd_kafka_t* rk, rd_kafka_resp_err_t err, tp_list* parts, void* opaque) {
        rebalance_trampoline(rk, err, parts, opaque);
      });
  // Client-wide errors (every broker down, a name that does not resolve)
  // reach a consumer only through this callback, never through its poll.
  rd_kafka_conf_set_error_cb(
      conf, [](rd_kafka_t*, int err, const char* reason, void* opaque) {
        auto code = static_cast<rd_kafka_resp_err_t>(err);
        auto* self = static_cast<group_consumer*>(opaque);
        // One name that does not resolve is not a cluster down: all brokers are.
        if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
          self->health_.mark_down(reason);
        else if (classify(code) != error_kind::fatal)
          self->health_.note_broker_error(reason);
        sluice::logger().warn("Kafka consumer: {}", reason);
        auto denied = consumer_denial(code, self->opts_.group_id, "", reason);
        if ((classify(code) == error_kind::fatal || !denied.empty()) && self->listener_)
          self->listener_->on_error(denied.empty() ? reason : denied, true);
      });
  // Keeps OpenSSL's verdict, and says which it was (librdkafka's own message
  // is the same for an unknown CA and a hostname mismatch).
  if (verifies_certificates(props))
    rd_kafka_conf_set_ssl_cert_verify_cb(
        conf, [](rd_kafka_t*, const char* broker, int32_t, int* x509_error, int depth,
                 const char*, size_t, char* errstr, size_t errstr_size, void* opaque) {
          if (*x509_error == 0) return 1;
          auto why = describe_certificate_error(*x509_error, depth, broker);
          std::snprintf(errstr, errstr_size, "%s", why.c_str());
          static_cast<group_consumer*>(opaque)->health_.note_certificate_error(why);
          return 0;
        });
  rd_kafka_conf_set_opaque(conf, this);
  char err[512];
  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    throw config_error("source.kafka", std::string("cannot create the consumer: ") + err);
  }
  rd_kafka_poll_set_consumer(rk_);
  committer_ = std::make_unique<group_committer>(rk_, opts_.group_id, health_);
}

group_consumer::~group_consumer() {
  close();
  committer_.reset(); // its queue goes before the client
  if (closed_by_timeout_)
    rd_kafka_destroy_flags(rk_, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  else
    rd_kafka_destroy(rk_);
}

void group_consumer::start(rebalance_listener& listener) {
  listener_ = &listener;
  if (opts_.subscription == subscription_kind::assign) {
    // No group membership: the partitions are ours at once, and offsets are
    // still committed to group.id (lag tools and the next run see them).
    auto* parts =
        rd_kafka_topic_partition_list_new(static_cast<int>(opts_.assign.size()));
    list_guard guard{parts};
    for (auto& tp : opts_.assign)
      rd_kafka_topic_partition_list_add(parts, tp.topic.c_str(), tp.partition);
    if (auto why = take_partitions(parts)) throw fatal_error(*why);
    if (auto err = rd_kafka_assign(rk_, parts))
      throw fatal_error(std::string("cannot assign: ") + rd_kafka_err2str(err));
  } else {
    auto* topics = rd_kafka_topic_partition_list_new(1);
    list_guard guard{topics};
    if (opts_.subscription == subscription_kind::pattern) {
      // librdkafka treats a name starting with ^ as a POSIX extended regular
      // expression, matched anywhere: anchored, it must match the whole name
      // (as Spark's does). Topics created later match at a metadata refresh.
      auto anchored = "^(" + opts_.pattern + ")$";
      rd_kafka_topic_partition_list_add(topics, anchored.c_str(), RD_KAFKA_PARTITION_UA);
    } else {
      for (auto& t : opts_.subscribe)
        rd_kafka_topic_partition_list_add(topics, t.c_str(), RD_KAFKA_PARTITION_UA);
    }
    if (auto err = rd_kafka_subscribe(rk_, topics))
      throw fatal_error(std::string("cannot subscribe: ") + rd_kafka_err2str(err));
  }
  poller_ = std::thread([this] {
    while (!stop_.load()) {
      auto* m = rd_kafka_consumer_poll(rk_, 50);
      committer_->serve(0);
      probe_cluster();
      if (!m) continue;
      if (m->err) {
        if (classify(m->err) == error_kind::unreachable)
          health_.mark_down(rd_kafka_message_errstr(m));
        // ACLs do not change by waiting: a denied group or topic ends the run.
        auto denied =
            m->rkt
                ? consumer_denial(m->err, opts_.group_id,
                                  "topic `" + std::string(rd_kafka_topic_name(m->rkt)) +
                                      "`")
                : consumer_denial(m->err, opts_.group_id, "", rd_kafka_message_errstr(m));
        bool fatal = classify(m->err) == error_kind::fatal || !denied.empty();
        listener_->on_error(denied.empty() ? rd_kafka_message_errstr(m) : denied, fatal);
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

std::string group_consumer::cause() {
  // Before start() nobody polls: the errors librdkafka queued (a refused
  // password, a certificate) are served here, through the error callback.
  if (!poller_.joinable())
    while (auto* m = rd_kafka_consumer_poll(rk_, 0)) {
      if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        health_.note_broker_error(rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
    }
  return health_.cause();
}

std::string group_consumer::cause_suffix() {
  auto why = cause();
  return why.empty() ? "" : " (" + why + ")";
}

void group_consumer::probe_cluster() {
  if (!health_.down()) return;
  auto now = cluster_health::clock::now();
  if (now - last_probe_ < std::chrono::seconds(1)) return;
  last_probe_ = now;
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk_, 0, nullptr, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_metadata_destroy(md);
    sluice::logger().info("source cluster reachable again after {} ms",
                          health_.down_for().count());
    health_.mark_up();
  }
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
    sluice::logger().warn("seek {} to {} failed: {}", tp.str(), offset,
                          rd_kafka_error_string(err));
    rd_kafka_error_destroy(err);
  }
}

void group_consumer::close(std::chrono::milliseconds timeout) {
  if (closed_) return;
  closed_ = true;
  stop_.store(true);
  if (poller_.joinable()) poller_.join();
  if (listener_) {
    // Leaves the group (revoking through the rebalance callback), but never
    // waits longer than `timeout` for a coordinator that may be gone.
    auto* q = rd_kafka_queue_new(rk_);
    if (auto* e = rd_kafka_consumer_close_queue(rk_, q)) {
      sluice::logger().warn("leaving the group: {}", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    } else {
      auto deadline = steady::now() + timeout;
      while (!rd_kafka_consumer_closed(rk_) && steady::now() < deadline) {
        committer_->serve(0);
        auto* ev = rd_kafka_queue_poll(q, 100);
        if (!ev) continue;
        // Polled as events, a rebalance is ours to answer (or close never ends).
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
          on_rebalance(rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev));
        rd_kafka_event_destroy(ev);
      }
      if (!rd_kafka_consumer_closed(rk_)) {
        sluice::logger().warn(
            "the group did not answer within {} ms; leaving without it (the "
            "group notices after session.timeout.ms)",
            timeout.count());
        closed_by_timeout_ = true;
      }
    }
    rd_kafka_queue_destroy(q);
  }
  std::lock_guard<std::mutex> guard{queues_mutex_};
  queues_.clear();
}

void group_consumer::rebalance_trampoline(rd_kafka_s*, int err, void* parts,
                                          void* opaque) {
  static_cast<group_consumer*>(opaque)->on_rebalance(err, parts);
}

namespace {

/// Retries `attempt` (returns an error text, or nothing on success) every
/// 500 ms until it succeeds, `deadline` passes or `stop` is set; returns the
/// last error when it gave up.
template <class Attempt>
std::optional<std::string> retry_until(steady::time_point deadline,
                                       const std::atomic<bool>& stop, Attempt attempt) {
  for (;;) {
    auto err = attempt();
    if (!err) return std::nullopt;
    if (steady::now() >= deadline || stop.load()) return err;
    sluice::logger().warn("{} (retrying)", *err);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

} // namespace

void group_consumer::on_rebalance(int err, void* raw) {
  auto* parts = static_cast<tp_list*>(raw);
  bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk_), "COOPERATIVE") == 0;
  if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    std::vector<topic_partition> revoked;
    for (int i = 0; i < parts->cnt; ++i)
      revoked.push_back({parts->elems[i].topic, parts->elems[i].partition});
    listener_->on_revoked(revoked, rd_kafka_assignment_lost(rk_) == 1);
    if (!cooperative)
      rd_kafka_assign(rk_, nullptr);
    else if (auto* e = rd_kafka_incremental_unassign(rk_, parts))
      rd_kafka_error_destroy(e);
    return;
  }

  // librdkafka's own close, after ours failed, may assign from the
  // destructor: nothing is taken then.
  if (!committer_) {
    if (!cooperative) rd_kafka_assign(rk_, nullptr);
    return;
  }
  // What the rebalance refused to commit goes first, so that it is what the
  // committed offsets below (and, usually, the new owners') read.
  committer_->commit_refused_at_assignment();

  if (auto why = take_partitions(parts)) {
    listener_->on_error(*why, true);
    if (!cooperative) rd_kafka_assign(rk_, nullptr);
    return;
  }
  if (!cooperative)
    rd_kafka_assign(rk_, parts);
  else if (auto* e = rd_kafka_incremental_assign(rk_, parts))
    rd_kafka_error_destroy(e);
}

std::optional<std::string> group_consumer::planned_start(assigned_partition& a,
                                                         std::int64_t committed) {
  try {
    return start_of(a, committed, false);
  } catch (const fatal_error& e) {
    return std::string(e.what());
  }
}

std::optional<std::string> group_consumer::start_of(assigned_partition& a,
                                                    std::int64_t committed, bool is_new) {
  return choose_start(opts_, a, committed, is_new, opts_.fail_on_data_loss,
                      [this](const topic_partition& tp, std::int64_t ts) {
                        return offset_for_time(tp, ts, std::chrono::seconds(10));
                      });
}

std::optional<std::string> group_consumer::take_partitions(void* raw) {
  auto* parts = static_cast<tp_list*>(raw);
  // Start from the committed offset; without one, from the start options. A
  // failed read is retried and then fails the run: guessing a start could
  // skip everything since the last commit.
  auto deadline = steady::now() + broker_timeout_;
  auto* committed = rd_kafka_topic_partition_list_copy(parts);
  list_guard guard{committed};
  auto failed = retry_until(deadline, stop_, [&]() -> std::optional<std::string> {
    for (int i = 0; i < committed->cnt; ++i) {
      committed->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
      committed->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    if (auto e = rd_kafka_committed(rk_, committed, 5000))
      return std::string("cannot read committed offsets: ") + rd_kafka_err2str(e);
    health_.mark_up(); // the coordinator answered
    for (int i = 0; i < committed->cnt; ++i)
      if (auto e = committed->elems[i].err)
        return std::string("cannot read the committed offset of ") +
               committed->elems[i].topic + "/" +
               std::to_string(committed->elems[i].partition) + ": " + rd_kafka_err2str(e);
    return std::nullopt;
  });
  if (failed) return *failed + "; not starting rather than guessing a start";

  if (!known_partitions_) {
    // What exists now; partitions that appear later start at earliest.
    std::set<topic_partition> known;
    bool complete = true;
    try {
      for (auto& name : topics_now(std::chrono::seconds(5))) {
        auto* rkt = rd_kafka_topic_new(rk_, name.c_str(), nullptr);
        const rd_kafka_metadata_t* md = nullptr;
        if (rd_kafka_metadata(rk_, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          for (int t = 0; t < md->topic_cnt; ++t)
            for (int p = 0; p < md->topics[t].partition_cnt; ++p)
              known.insert({name, md->topics[t].partitions[p].id});
          rd_kafka_metadata_destroy(md);
        } else {
          complete = false;
        }
        rd_kafka_topic_destroy(rkt);
      }
    } catch (const fatal_error&) {
      complete = false;
    }
    for (int i = 0; i < parts->cnt; ++i)
      known.insert({parts->elems[i].topic, parts->elems[i].partition});
    if (complete) known_partitions_ = std::move(known);
  }

  std::vector<assigned_partition> assigned;
  for (int i = 0; i < parts->cnt; ++i) {
    auto& p = parts->elems[i];
    assigned_partition a;
    a.tp = {p.topic, p.partition};
    std::int64_t lo = 0, hi = 0;
    failed = retry_until(deadline, stop_, [&]() -> std::optional<std::string> {
      if (auto why = query_log_range(a.tp, lo, hi, std::chrono::seconds(5)))
        return "cannot read the log range of " + a.tp.str() + ": " + *why;
      return std::nullopt;
    });
    if (failed) return *failed;
    a.log_start = lo;
    a.latest = hi;
    a.batch_id = batch_id_of(committed->elems[i]);
    bool is_new = known_partitions_ && !known_partitions_->contains(a.tp);
    if (is_new) known_partitions_->insert(a.tp);
    try {
      if (auto why = start_of(a, committed->elems[i].offset, is_new)) return why;
    } catch (const fatal_error& e) {
      return std::string(e.what());
    }
    p.offset = a.start_offset;
    queue(a.tp); // split the queue off before any record is fetched
    assigned.push_back(a);
  }
  listener_->on_assigned(assigned);
  return std::nullopt;
}

} // namespace sluice::kafka
