#pragma once

#include "kafka/assigned_partition.hpp"
#include "kafka/cluster_health.hpp"
#include "kafka/group_committer.hpp"
#include "kafka/offset_committer.hpp"

#include <sluice/config.hpp>
#include <sluice/record.hpp>
#include <sluice/topic_partition.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

struct rd_kafka_s;
struct rd_kafka_queue_s;

namespace sluice::kafka {

/// Told about assignment changes, on the consumer's poll thread (or on the
/// thread that closes it). May block, but only for a bounded time.
class rebalance_listener {
public:
  virtual ~rebalance_listener() = default;
  virtual void on_assigned(const std::vector<assigned_partition>& parts) = 0;
  /// Must return only when the partitions' work is committed or given up.
  /// `lost`: the group moved on without this member (its session expired):
  /// nothing can be committed any more, and the work is dropped at once.
  virtual void on_revoked(const std::vector<topic_partition>& parts, bool lost) = 0;
  /// A consumer error; `fatal` ones end the run.
  virtual void on_error(const std::string& what, bool fatal) = 0;
};

/// What one non-blocking read of a partition queue found.
struct poll_result {
  std::size_t events = 0; ///< records, error records and other events taken
  std::size_t bytes = 0;  ///< key, value and header bytes of the records
  /// librdkafka reached the end of the log: the next offset to fetch. Offsets
  /// below it that produced no record (transaction markers) are handled.
  std::optional<std::int64_t> end_of_log;
  /// A partition error that skipped no record, e.g. a failed fetch (logged
  /// by the caller).
  std::optional<std::string> error;
  /// The broker's ACLs deny reading the partition: the run cannot go on.
  std::optional<std::string> denied;
};

/// One partition's own fetch queue, split off the consumer's main queue so
/// the partition's consumer actor reads it alone, without blocking.
class partition_queue {
public:
  partition_queue(rd_kafka_queue_s* q, bool include_headers);
  ~partition_queue();
  partition_queue(const partition_queue&) = delete;
  partition_queue& operator=(const partition_queue&) = delete;

  /// Appends up to `max` records that are ready; never blocks. A record
  /// librdkafka could not decode (CRC failure, bad compression...) arrives as
  /// an error event at its offset: it becomes a record with a `consume-error`
  /// error, so that it reaches the DLQ instead of vanishing.
  poll_result poll(std::vector<record>& out, std::size_t max);

  /// `wake` runs on a librdkafka thread when the queue turns non-empty;
  /// it must be quick (send a message). An empty function disables it.
  void on_ready(std::function<void()> wake);

  /// Events waiting in the queue (records, errors, ends of log).
  std::size_t length() const;

private:
  static void trampoline(struct rd_kafka_s*, void* self);

  rd_kafka_queue_s* q_;
  bool include_headers_;
  std::mutex wake_mutex_;
  std::function<void()> wake_;
};

/// The librdkafka properties of the consumer for `opts`: the user's, with the
/// ones Sluice's guarantees rest on forced.
std::map<std::string, std::string> consumer_properties(const source_options& opts);

/// The Kafka consumer of a run: joins the group, subscribes, and hands each
/// assigned partition its own queue. A poll thread serves the group protocol
/// (rebalances, commit results, errors) and probes the cluster while it is
/// unreachable. Other methods are thread-safe.
class group_consumer {
public:
  /// Throws config_error for properties librdkafka rejects. `broker_timeout`
  /// bounds how long a lookup (committed offsets, watermarks) is retried.
  group_consumer(const source_options& opts, std::chrono::milliseconds broker_timeout);
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

  /// Where this consumer's handled offsets are committed (the group).
  group_committer& committer() noexcept { return *committer_; }

  /// Low and high watermark from the last fetch response (no request).
  std::pair<std::int64_t, std::int64_t> cached_watermarks(const topic_partition& tp);

  /// Asks the broker for the log start and end of a partition, waiting at
  /// most `timeout`; nullopt when it does not answer in time.
  std::optional<std::pair<std::int64_t, std::int64_t>>
  log_range(const topic_partition& tp, std::chrono::milliseconds timeout);

  /// Asks the brokers for the current end offset of every partition of
  /// `topics`; throws fatal_error when they do not answer within `timeout`,
  /// missing_topic_error when they say a topic does not exist.
  offset_map end_offsets(const std::vector<std::string>& topics,
                         std::chrono::milliseconds timeout);

  /// The topics the source reads now: the subscribe list, the topics of the
  /// assignment, or those whose whole name matches the pattern.
  std::vector<std::string> topics_now(std::chrono::milliseconds timeout);
  /// How many partitions the source reads now, in all (0 when the cluster
  /// does not answer within `timeout`).
  std::size_t partition_count(std::chrono::milliseconds timeout);

  /// The first offset whose timestamp is at or after `timestamp_ms`; none when
  /// every record is older. Throws fatal_error when the brokers do not answer.
  std::optional<std::int64_t> offset_for_time(const topic_partition& tp,
                                              std::int64_t timestamp_ms,
                                              std::chrono::milliseconds timeout);

  /// The group's committed offsets of `parts` (-1: none), without joining;
  /// throws fatal_error when the coordinator does not answer within `timeout`.
  offset_map committed(const std::vector<topic_partition>& parts,
                       std::chrono::milliseconds timeout);

  /// Where `a` (its log range filled in) would start with `committed` (-1:
  /// none): the rule a run applies at assignment (a.lost says how many
  /// records are gone when they are skipped). Returns why a run would fail.
  std::optional<std::string> planned_start(assigned_partition& a, std::int64_t committed);

  /// Whether the source cluster is reachable, as the poll thread last saw it.
  const cluster_health& health() const noexcept { return health_; }

  /// The broker failure and certificate verdict behind a failed request (a
  /// refused password, an untrusted certificate), "" when none was seen.
  /// Before start() it serves the errors librdkafka queued meanwhile: call it
  /// from the thread that owns the consumer then.
  std::string cause();

  /// Stops the poll thread and leaves the group (revoking through the
  /// listener), waiting at most `timeout` for the group to answer.
  void close(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  rd_kafka_s* handle() const noexcept { return rk_; }

private:
  /// rd_kafka_query_watermark_offsets within `timeout`, asked again when the
  /// broker asked does not lead the partition, after waiting for a refresh of
  /// the topic's metadata (librdkafka 2.0.2 only starts one, and answers with
  /// the error). Returns why not, naming the leader the metadata gave.
  std::optional<std::string> query_log_range(const topic_partition& tp, std::int64_t& lo,
                                             std::int64_t& hi,
                                             std::chrono::milliseconds timeout);
  static void rebalance_trampoline(rd_kafka_s*, int err, void* parts, void* opaque);
  void on_rebalance(int err, void* parts);
  /// Chooses the start of each partition, tells the listener, and sets the
  /// offsets in `parts`; returns why not, when the run must fail instead.
  std::optional<std::string> take_partitions(void* parts);
  /// The start of `a` (log range filled in), by the start policy's rules.
  std::optional<std::string> start_of(assigned_partition& a, std::int64_t committed,
                                      bool is_new);
  void probe_cluster();
  /// " (why)" naming the broker failure behind a failed request (a refused
  /// password, an untrusted certificate), or "" when none was seen.
  std::string cause_suffix();

  source_options opts_;
  std::chrono::milliseconds broker_timeout_;
  rd_kafka_s* rk_ = nullptr;
  rebalance_listener* listener_ = nullptr;
  std::atomic<bool> stop_{false};
  bool closed_ = false;
  bool closed_by_timeout_ = false;
  std::thread poller_;
  std::mutex queues_mutex_;
  std::map<topic_partition, std::shared_ptr<partition_queue>> queues_;
  /// Partitions of the subscribed topics when the first assignment came:
  /// one found later is new, and starts at earliest (Spark's rule).
  std::optional<std::set<topic_partition>> known_partitions_;
  cluster_health health_;
  cluster_health::clock::time_point last_probe_{};
  std::unique_ptr<group_committer> committer_;
};

} // namespace sluice::kafka
