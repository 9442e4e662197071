#include "guarantee/transaction_committer.hpp"

#include "core/log.hpp"
#include "kafka/commit_metadata.hpp"
#include "kafka/producer.hpp"

#include <sluice/errors.hpp>

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <future>
#include <memory>

namespace sluice::guarantee {

namespace {

using steady = std::chrono::steady_clock;

/// The longest single wait in a transactional call: librdkafka resumes a
/// commit or an abort that timed out when it is called again, and a shorter
/// wait keeps a stopping run from waiting on a coordinator that is gone.
constexpr auto call_slice = std::chrono::seconds(5);

/// Owns a librdkafka error object.
using error_ptr = std::unique_ptr<rd_kafka_error_t, void (*)(rd_kafka_error_t*)>;

error_ptr no_error() {
  return {nullptr, rd_kafka_error_destroy};
}

/// Calls `call` with a bounded wait until it succeeds, fails for good, or
/// `deadline` passes; retriable errors (timeouts, a coordinator moving) are
/// retried, and commit and abort resume where they were.
template <class Call>
error_ptr until_done(Call call, steady::time_point deadline) {
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    auto wait = std::clamp<std::chrono::milliseconds>(
        left, std::chrono::milliseconds(100), call_slice);
    error_ptr err{call(static_cast<int>(wait.count())), rd_kafka_error_destroy};
    if (!err || !rd_kafka_error_is_retriable(err.get()) || steady::now() >= deadline)
      return err;
  }
}

std::string text_of(const rd_kafka_error_t* err) {
  return std::string(rd_kafka_error_name(err)) + ": " + rd_kafka_error_string(err);
}

} // namespace

transaction_committer::transaction_committer(
    kafka::producer& producer, rd_kafka_s* consumer, bool in_group, bool own_id,
    std::chrono::milliseconds transaction_timeout, std::chrono::milliseconds call_timeout,
    settled_fn settled, fatal_fn fatal)
    : producer_(producer), handle_(producer.handle()), consumer_(consumer),
      in_group_(in_group), own_id_(own_id), transaction_timeout_(transaction_timeout),
      call_timeout_(call_timeout), settled_(std::move(settled)), fatal_(std::move(fatal)),
      driver_([this] { drive(); }) {}

transaction_committer::~transaction_committer() {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    stop_ = true;
  }
  wake_.notify_all();
  driver_.join();
}

void transaction_committer::start(const std::string& bootstrap,
                                  const std::string& transactional_id) {
  // A previous instance with this transactional.id (a restart with a fixed
  // id) is fenced here, and its open transaction aborted.
  auto deadline = steady::now() + call_timeout_;
  auto err = until_done([this](int t) { return rd_kafka_init_transactions(handle_, t); },
                        deadline);
  if (err)
    throw fatal_error("exactly-once: cannot start transactions on the sink cluster (" +
                      text_of(err.get()) + ")");
  error_ptr begun{rd_kafka_begin_transaction(handle_), rd_kafka_error_destroy};
  producer_.transaction_begun();
  if (begun)
    throw fatal_error("exactly-once: cannot begin a transaction (" +
                      text_of(begun.get()) + ")");
  std::string cluster;
  if (char* id = rd_kafka_clusterid(handle_, 5000)) {
    cluster = id;
    rd_kafka_mem_free(handle_, id);
  }
  if (cluster.starts_with("mockCluster"))
    sluice::logger().warn(
        "guarantee exactly-once: the sink at {} is the embedded broker, whose "
        "transactions are hollow (no commit or abort markers: readers see aborted "
        "records, and offsets sent to a transaction are not kept: the next run reads "
        "from the start options again). The run goes on, but the guarantee holds only "
        "on a real Kafka cluster",
        bootstrap);
  else
    sluice::logger().info("guarantee exactly-once: transactional id `{}`",
                          transactional_id);
}

void transaction_committer::post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void transaction_committer::drive() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock{mutex_};
      wake_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

void transaction_committer::fail(const std::string& why) {
  if (!failed_.exchange(true)) fatal_(why);
}

bool transaction_committer::begin_now() {
  error_ptr err{rd_kafka_begin_transaction(handle_), rd_kafka_error_destroy};
  producer_.transaction_begun();
  if (!err) return true;
  if (renewed_after_fence(err.get(), "beginning a transaction")) return true;
  fail("exactly-once: cannot begin the next transaction (" + text_of(err.get()) + ")");
  return false;
}

bool transaction_committer::abort_now(const std::string& why) {
  if (failed_.load()) return false;
  // Counted before the chains can restart: their replay counts again.
  if (settled_) settled_(false);
  auto err = until_done([this](int t) { return rd_kafka_abort_transaction(handle_, t); },
                        steady::now() + call_timeout_);
  if (err && renewed_after_fence(err.get(), "aborting a transaction after: " + why))
    return true;
  if (err) {
    fail("exactly-once: the transaction could not be aborted (" + text_of(err.get()) +
         ") after: " + why);
    return false;
  }
  sluice::logger().warn("transaction aborted ({}): read_committed readers never see its "
                        "records; reading resumes from the last committed offsets",
                        why);
  return begin_now();
}

bool transaction_committer::renewed_after_fence(const rd_kafka_error_s* err,
                                                const std::string& what) {
  if (failed_.load() || rd_kafka_error_code(err) != RD_KAFKA_RESP_ERR__FENCED)
    return false;
  // The broker's timer starts at the transaction's first write, never before
  // the write is queued here.
  auto age = producer_.since_first_write();
  if (!own_id_ && !(age && *age >= transaction_timeout_)) {
    // The user's id, and a transaction younger than its timeout (or with
    // nothing written): a newer instance with that id fenced this one (and a
    // commit being resumed may have completed); renewing would fence it back.
    fail("exactly-once: another instance started with this one's "
         "sink.kafka.transactional.id and fenced its producer: give each running "
         "instance its own id, or leave it unset; the next run resumes from the last "
         "committed transaction (" +
         text_of(err) + ")");
    return false;
  }
  try {
    handle_ = producer_.renew([this](rd_kafka_s* fresh) {
      auto init =
          until_done([fresh](int t) { return rd_kafka_init_transactions(fresh, t); },
                     steady::now() + call_timeout_);
      if (init)
        throw fatal_error("it cannot start transactions (" + text_of(init.get()) + ")");
      error_ptr begun{rd_kafka_begin_transaction(fresh), rd_kafka_error_destroy};
      producer_.transaction_begun();
      if (begun)
        throw fatal_error("cannot begin a transaction (" + text_of(begun.get()) + ")");
    });
  } catch (const std::exception& e) {
    fail("exactly-once: the producer was fenced (" + text_of(err) +
         ") and no new one took over: " + e.what() +
         "; the next run resumes from the last committed transaction");
    return false;
  }
  // The coordinator aborted a transaction that outlived its timeout (a broker
  // down, a stall): the open one, as one it let commit is never aborted.
  sluice::logger().warn(
      "exactly-once: the broker fenced the producer ({}) while {}: the open transaction "
      "is aborted (read_committed readers never see its records); a new producer took "
      "over, and what was not committed is read again",
      text_of(err), what);
  return true;
}

kafka::commit_outcome transaction_committer::commit_now(const kafka::offset_map& offsets,
                                                        std::int64_t batch_id) {
  kafka::commit_outcome out;
  out.batch_id = batch_id;
  out.refused = offsets;
  if (failed_.load()) {
    out.error = "the transactions ended with the run";
    return out;
  }
  auto deadline = steady::now() + call_timeout_;
  auto err = no_error();
  if (!offsets.empty()) {
    // The group's generation now: the coordinator refuses (fences) a member
    // the group has moved on from. A member without a member id (its session
    // lost) would be let through unchecked: it must not commit at all.
    std::unique_ptr<rd_kafka_consumer_group_metadata_t,
                    void (*)(rd_kafka_consumer_group_metadata_t*)>
        meta{rd_kafka_consumer_group_metadata(consumer_),
             rd_kafka_consumer_group_metadata_destroy};
    std::string member;
    if (char* id = rd_kafka_memberid(consumer_)) {
      member = id;
      rd_kafka_mem_free(consumer_, id);
    }
    if (!meta || (in_group_ && member.empty())) {
      out.error = "transaction aborted (this instance is not a member of the group "
                  "now: its session was lost)";
      abort_now(*out.error);
      return out;
    }
    kafka::list_guard list{kafka::commit_list(offsets, batch_id)};
    producer_.note_write(); // offsets alone open the transaction on the broker too
    err = until_done(
        [&](int t) {
          return rd_kafka_send_offsets_to_transaction(handle_, list.list, meta.get(), t);
        },
        deadline);
  }
  if (!err)
    err = until_done([this](int t) { return rd_kafka_commit_transaction(handle_, t); },
                     deadline);
  if (!err) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      for (auto& [tp, offset] : offsets)
        committed_[tp] = offset;
    }
    if (settled_) settled_(true);
    out.committed = offsets;
    out.refused.clear();
    begin_now();
    return out;
  }
  auto why = text_of(err.get());
  if (rd_kafka_error_code(err.get()) == RD_KAFKA_RESP_ERR__FENCED) {
    if (!renewed_after_fence(err.get(), "committing an epoch")) {
      out.error = "the transaction failed (" + why + ")";
      return out;
    }
    if (settled_) settled_(false); // the coordinator aborted it
    out.error = "transaction aborted by the broker (" + why + ")";
    return out;
  }
  if (!rd_kafka_error_txn_requires_abort(err.get())) {
    // Fatal (refused by the ACLs), an error
    // librdkafka says to treat as fatal, or a coordinator that did not answer
    // in time, when the commit may still complete: the run ends, and the next
    // one resumes from what the coordinator holds.
    out.error = "the transaction failed (" + why + ")";
    fail("exactly-once: " + *out.error);
    return out;
  }
  out.error = "transaction aborted (" + why + ")";
  abort_now(why);
  return out;
}

void transaction_committer::commit_async(
    const kafka::offset_map& offsets, std::int64_t batch_id,
    std::function<void(kafka::commit_outcome)> done) {
  post([this, offsets, batch_id, done = std::move(done)] {
    auto outcome = commit_now(offsets, batch_id);
    if (done) done(std::move(outcome));
  });
}

kafka::commit_outcome
transaction_committer::commit_sync(const kafka::offset_map& offsets,
                                   std::int64_t batch_id,
                                   std::chrono::milliseconds timeout) {
  auto answer = std::make_shared<std::promise<kafka::commit_outcome>>();
  auto future = answer->get_future();
  auto abandoned = std::make_shared<std::atomic<bool>>(false);
  post([this, offsets, batch_id, answer, abandoned] {
    // A caller that gave up has let the partitions go: their offsets must
    // not land later, in another owner's time.
    if (abandoned->load()) {
      kafka::commit_outcome out;
      out.error = "given up";
      answer->set_value(std::move(out));
      return;
    }
    answer->set_value(commit_now(offsets, batch_id));
  });
  // The job ahead of this one and this one take at most three call timeouts
  // each (commit, abort, and a new producer's registration after a fence): a
  // shorter wait would let the partitions go while their offsets can still be
  // committed. Capped below max.poll.interval.ms (300 s): past it the group
  // moves on anyway, and refuses this generation's offsets.
  auto wait = std::max<std::chrono::milliseconds>(
      timeout,
      std::min<std::chrono::milliseconds>(6 * call_timeout_, std::chrono::seconds(280)));
  if (future.wait_for(wait) == std::future_status::ready) return future.get();
  abandoned->store(true);
  kafka::commit_outcome out;
  out.batch_id = batch_id;
  out.refused = offsets;
  out.error = "the transaction did not commit within " +
              std::to_string(wait.count() / 1000) + " s";
  return out;
}

std::int64_t transaction_committer::restart_point(const kafka::topic_partition& tp,
                                                  std::int64_t,
                                                  std::int64_t assigned_start) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto it = committed_.find(tp);
  return it == committed_.end() ? assigned_start : std::max(it->second, assigned_start);
}

void transaction_committer::discard(const std::string& why, std::function<void()> done) {
  post([this, why, done = std::move(done)] {
    // After a fatal error nothing may restart: the run is ending.
    if (abort_now(why) && done) done();
  });
}

} // namespace sluice::guarantee
