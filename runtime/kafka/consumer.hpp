#pragma once

#include "runtime/kafka/topic_partition.hpp"
#include "runtime/options.hpp"
#include "runtime/record.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

struct rd_kafka_s;
struct rd_kafka_queue_s;

namespace sluice::kafka {

/// A partition the group gave us, and the offset reading starts from
/// (the committed offset, or `startingOffsets` when none is committed).
struct assigned_partition {
  topic_partition tp;
  std::int64_t start_offset = 0;
};

/// Told about assignment changes, on the consumer's poll thread (or on the
/// thread that closes it). May block: the group waits for it.
class rebalance_listener {
public:
  virtual ~rebalance_listener() = default;
  virtual void on_assigned(const std::vector<assigned_partition>& parts) = 0;
  /// Must return only when the partitions' work is committed or given up.
  virtual void on_revoked(const std::vector<topic_partition>& parts) = 0;
  /// A consumer error; `fatal` ones end the run.
  virtual void on_error(const std::string& what, bool fatal) = 0;
};

/// One partition's own fetch queue, split off the consumer's main queue so
/// the partition's consumer actor reads it alone, without blocking.
class partition_queue {
public:
  partition_queue(rd_kafka_queue_s* q, bool include_headers);
  ~partition_queue();
  partition_queue(const partition_queue&) = delete;
  partition_queue& operator=(const partition_queue&) = delete;

  /// Appends up to `max` records that are ready; never blocks. Returns a
  /// consumer error for this partition, if librdkafka reported one.
  std::optional<std::string> poll(std::vector<record>& out, std::size_t max);

  /// `wake` runs on a librdkafka thread when the queue turns non-empty;
  /// it must be quick (send a message). An empty function disables it.
  void on_ready(std::function<void()> wake);

private:
  static void trampoline(struct rd_kafka_s*, void* self);

  rd_kafka_queue_s* q_;
  bool include_headers_;
  std::mutex wake_mutex_;
  std::function<void()> wake_;
};

/// The Kafka consumer of a run: joins the group, subscribes, and hands each
/// assigned partition its own queue. A poll thread serves the group protocol
/// (rebalances, commit results, errors). Other methods are thread-safe.
class group_consumer {
public:
  /// Throws config_error for properties librdkafka rejects.
  explicit group_consumer(const source_options& opts);
  ~group_consumer();
  group_consumer(const group_consumer&) = delete;
  group_consumer& operator=(const group_consumer&) = delete;

  /// Subscribes and starts the poll thread; `listener` must outlive close().
  void start(rebalance_listener& listener);

  /// The queue of an assigned partition (created on first use).
  std::shared_ptr<partition_queue> queue(const topic_partition& tp);

  void pause(const topic_partition& tp);
  void resume(const topic_partition& tp);
  /// Moves the read position without blocking; records fetched before the
  /// seek are dropped, never served.
  void seek(const topic_partition& tp, std::int64_t offset);

  /// Commits offsets (next offset to read) to the group. Async commits report
  /// failures on the poll thread's log; a sync commit returns its error.
  std::optional<std::string>
  commit(const std::map<topic_partition, std::int64_t>& offsets, bool sync);

  /// Low and high watermark from the last fetch response (no request).
  std::pair<std::int64_t, std::int64_t> cached_watermarks(const topic_partition& tp);

  /// Asks the brokers for the current end offset of every partition of `topics`.
  std::map<topic_partition, std::int64_t>
  end_offsets(const std::vector<std::string>& topics, std::chrono::milliseconds timeout);

  /// Stops the poll thread and leaves the group (revoking through the listener).
  void close();

  rd_kafka_s* handle() const noexcept { return rk_; }

private:
  static void rebalance_trampoline(rd_kafka_s*, int err, void* parts, void* opaque);
  void on_rebalance(int err, void* parts);

  source_options opts_;
  rd_kafka_s* rk_ = nullptr;
  rebalance_listener* listener_ = nullptr;
  std::atomic<bool> stop_{false};
  bool closed_ = false;
  std::thread poller_;
  std::mutex queues_mutex_;
  std::map<topic_partition, std::shared_ptr<partition_queue>> queues_;
};

} // namespace sluice::kafka
