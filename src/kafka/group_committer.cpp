#include "kafka/group_committer.hpp"

#include "core/log.hpp"
#include "kafka/commit_metadata.hpp"
#include "kafka/errors.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace sluice::kafka {

namespace {

using steady = std::chrono::steady_clock;

/// "topic `a`", or "one of the topics `a`, `b`": the topics of a commit whose
/// error does not say which one it is about.
std::string topics_of(const tp_list* l) {
  std::vector<std::string> names;
  for (int i = 0; l && i < l->cnt; ++i)
    if (std::find(names.begin(), names.end(), l->elems[i].topic) == names.end())
      names.emplace_back(l->elems[i].topic);
  if (names.empty()) return "";
  if (names.size() == 1) return "topic `" + names.front() + "`";
  std::string out = "one of the topics ";
  for (std::size_t i = 0; i < names.size(); ++i)
    out += (i ? ", `" : "`") + names[i] + "`";
  return out;
}

commit_outcome outcome_of(rd_kafka_resp_err_t err, const tp_list* l,
                          const std::string& group) {
  commit_outcome out;
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    // An offset commit needs Read on the group and on each topic.
    auto why = consumer_denial(err, group, topics_of(l));
    out.denied = !why.empty();
    out.error = out.denied ? why : rd_kafka_err2str(err);
    out.rebalancing = classify(err) == error_kind::rebalancing;
    return out;
  }
  for (int i = 0; l && i < l->cnt; ++i) {
    auto& e = l->elems[i];
    if (e.err) {
      auto why = denial(e.err, "Read", "topic `" + std::string(e.topic) + "`");
      out.denied = out.denied || !why.empty();
      if (!out.error)
        out.error = std::string(e.topic) + "/" + std::to_string(e.partition) + ": " +
                    (why.empty() ? rd_kafka_err2str(e.err) : why);
      out.rebalancing = out.rebalancing || classify(e.err) == error_kind::rebalancing;
    } else {
      out.committed[{e.topic, e.partition}] = e.offset;
    }
  }
  return out;
}

/// Heap-held callback of one asynchronous commit, the commit's opaque.
using commit_callback = std::function<void(commit_outcome)>;

} // namespace

group_committer::group_committer(rd_kafka_s* consumer, std::string group,
                                 cluster_health& health)
    : rk_(consumer), group_(std::move(group)), health_(health),
      answers_(rd_kafka_queue_new(consumer)) {}

group_committer::~group_committer() {
  while (auto* ev = rd_kafka_queue_poll(answers_, 0)) {
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT)
      delete static_cast<commit_callback*>(rd_kafka_event_opaque(ev));
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_queue_destroy(answers_);
}

void group_committer::serve(int timeout_ms) {
  while (auto* ev = rd_kafka_queue_poll(answers_, timeout_ms)) {
    timeout_ms = 0;
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
      std::unique_ptr<commit_callback> done(
          static_cast<commit_callback*>(rd_kafka_event_opaque(ev)));
      auto outcome = outcome_of(rd_kafka_event_error(ev),
                                rd_kafka_event_topic_partition_list(ev), group_);
      if (!outcome.error && !outcome.committed.empty()) health_.mark_up();
      forget_deferred(outcome.committed);
      if (done && *done) (*done)(std::move(outcome));
    }
    rd_kafka_event_destroy(ev);
  }
}

void group_committer::commit_async(const offset_map& offsets, std::int64_t batch_id,
                                   std::function<void(commit_outcome)> done) {
  if (offsets.empty()) {
    if (done) done({});
    return;
  }
  auto* l = commit_list(offsets, batch_id);
  list_guard guard{l};
  auto* opaque = new commit_callback(std::move(done));
  auto err = rd_kafka_commit_queue(rk_, l, answers_, nullptr, opaque);
  if (err) {
    std::unique_ptr<commit_callback> owned(opaque);
    if (*owned) (*owned)(outcome_of(err, nullptr, group_));
  }
}

commit_outcome group_committer::commit_sync(const offset_map& offsets,
                                            std::int64_t batch_id,
                                            std::chrono::milliseconds timeout) {
  if (offsets.empty()) return {};
  auto* l = commit_list(offsets, batch_id);
  list_guard guard{l};
  auto* q = rd_kafka_queue_new(rk_);
  commit_outcome outcome;
  outcome.error = "no answer from the group coordinator within " +
                  std::to_string(timeout.count()) + " ms";
  if (auto err = rd_kafka_commit_queue(rk_, l, q, nullptr, nullptr)) {
    outcome = outcome_of(err, nullptr, group_);
  } else {
    auto deadline = steady::now() + timeout;
    while (steady::now() < deadline) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
      auto* ev =
          rd_kafka_queue_poll(q, static_cast<int>(std::max<long>(1, left.count())));
      if (!ev) continue;
      bool done = rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT;
      if (done)
        outcome = outcome_of(rd_kafka_event_error(ev),
                             rd_kafka_event_topic_partition_list(ev), group_);
      rd_kafka_event_destroy(ev);
      if (done) break;
    }
  }
  rd_kafka_queue_destroy(q);
  if (!outcome.committed.empty()) health_.mark_up();
  forget_deferred(outcome.committed);
  return outcome;
}

void group_committer::forget_deferred(const offset_map& committed) {
  // A refused offset kept for after the rebalance must never be committed
  // once a later one went through: it would move the group backwards.
  std::lock_guard<std::mutex> guard{deferred_mutex_};
  for (auto& [tp, off] : committed)
    if (auto it = deferred_.find(tp); it != deferred_.end() && it->second <= off)
      deferred_.erase(it);
}

void group_committer::commit_after_rebalance(const offset_map& offsets,
                                             std::int64_t batch_id) {
  std::lock_guard<std::mutex> guard{deferred_mutex_};
  for (auto& [tp, off] : offsets)
    deferred_[tp] = std::max(deferred_[tp], off);
  deferred_batch_id_ = std::max(deferred_batch_id_, batch_id);
}

std::pair<offset_map, std::int64_t> group_committer::take_deferred() {
  std::lock_guard<std::mutex> guard{deferred_mutex_};
  offset_map out;
  out.swap(deferred_);
  return {std::move(out), deferred_batch_id_};
}

std::optional<std::string>
group_committer::commit_deferred(std::chrono::milliseconds timeout) {
  auto [deferred, batch_id] = take_deferred();
  if (deferred.empty()) return std::nullopt;
  auto outcome = commit_sync(deferred, batch_id, timeout);
  if (!outcome.error) return std::nullopt;
  std::string missed;
  for (auto& [tp, off] : deferred)
    if (!outcome.committed.contains(tp))
      missed += (missed.empty() ? "" : ", ") + tp.str() + " below " + std::to_string(off);
  return *outcome.error + "; the records of " + missed +
         " since the last successful commit will be read again";
}

void group_committer::commit_refused_at_assignment() {
  auto [deferred, batch_id] = take_deferred();
  if (deferred.empty()) return;
  auto outcome = commit_sync(deferred, batch_id, std::chrono::seconds(5));
  if (outcome.error)
    sluice::logger().warn("the offsets refused during the rebalance could not be "
                          "committed after it either ({}): those records will be read "
                          "again",
                          *outcome.error);
  else
    sluice::logger().info(
        "committed the offsets of {} partition(s) the rebalance had refused",
        outcome.committed.size());
}

std::int64_t group_committer::restart_point(const topic_partition&,
                                            std::int64_t watermark,
                                            std::int64_t assigned_start) const {
  // What the failed chain delivered stays delivered: resume past it.
  return std::max(watermark, assigned_start);
}

} // namespace sluice::kafka
