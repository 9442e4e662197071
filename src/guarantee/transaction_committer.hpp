#pragma once

#include "kafka/offset_committer.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

struct rd_kafka_s;
struct rd_kafka_error_s;

namespace sluice::kafka {
class producer;
}

namespace sluice::guarantee {

/// Exactly-once: the offsets of an epoch go into the producer's open Kafka
/// transaction (KIP-447: with the consumer's group metadata, so that a member
/// the group moved on from is fenced), and the transaction commits with them;
/// the next one begins at once. Every transactional call runs on one thread
/// of its own (librdkafka's transactional API is not meant for concurrent
/// calls, and commit and abort block until the coordinator answers), with
/// finite waits resumed until `call_timeout`.
///
/// Callers must have stopped writing before they commit (the checkpoint holds
/// every chain): whatever the producer has written since the last commit is
/// in the transaction, and the offsets must cover exactly that.
class transaction_committer final : public kafka::offset_committer {
public:
  /// What became of a transaction: committed (true) or aborted (false); on
  /// the driver thread (the run counts them).
  using settled_fn = std::function<void(bool committed)>;
  /// An error no abort gets past (refused by the ACLs, a coordinator that
  /// stopped answering, fenced too often, or by another instance with the
  /// user's id): the run must end.
  using fatal_fn = std::function<void(const std::string&)>;

  /// `producer` has `transactional.id` set; `consumer` is the group consumer
  /// whose metadata fences commits from a stale generation (`in_group`: it
  /// subscribes, so it must be a member when it commits). Both outlive this.
  /// A fence is renewed (a new producer takes over) when it can only be the
  /// broker aborting a transaction that outlived `transaction_timeout`: with
  /// `own_id` (the id is this process's), or when the open transaction's
  /// first write is that old; otherwise (an id of the user's, shared by
  /// another instance?) it ends the run.
  transaction_committer(kafka::producer& producer, rd_kafka_s* consumer, bool in_group,
                        bool own_id, std::chrono::milliseconds transaction_timeout,
                        std::chrono::milliseconds call_timeout, settled_fn settled,
                        fatal_fn fatal);
  /// Joins the driver thread; an open transaction is left to the broker
  /// (it aborts it after transaction.timeout.ms, or at the next init).
  ~transaction_committer() override;
  transaction_committer(const transaction_committer&) = delete;
  transaction_committer& operator=(const transaction_committer&) = delete;

  /// Registers the transactional id (aborting what a previous instance with
  /// the same id left open) and begins the first transaction; warns when the
  /// sink at `bootstrap` is the embedded broker, whose transactions are
  /// hollow. Throws fatal_error with the broker's reason.
  void start(const std::string& bootstrap, const std::string& transactional_id);

  void commit_async(const kafka::offset_map& offsets, std::int64_t batch_id,
                    std::function<void(kafka::commit_outcome)> done) override;
  kafka::commit_outcome commit_sync(const kafka::offset_map& offsets,
                                    std::int64_t batch_id,
                                    std::chrono::milliseconds timeout) override;
  /// Kafka takes the offsets of a revocation in the transaction (the eager
  /// protocol's revoke runs before the generation moves on): nothing is kept.
  void commit_after_rebalance(const kafka::offset_map&, std::int64_t) override {}
  std::optional<std::string> commit_deferred(std::chrono::milliseconds) override {
    return std::nullopt;
  }
  /// The offset the last committed transaction holds for `tp`, or the
  /// assignment's start when none of this run's did (what the group held).
  std::int64_t restart_point(const kafka::topic_partition& tp, std::int64_t watermark,
                             std::int64_t assigned_start) const override;
  bool discards_on_failure() const override { return true; }
  void discard(const std::string& why, std::function<void()> done) override;

private:
  /// Runs `job` on the driver thread, after those queued before it.
  void post(std::function<void()> job);
  void drive();
  /// On the driver thread: the offsets into the transaction, commit, begin.
  kafka::commit_outcome commit_now(const kafka::offset_map& offsets,
                                   std::int64_t batch_id);
  /// On the driver thread: abort, begin. False once the run must end.
  bool abort_now(const std::string& why);
  /// begin_transaction; false (and the run ends) when it cannot.
  bool begin_now();
  /// On the driver thread, when `err` is a fence: the coordinator aborted the
  /// transaction (it outlived transaction.timeout.ms, e.g. while a broker was
  /// down) and fenced the producer; a new one takes over with a transaction
  /// begun. True if `err` was a fence and the producer renewed; `what` is
  /// what the committer was doing.
  bool renewed_after_fence(const rd_kafka_error_s* err, const std::string& what);
  void fail(const std::string& why);

  kafka::producer& producer_;
  rd_kafka_s* handle_; // producer_'s current instance, on the driver thread
  rd_kafka_s* consumer_;
  bool in_group_;
  bool own_id_;
  std::chrono::milliseconds transaction_timeout_;
  std::chrono::milliseconds call_timeout_;
  settled_fn settled_;
  fatal_fn fatal_;
  std::atomic<bool> failed_{false};
  mutable std::mutex mutex_; // guards jobs_, stop_ and committed_
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  kafka::offset_map committed_;
  std::thread driver_;
};

} // namespace sluice::guarantee
