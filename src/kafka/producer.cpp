#include "kafka/producer.hpp"

#include "core/log.hpp"
#include "kafka/config.hpp"
#include "kafka/errors.hpp"

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
    f.permanent = classify(m->err) == error_kind::record_refused;
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

/// One librdkafka instance. Its poll thread serves its delivery reports until
/// it is destroyed, also after it was replaced.
struct producer::client {
  producer* owner = nullptr;
  cluster_health* health = nullptr;
  rd_kafka_t* rk = nullptr;
  std::uint64_t generation = 0; // 1 for the first instance, then 2, 3...
  std::atomic<bool> stop{false};
  std::atomic<bool> fatal{false};   // librdkafka reported a fatal error
  std::atomic<bool> retired{false}; // replaced: its broker errors say nothing now
  std::thread poller;
  std::mutex topics_mutex;
  std::map<std::string, rd_kafka_topic_s*, std::less<>> topics;

  ~client() {
    stop_polling();
    if (!rk) return;
    rd_kafka_poll(rk, 0);
    for (auto& [name, rkt] : topics)
      rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
  }

  void stop_polling() {
    stop.store(true);
    if (poller.joinable()) poller.join();
  }

  void poll_loop() {
    auto last_check = cluster_health::clock::now();
    while (!stop.load()) {
      rd_kafka_poll(rk, 50);
      if (fatal.exchange(false)) owner->replace(this);
      auto now = cluster_health::clock::now();
      if (now - last_check < std::chrono::seconds(1) || retired.load()) continue;
      last_check = now;
      owner->release_retired();
      // librdkafka says when every broker is down, never when one is back.
      if (health->down()) {
        const rd_kafka_metadata_t* md = nullptr;
        if (rd_kafka_metadata(rk, 0, nullptr, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          rd_kafka_metadata_destroy(md);
          health->mark_up();
        }
      }
    }
  }
};

namespace {

/// An instance's fatal error: librdkafka's code and text (no error: empty).
struct fatal_state {
  rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::string reason;
};

fatal_state fatal_of(rd_kafka_t* rk) {
  char why[512] = "";
  auto code = rd_kafka_fatal_error(rk, why, sizeof why);
  return {code, code == RD_KAFKA_RESP_ERR_NO_ERROR ? std::string() : std::string(why)};
}

/// Fatal errors a new instance (a new producer id) gets past: the producer
/// and a broker lost track of each other's sequence numbers. Others (an ACL
/// refusing IdempotentWrite, a broker without idempotence) would end every
/// new instance too: they end the run at once (on_unrecoverable).
bool replaceable(rd_kafka_resp_err_t err) {
  return classify(err) == error_kind::sequence_lost;
}

/// Replacements allowed within `replacement_window`: fatal errors that keep
/// coming are not a failover's aftermath.
constexpr std::size_t max_replacements = 5;
constexpr auto replacement_window = std::chrono::minutes(10);

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
    static_cast<producer::client*>(opaque)->health->mark_up();
  if (msg->_private) delivery_group::report(msg->_private, msg);
}

void on_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto code = static_cast<rd_kafka_resp_err_t>(err);
  auto* c = static_cast<producer::client*>(opaque);
  if (c->retired.load()) return; // its connections are not the sink's health
  auto kind = classify(code);
  if (kind == error_kind::unreachable)
    c->health->mark_down(reason);
  else if (kind == error_kind::fatal) {
    c->fatal.store(true); // replace() says it, on the poll thread after this callback
    return;
  } else
    c->health->note_broker_error(reason);
  sluice::logger().warn("Kafka producer: {}", reason);
}

/// Keeps OpenSSL's verdict, and says which it was (librdkafka's own message
/// is the same for an unknown CA and a hostname mismatch).
int on_certificate(rd_kafka_t*, const char* broker, int32_t, int* x509_error, int depth,
                   const char*, size_t, char* errstr, size_t errstr_size, void* opaque) {
  if (*x509_error == 0) return 1;
  auto why = describe_certificate_error(*x509_error, depth, broker);
  std::snprintf(errstr, errstr_size, "%s", why.c_str());
  static_cast<producer::client*>(opaque)->health->note_certificate_error(why);
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
                   const std::string& option_prefix)
    : props_(producer_properties(std::move(props))), option_prefix_(option_prefix) {
  auto first = make_client(1);
  {
    std::lock_guard<std::mutex> guard{mutex_};
    current_ = first;
  }
  // Started once published: its first fatal error must find it current.
  first->poller = std::thread([raw = first.get()] { raw->poll_loop(); });
}

producer::lease producer::make_client(std::uint64_t generation) {
  auto c = std::make_shared<client>();
  c->owner = this;
  c->health = &health_;
  c->generation = generation;
  auto* conf = make_conf(props_, option_prefix_);
  if (verifies_certificates(props_))
    rd_kafka_conf_set_ssl_cert_verify_cb(conf, on_certificate);
  char value[64];
  size_t size = sizeof value;
  if (generation == 1 && // the value is the same for every instance
      rd_kafka_conf_get(conf, "message.timeout.ms", value, &size) == RD_KAFKA_CONF_OK)
    delivery_timeout_ = std::chrono::milliseconds(std::stoll(value));
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_opaque(conf, c.get());
  char err[512];
  c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!c->rk) {
    rd_kafka_conf_destroy(conf);
    throw config_error(option_prefix_ + ".kafka",
                       std::string("cannot create the producer: ") + err);
  }
  return c;
}

producer::~producer() {
  flush(std::chrono::seconds(30));
  std::vector<lease> all;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    closing_ = true; // no replacement from now on
    all = std::move(retired_);
    all.push_back(std::move(current_));
  }
  // Every poll thread stops before any instance goes: a poll thread may hold
  // a lease for a moment, and must never be left with the last one.
  for (auto& c : all)
    c->stop_polling();
  all.clear();
}

producer::lease producer::current() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return current_;
}

std::uint64_t producer::generation_of(const lease& instance) noexcept {
  return instance ? instance->generation : 0;
}

rd_kafka_s* producer::handle() const {
  return current()->rk;
}

void producer::replace(client* failed) {
  auto [code, why] = fatal_of(failed->rk);
  std::uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (closing_ || current_.get() != failed) return; // closing, or already replaced
    if (replaceable(code) && recent_replacements() < max_replacements && !transactional())
      generation = failed->generation + 1;
  }
  if (generation == 0 && transactional() && code == RD_KAFKA_RESP_ERR__FENCED) {
    // The transactions' committer meets it at its next call: it renews the
    // producer (renew()) or ends the run. Writes fail until then.
    sluice::logger().warn("Kafka producer ({}): fenced ({})", option_prefix_, why);
    return;
  }
  if (generation == 0) {
    auto cause =
        "Kafka producer (" + option_prefix_ + "): fatal error (" + why + "); " +
        (transactional()
             // A new instance would fence the old one's transaction and
             // could not know what it held: the run ends, and a restart
             // resumes from the last committed transaction.
             ? std::string("a transactional producer is not replaced")
             : replaceable(code) ? "more than " + std::to_string(max_replacements) +
                                       " within 10 minutes: not replaced again"
                                 : std::string("a new producer would meet it too"));
    if (on_unrecoverable_)
      on_unrecoverable_(cause); // the run ends now, not after the chains' restarts
    else
      sluice::logger().error("{}", cause);
    return;
  }
  // Made outside the lock: senders keep taking the current instance meanwhile.
  lease fresh;
  try {
    fresh = make_client(generation);
  } catch (const std::exception& e) {
    sluice::logger().error(
        "Kafka producer ({}): fatal error ({}), and no new producer: {}", option_prefix_,
        why, e.what());
    return;
  }
  auto n = install(failed, fresh);
  if (n == 0) return; // the destructor took every instance already
  // librdkafka dropped the queued messages. Those in a broker's hands get
  // their real outcome: purged now, they could be written after their own
  // replay, out of order.
  sluice::logger().error(
      "Kafka producer ({}): fatal error ({}); replaced by a new producer (replacement "
      "{}): "
      "partitions whose batches it failed restart from what was delivered",
      option_prefix_, why, n);
}

std::size_t producer::recent_replacements() {
  auto now = std::chrono::steady_clock::now();
  while (!replaced_at_.empty() && now - replaced_at_.front() > replacement_window)
    replaced_at_.pop_front();
  return replaced_at_.size();
}

std::int64_t producer::install(client* old, lease fresh) {
  std::int64_t n = 0;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (closing_ || current_.get() != old) return 0;
    old->retired.store(true);
    retired_.push_back(std::move(current_));
    current_ = fresh;
    replaced_at_.push_back(std::chrono::steady_clock::now());
    n = replacements_.fetch_add(1) + 1;
  }
  // Outside the lock: ~producer joins `old`'s poll thread (maybe the caller)
  // before it destroys `fresh`, so the thread is in place by then.
  fresh->poller = std::thread([raw = fresh.get()] { raw->poll_loop(); });
  return n;
}

rd_kafka_s* producer::renew(const std::function<void(rd_kafka_s*)>& prepare) {
  std::uint64_t generation = 0;
  client* old = nullptr;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (closing_) throw fatal_error("the producer is closing");
    if (recent_replacements() >= max_replacements)
      throw fatal_error("fenced more than " + std::to_string(max_replacements) +
                        " times within 10 minutes: transactions keep outliving " +
                        option_prefix_ +
                        ".kafka.transaction.timeout.ms (brokers down, the process "
                        "stalled); raise it, or see to the brokers");
    generation = current_->generation + 1;
    old = current_.get();
  }
  auto fresh = make_client(generation);
  prepare(fresh->rk); // no sender sees it before its transaction is open
  auto n = install(old, fresh);
  if (n == 0) throw fatal_error("the producer is closing");
  sluice::logger().warn("Kafka producer ({}): renewed after a fence (replacement {})",
                        option_prefix_, n);
  return fresh->rk;
}

void producer::release_retired() {
  std::vector<lease> done;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto it = retired_.begin(); it != retired_.end();) {
      // Only retired_ holds it, and it has reported every message.
      if (it->use_count() == 1 && rd_kafka_outq_len((*it)->rk) == 0) {
        done.push_back(std::move(*it));
        it = retired_.erase(it);
      } else {
        ++it;
      }
    }
  }
  done.clear(); // outside the lock: joins their poll threads
}

producer::topic_handle producer::topic(const lease& instance, std::string_view name) {
  auto& c = *instance;
  std::lock_guard<std::mutex> guard{c.topics_mutex};
  auto it = c.topics.find(name);
  if (it != c.topics.end()) return {&c, it->second};
  auto* rkt = rd_kafka_topic_new(c.rk, std::string(name).c_str(), nullptr);
  if (!rkt)
    throw fatal_error("cannot use topic `" + std::string(name) +
                      "`: " + rd_kafka_err2str(rd_kafka_last_error()));
  c.topics.emplace(std::string(name), rkt);
  return {&c, rkt};
}

namespace {

[[noreturn]] void cannot_produce(rd_kafka_t* rk, rd_kafka_topic_t* rkt,
                                 rd_kafka_resp_err_t err) {
  std::string why = rd_kafka_err2str(err);
  if (err == RD_KAFKA_RESP_ERR__FATAL) why += " (" + fatal_of(rk).reason + ")";
  throw fatal_error("cannot produce to topic `" + std::string(rd_kafka_topic_name(rkt)) +
                    "`: " + why);
}

} // namespace

producer::send_result
producer::send(delivery_group* group, std::size_t index, topic_handle topic,
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
  auto* rk = topic.owner->rk;
  auto err = rd_kafka_producev(
      rk, RD_KAFKA_V_RKT(topic.rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY((key ? key->data() : nullptr), (key ? key->size() : 0)),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
      RD_KAFKA_V_TIMESTAMP(timestamp_ms > 0 ? timestamp_ms : 0), RD_KAFKA_V_HEADERS(hdrs),
      RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    note_write();
    return send_result::queued;
  }
  group->cancel_one();
  if (hdrs) rd_kafka_headers_destroy(hdrs); // not taken over on failure
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return send_result::queue_full;
  if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) return send_result::too_large;
  cannot_produce(rk, topic.rkt, err);
}

producer::send_result
producer::send_to_partition(delivery_group* group, std::size_t index, topic_handle topic,
                            std::int32_t partition, const std::string& key,
                            const std::optional<std::string>& value) {
  auto* opaque = group->expect_one(index, true);
  // A null payload is a tombstone (the macro casts its arguments: no ?: in it).
  void* payload = value ? const_cast<char*>(value->data()) : nullptr;
  std::size_t size = value ? value->size() : 0;
  auto* rk = topic.owner->rk;
  auto err = rd_kafka_producev(
      rk, RD_KAFKA_V_RKT(topic.rkt), RD_KAFKA_V_PARTITION(partition),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key.data(), key.size()),
      RD_KAFKA_V_VALUE(payload, size), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    note_write();
    return send_result::queued;
  }
  group->cancel_one();
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return send_result::queue_full;
  if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) return send_result::too_large;
  cannot_produce(rk, topic.rkt, err);
}

bool producer::flush(std::chrono::milliseconds timeout) {
  std::vector<lease> all;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    all = retired_;
    if (current_) all.push_back(current_);
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool flushed = true;
  for (auto& c : all) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (rd_kafka_flush(c->rk, static_cast<int>(std::max<std::int64_t>(
                                  0, left.count()))) != RD_KAFKA_RESP_ERR_NO_ERROR)
      flushed = false;
  }
  return flushed;
}

void producer::purge() {
  std::vector<lease> all;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    all = retired_;
    if (current_) all.push_back(current_);
  }
  for (auto& c : all)
    rd_kafka_purge(c->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  flush(std::chrono::seconds(5));
}

} // namespace sluice::kafka
