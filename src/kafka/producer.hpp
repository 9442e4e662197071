#pragma once

#include "kafka/cluster_health.hpp"

#include <sluice/record.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

struct rd_kafka_s;
struct rd_kafka_topic_s;

namespace sluice::kafka {

/// A message of a group that the broker (or librdkafka) did not take.
struct delivery_failure {
  std::size_t index = 0; ///< as given to producer::send
  std::string topic;
  std::string reason;
  /// The message as it was sent, kept only for failures (so that it can
  /// still go to a dead-letter queue).
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<header> headers;
  std::int64_t timestamp_ms = -1;
  /// Retrying cannot help: the broker refuses this record for good (too
  /// large, invalid). Anything else (timeouts, a broker down) is transient.
  bool permanent = false;
  /// The cluster's ACLs refused it (`reason` names the topic and the
  /// operation): no retry and no other record can succeed either.
  bool denied = false;
};

/// Counts the delivery reports of a group of messages (one batch) and calls
/// `on_done` once, from the producer's poll thread, when every message of the
/// group is reported and the group is sealed, or abandoned and reported. It
/// deletes itself afterwards.
class delivery_group {
public:
  using callback = std::function<void(const delivery_group&)>;

  explicit delivery_group(callback on_done) : on_done_(std::move(on_done)) {}

  /// One more message will be reported; returns its delivery-report opaque.
  /// With `track_offset`, its offset counts in highest_tracked_offset().
  void* expect_one(std::size_t index, bool track_offset = false);
  /// The last message expected with expect_one() was not queued after all.
  void cancel_one() {
    slots_.pop_back();
    remaining_.fetch_sub(1);
  }
  /// One message's delivery report (a librdkafka message).
  static void report(void* opaque, const void* message);
  /// No more messages will be added.
  void seal() { release(); }
  /// The sender gave up on the group (its actor died mid-batch): `on_done`
  /// still runs once the queued messages are reported, with abandoned() set,
  /// so that a partly sent batch is never acknowledged.
  void abandon() {
    abandoned_.store(true);
    release();
  }

  bool abandoned() const noexcept { return abandoned_.load(); }
  /// Every message that was not delivered, in report order.
  const std::vector<delivery_failure>& failures() const noexcept { return failures_; }
  /// First failure's text, if any message failed.
  std::optional<std::string> error() const {
    if (failures_.empty()) return std::nullopt;
    return failures_.front().reason;
  }
  std::size_t delivered() const noexcept { return delivered_.load(); }
  /// The highest offset of the delivered messages sent with `track_offset`
  /// (-1: none), e.g. how far a changelog partition holds a batch's changes.
  std::int64_t highest_tracked_offset() const noexcept { return tracked_offset_.load(); }

private:
  struct slot {
    delivery_group* group;
    std::size_t index;
    bool track_offset;
  };
  void release();

  callback on_done_;
  std::atomic<std::size_t> remaining_{1}; // 1 until sealed
  std::atomic<std::size_t> delivered_{0};
  std::atomic<bool> abandoned_{false};
  std::atomic<std::int64_t> tracked_offset_{-1};
  std::deque<slot> slots_; // a deque: growing it never moves a slot
  std::mutex failures_mutex_;
  std::vector<delivery_failure> failures_;
};

/// The librdkafka properties of a producer made from the user's `props`:
/// idempotence and Java's key partitioning unless set otherwise.
std::map<std::string, std::string>
producer_properties(std::map<std::string, std::string> props);

/// A librdkafka producer with its own delivery-report thread. `send` never
/// blocks; it is safe to call from any thread.
///
/// librdkafka's idempotent producer can end in a fatal error (a sequence
/// desynchronisation after a broker failover, an unknown producer id): that
/// instance accepts nothing more, ever. The producer then replaces it with a
/// new instance, so that a long run survives it; the old instance still
/// reports what it had in flight, with their real outcome (a failed batch
/// restarts its chain from what was delivered: at least once). Senders hold
/// a `lease` on the instance they send with, taken per batch with current().
class producer {
public:
  enum class send_result {
    queued,
    queue_full, ///< try again later
    too_large,  ///< larger than the producer's message.max.bytes: never sendable
    refused,    ///< not sent, and the caller gave up on it (never returned by send)
  };

  /// One librdkafka instance, its poll thread and its topic handles.
  struct client;
  /// Keeps an instance (and its topic handles) alive while a sender uses it.
  using lease = std::shared_ptr<client>;
  /// A topic of one instance.
  struct topic_handle {
    client* owner = nullptr;
    rd_kafka_topic_s* rkt = nullptr;
  };

  /// Throws config_error naming `<option_prefix>.kafka.<name>` for bad properties.
  producer(std::map<std::string, std::string> props, const std::string& option_prefix);
  ~producer();
  producer(const producer&) = delete;
  producer& operator=(const producer&) = delete;

  /// The instance new batches go to.
  lease current() const;
  /// Which instance it is: 1 for the first, one more per replacement.
  static std::uint64_t generation_of(const lease& instance) noexcept;

  /// The handle of a topic on `instance`, created once and kept for the
  /// instance's life: naming a topic per message costs a lock and a scan in
  /// librdkafka.
  topic_handle topic(const lease& instance, std::string_view name);

  /// Queues one message for `group`; `index` comes back in its failure.
  /// Throws fatal_error for errors that retrying cannot fix (unknown topic,
  /// an instance ended by a fatal error...).
  send_result send(delivery_group* group, std::size_t index, topic_handle topic,
                   const std::optional<std::string>& key, std::string_view value,
                   const std::vector<header>& headers, std::int64_t timestamp_ms);

  /// Queues a message to one partition, its offset tracked by the group; a
  /// null `value` is a tombstone.
  send_result send_to_partition(delivery_group* group, std::size_t index,
                                topic_handle topic, std::int32_t partition,
                                const std::string& key,
                                const std::optional<std::string>& value);

  /// Same as send(), on the current instance, naming the topic.
  send_result send(delivery_group* group, std::size_t index, std::string_view topic,
                   const std::optional<std::string>& key, std::string_view value,
                   const std::vector<header>& headers, std::int64_t timestamp_ms) {
    auto instance = current();
    return send(group, index, this->topic(instance, topic), key, value, headers,
                timestamp_ms);
  }

  /// Waits until every queued message is reported; false on timeout.
  bool flush(std::chrono::milliseconds timeout);

  /// Drops every queued and in-flight message, reporting each as failed,
  /// and waits for those reports.
  void purge();

  /// How long a message may wait for its delivery: librdkafka reports every
  /// message, delivered or failed, within this (`message.timeout.ms`).
  std::chrono::milliseconds delivery_timeout() const noexcept {
    return delivery_timeout_;
  }

  /// Whether the sink cluster is reachable, as the poll thread last saw it.
  const cluster_health& health() const noexcept { return health_; }

  /// Called (from a poll thread) with the cause when a fatal error cannot be
  /// got past by a new instance, or came too often: writes fail from then on.
  /// Set it before the first send.
  void on_unrecoverable(std::function<void(const std::string&)> handler) {
    on_unrecoverable_ = std::move(handler);
  }

  /// Whether it writes in transactions (`transactional.id` is set): such a
  /// producer is not replaced on its own; a fatal error ends the run, except
  /// a fence, after which the transactions' committer calls renew().
  bool transactional() const { return props_.contains("transactional.id"); }

  /// Exactly-once, after the coordinator fenced the current instance (it
  /// aborts a transaction that outlived `transaction.timeout.ms`, and bumps
  /// the producer's epoch): a new instance with the same transactional id,
  /// `prepare`d (its transactions registered, one begun) before any sender
  /// can take it. Throws fatal_error when closing or renewed too often, or
  /// what `prepare` throws.
  rd_kafka_s* renew(const std::function<void(rd_kafka_s*)>& prepare);

  /// Exactly-once: a transaction begins; its first write is not yet queued.
  void transaction_begun() noexcept { first_write_.store(0); }
  /// Notes a write into the open transaction (a record queued, or offsets
  /// sent to it): the first one starts the broker's transaction timer.
  void note_write() noexcept {
    if (first_write_.load(std::memory_order_relaxed) != 0) return;
    std::int64_t none = 0;
    first_write_.compare_exchange_strong(
        none, std::chrono::steady_clock::now().time_since_epoch().count());
  }
  /// How long ago the open transaction's first write was queued; nullopt
  /// when nothing was written since it began.
  std::optional<std::chrono::steady_clock::duration> since_first_write() const noexcept {
    auto at = first_write_.load();
    if (at == 0) return std::nullopt;
    return std::chrono::steady_clock::now().time_since_epoch() -
           std::chrono::steady_clock::duration(at);
  }

  /// How many times an instance was replaced after a fatal error.
  std::int64_t replacements() const noexcept { return replacements_.load(); }

  /// The current instance's handle, for start-up requests (metadata,
  /// admin) made before any record is sent: no instance is replaced then.
  rd_kafka_s* handle() const;

private:
  friend struct client;
  lease make_client(std::uint64_t generation);
  /// Called by `failed`'s poll thread once librdkafka reports a fatal error.
  void replace(client* failed);
  /// Replacements within `replacement_window` (older ones forgotten); with
  /// mutex_ held.
  std::size_t recent_replacements();
  /// Makes `fresh` current in place of `old` (retired) and starts its poll
  /// thread; returns the replacement's number, 0 when closing or `old` is no
  /// longer current.
  std::int64_t install(client* old, lease fresh);
  /// Destroys replaced instances that nobody uses and that reported all.
  void release_retired();

  std::map<std::string, std::string> props_;
  std::string option_prefix_;
  std::chrono::milliseconds delivery_timeout_{300000};
  cluster_health health_;
  std::atomic<std::int64_t> replacements_{0};
  std::atomic<std::int64_t> first_write_{0}; // steady ticks; 0: none since begin
  mutable std::mutex mutex_;                 // guards current_, retired_ and replaced_at_
  lease current_;
  std::vector<lease> retired_;
  std::deque<std::chrono::steady_clock::time_point> replaced_at_;
  bool closing_ = false;
  std::function<void(const std::string&)> on_unrecoverable_;
};

} // namespace sluice::kafka
