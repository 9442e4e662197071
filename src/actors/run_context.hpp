#pragma once

#include "guarantee/refused_outputs.hpp"
#include "kafka/consumer.hpp"
#include "kafka/offset_committer.hpp"
#include "kafka/producer.hpp"
#include "observe/progress_builder.hpp"
#include "records/record_router.hpp"
#include "source/admission.hpp"

#include <sluice/config.hpp>
#include <sluice/progress.hpp>
#include <sluice/stage.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace sluice::state {
class store;
}

namespace sluice::actors {

/// A user stage: runs on every batch between the router and the sink, in the
/// partition chain's own actor. Throwing fails the chain (it is restarted).
using batch_function = std::function<void(record_batch&)>;

/// Counters of a whole run, updated by the actors, read by anyone. Input rows
/// count each offset once, when first read; outputs and DLQ rows count when
/// the watermark passes them, so a restarted chain's replay counts nothing
/// twice and, once everything is handled, input = outputs + DLQ rows.
struct run_metrics {
  std::atomic<std::int64_t> input_rows{0};
  std::atomic<std::int64_t> output_rows{0};
  std::atomic<std::int64_t> dlq_rows{0};
  std::atomic<std::int64_t> dropped_rows{0};   ///< on purpose, e.g. tombstones
  std::atomic<std::int64_t> duplicate_rows{0}; ///< of dropped_rows: dedup's
  /// Passed by dedup as late (older than the window behind the progress).
  std::atomic<std::int64_t> late_rows{0};
  /// Dedup state: rows written and purged.
  std::atomic<std::int64_t> state_rows_updated{0};
  std::atomic<std::int64_t> state_rows_removed{0};
  std::atomic<std::int64_t> max_in_flight{
      0}; ///< highest in-flight count of any partition
  std::atomic<std::int64_t> pauses{0};
  std::atomic<std::int64_t> restarts{0};
  /// Bytes read and not yet acknowledged, all partitions (the byte credit).
  std::atomic<std::int64_t> bytes_in_flight{0};
  std::atomic<std::int64_t> max_bytes_in_flight{0};
  /// Memory of the parsed rows in flight (batch arenas), counted by the byte
  /// credit with the raw bytes. Shared: a row kept past the run keeps it.
  std::shared_ptr<std::atomic<std::int64_t>> parsed_bytes =
      std::make_shared<std::atomic<std::int64_t>>(0);

  void add_rows_to(const std::string& topic, std::int64_t n) {
    std::lock_guard<std::mutex> guard{mutex_};
    (held_.load() ? held_rows_by_topic_ : rows_by_topic_)[topic] += n;
  }
  /// Exactly-once: what records became counts only once their transaction
  /// commits (settle); an aborted one's are dropped (discard), and its replay
  /// counts them again.
  void hold_until_commit() { held_ = true; }
  void settle() {
    std::lock_guard<std::mutex> guard{mutex_};
    ++transactions_committed;
    output_rows += held_counts_.outputs;
    dlq_rows += held_counts_.dlq;
    dropped_rows += held_counts_.dropped;
    duplicate_rows += held_counts_.duplicates;
    late_rows += held_counts_.late;
    for (auto& [topic, n] : held_rows_by_topic_)
      rows_by_topic_[topic] += n;
    held_counts_ = {};
    held_rows_by_topic_.clear();
  }
  void discard() {
    std::lock_guard<std::mutex> guard{mutex_};
    ++transactions_aborted;
    held_counts_ = {};
    held_rows_by_topic_.clear();
  }
  /// Exactly-once: transactions committed and aborted so far.
  std::atomic<std::int64_t> transactions_committed{0};
  std::atomic<std::int64_t> transactions_aborted{0};
  std::map<std::string, std::int64_t> rows_by_topic() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return rows_by_topic_;
  }
  /// Records deleted before they were read, skipped (failOnDataLoss false).
  void add_lost(const kafka::topic_partition& tp, std::int64_t n) {
    std::lock_guard<std::mutex> guard{mutex_};
    lost_by_partition_[tp] += n;
    lost_rows += n;
  }
  std::map<kafka::topic_partition, std::int64_t> lost_by_partition() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return lost_by_partition_;
  }
  /// Dedup keys a partition's state holds, as its stage last saw; the state
  /// stays in this instance's store when the partition moves on.
  void set_state_rows(const kafka::topic_partition& tp, std::int64_t n) {
    std::lock_guard<std::mutex> guard{mutex_};
    state_rows_[tp] = n;
  }
  std::int64_t state_rows() const {
    std::lock_guard<std::mutex> guard{mutex_};
    std::int64_t n = 0;
    for (auto& [tp, rows] : state_rows_)
      n += rows;
    return n;
  }
  std::atomic<std::int64_t> lost_rows{0};
  static void raise(std::atomic<std::int64_t>& max, std::int64_t n) {
    auto seen = max.load();
    while (n > seen && !max.compare_exchange_weak(seen, n)) {
    }
  }
  void observe_in_flight(std::int64_t n) { raise(max_in_flight, n); }
  /// Counts what became of records once the watermark passed them.
  void add(const row_counts& c) {
    if (held_.load(std::memory_order_relaxed)) {
      std::lock_guard<std::mutex> guard{mutex_};
      held_counts_ += c;
      return;
    }
    output_rows += c.outputs;
    dlq_rows += c.dlq;
    dropped_rows += c.dropped;
    duplicate_rows += c.duplicates;
    late_rows += c.late;
  }
  /// What became of records so far.
  row_counts rows() const {
    return {output_rows.load(), dlq_rows.load(), dropped_rows.load(),
            duplicate_rows.load(), late_rows.load()};
  }
  /// The counters a progress report shows per epoch, as they stand.
  sluice::epoch_counts epoch_counts() const {
    return {rows(), state_rows_updated.load(), state_rows_removed.load()};
  }

private:
  mutable std::mutex mutex_;
  /// Set before any actor runs; read on every acknowledgement without the lock.
  std::atomic<bool> held_{false};
  row_counts held_counts_;
  std::map<std::string, std::int64_t> held_rows_by_topic_;
  std::map<std::string, std::int64_t> rows_by_topic_;
  std::map<kafka::topic_partition, std::int64_t> lost_by_partition_;
  std::map<kafka::topic_partition, std::int64_t> state_rows_;
};

/// What one partition keeps across the restarts of its chain. Owned by the
/// supervisor's entry for the partition; written by the chain's consumer
/// actor, read by the supervisor.
struct partition_shared {
  /// Every offset below is handled: where a restarted chain resumes.
  std::atomic<std::int64_t> watermark{-1};
  /// Input rows are counted for offsets at or above this only (first reads).
  std::atomic<std::int64_t> counted_until{-1};
  /// Input rows counted for this partition.
  std::atomic<std::int64_t> consumed{0};
  /// Offsets below this were already counted as lost (deleted unread).
  std::atomic<std::int64_t> lost_until{-1};
  /// The broker's high watermark when the partition was assigned.
  std::atomic<std::int64_t> latest{-1};
};

/// One generation of a chain: its sink's delivery groups that librdkafka
/// has not fully reported yet. A restart waits for zero, so the failed
/// chain's outputs never land after its replay's.
struct chain_deliveries {
  std::atomic<std::int64_t> open{0};
  /// Set by the supervisor once the chain's head is gone: its sink, which
  /// may still be running, must not start writing anything more.
  std::atomic<bool> retired{false};
};

/// The run's own actors still alive. The pipeline waits until none is left
/// before its run_context goes: an app's actor system outlives the run, and
/// does not wait for them as a system of the run's own does at its end.
class live_actors {
public:
  void enter() {
    std::lock_guard<std::mutex> guard{mutex_};
    ++count_;
  }
  void leave() {
    std::lock_guard<std::mutex> guard{mutex_};
    --count_;
    done_.notify_all(); // under the lock: the waiter may go once it has it
  }
  /// True once none is left; false after `timeout`.
  bool wait_none(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock{mutex_};
    return done_.wait_for(lock, timeout, [this] { return count_ == 0; });
  }
  std::int64_t count() {
    std::lock_guard<std::mutex> guard{mutex_};
    return count_;
  }

private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::int64_t count_ = 0;
};

/// Everything the actors of one run share. Owned by the pipeline, which
/// outlives every actor it spawns (it waits for `live` to be empty).
struct run_context {
  const pipeline_config& config;
  kafka::group_consumer& consumer;
  /// Where handled offsets go: the guarantee's seam (at-least-once: the group).
  kafka::offset_committer& committer;
  kafka::producer& producer;
  record_router router;
  batch_function user_stage;
  run_metrics metrics;
  /// availableNow: the end offsets snapshotted at start.
  std::map<kafka::topic_partition, std::int64_t> end_offsets;
  std::string query_id;
  std::string run_id;
  std::function<void(const epoch_progress&)> on_progress;
  std::function<void()> on_complete;
  std::function<void(const std::string&)> on_fatal;
  /// Set when a commit failed because the group is rebalancing: the chains
  /// stop reading until the rebalance is over, because nothing handled from
  /// now on can be committed before the partitions move (the embedded broker,
  /// unlike Kafka, refuses commits during a rebalance) and would be read again.
  std::atomic<bool> quiesced{false};
  /// Parallel chains per partition (`source.minPartitions` over the assigned
  /// partitions), set by the supervisor at each assignment.
  std::atomic<int> lanes_per_partition{1};
  /// Rate limits: how far each partition may read in the open epoch.
  admission_gate admission{admits_by_epoch(config)};
  /// Dedup: the local state (null without dedup), the changelog's partition
  /// count (0: no changelog) and the properties of a changelog reader.
  state::store* state_store = nullptr;
  std::int32_t changelog_partitions = 0;
  std::map<std::string, std::string> changelog_client{};
  /// A pipeline built in code: its map/filter/flat_map/batch steps, run in
  /// order between the parser and the router.
  std::vector<processing_step> steps{};
  /// Exactly-once: outputs the broker refused, for the DLQ when read again.
  guarantee::refused_outputs refused{};
  /// The run's actors still alive (each spawn site registers its actor).
  std::shared_ptr<live_actors> live = std::make_shared<live_actors>();
};

} // namespace sluice::actors
