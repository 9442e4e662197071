#include "actors/checkpoint.hpp"

#include "actors/messages.hpp"
#include "core/log.hpp"
#include "state/state_store.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>

namespace sluice::actors {

namespace {

struct partition_state {
  std::int64_t epoch_start = -1; ///< committed offset when the epoch began
  std::int64_t watermark = -1;
  std::int64_t committed = -1; ///< last offset the group confirmed
  std::int64_t latest = -1;
  std::int64_t consumed = 0;
  std::int64_t consumed_at_epoch_start = 0;
  std::int64_t in_flight = 0;
  /// Below the open epoch's limit, the end the partition can read to now (an
  /// open transaction holds its last stable offset there); -1 otherwise.
  std::int64_t stable_end = -1;
  /// The partition's consumer actor (its reports' sender), asked to log its
  /// state when the run stalls; weak, so that a stopped one can go.
  caf::actor_addr consumer;
};

/// An epoch's report waiting for its commit's outcome, so that `endOffset`
/// shows what the group really holds.
struct pending_report {
  std::uint64_t commit_seq = 0;
  epoch_progress progress;
  std::map<kafka::topic_partition, std::int64_t> prior_committed;
};

/// How long a final commit waits for an outstanding one to answer.
constexpr auto take_wait_limit = std::chrono::seconds(5);

/// Print an idle epoch at least this often, as a heartbeat.
constexpr std::int64_t idle_report_ms = 10000;

/// The shortest epoch timer (processingTime 0 asks for epochs back to back).
constexpr std::chrono::milliseconds epoch_floor{10};

/// An admitted epoch still open after this long is reported with what it
/// waits for (a stuck chain or sink shows where).
constexpr std::int64_t slow_epoch_ms = 30000;

/// No partition moved for this long while some are behind: each of those is
/// logged, and its consumer logs its own state (where a stuck chain waits).
constexpr std::int64_t stall_ms = 30000;

} // namespace

struct checkpoint_state {
  std::map<kafka::topic_partition, partition_state> parts;
  std::int64_t batch_id = 0;
  std::int64_t epoch_start_ms = wall_clock_ms();
  std::int64_t last_report_ms = 0;
  std::int64_t outputs_at_epoch_start = 0;
  std::int64_t dlq_at_epoch_start = 0;
  std::int64_t dropped_at_epoch_start = 0;
  std::int64_t duplicates_at_epoch_start = 0;
  std::int64_t late_at_epoch_start = 0;
  std::int64_t state_updated_at_epoch_start = 0;
  std::int64_t state_removed_at_epoch_start = 0;
  /// Lost records already reported, per partition.
  std::map<kafka::topic_partition, std::int64_t> lost_reported;
  std::uint64_t next_commit_seq = 1;
  std::optional<pending_report> pending;
  std::uint64_t final_commit_seq = 0;
  bool assigned = false; ///< the group assigned this member (maybe nothing)
  /// An asynchronous commit has not answered yet. Commits go one at a time:
  /// librdkafka retries a refused OffsetCommit later, so an older commit
  /// could land after a newer one and move the group backwards.
  bool commit_outstanding = false;
  /// Takes (final commits) that wait for the outstanding commit to answer.
  struct waiting_take {
    caf::typed_response_promise<offset_map, std::int64_t> rp;
    partition_list which;
  };
  std::vector<waiting_take> waiting_takes;
  std::string last_message;

  bool complete = false;

  // Rate limits: each epoch admits a range of offsets per partition, as a
  // Spark micro-batch does, and closes once every partition has handled it.
  bool epoch_open = false;
  /// The trigger fired: open the next epoch (the first opens at once).
  bool trigger_due = true;
  bool once_admitted = false; ///< trigger once: its single epoch is open
  /// The open epoch's admitted ranges are in a progress report already (no
  /// epoch yet at start: nothing to report).
  bool limits_reported = true;
  /// For source.maxTriggerDelay. Spark starts it at 0: the first epoch does
  /// not wait for minOffsetsPerTrigger.
  std::int64_t last_trigger_ms = 0;
  /// An admitted epoch that outlasted `slow_epoch_ms` was reported as such.
  bool slow_epoch_reported = false;
  /// When a report last moved a partition's watermark or consumed count, and
  /// whether the stall since then was logged.
  std::int64_t last_progress_ms = wall_clock_ms();
  bool stall_reported = false;
  /// Trigger once: its single epoch's limits, kept across a revocation so
  /// that a partition assigned again reads the same range.
  std::map<kafka::topic_partition, std::int64_t> once_limits;
  /// Where the next admission of each partition starts.
  std::map<kafka::topic_partition, std::int64_t> admitted_end;
  /// The open (or last) epoch's admitted range per partition: [from, limit).
  std::map<kafka::topic_partition, std::pair<std::int64_t, std::int64_t>> epoch_limits;
};

namespace {

caf::behavior checkpoint(caf::stateful_actor<checkpoint_state>* self, run_context* ctx) {
  auto publish = [self, ctx](epoch_progress& p) {
    if (!ctx->on_progress) return;
    try {
      ctx->on_progress(p);
    } catch (const std::exception& e) {
      // A broken progress callback must not stop commits.
      sluice::logger().error("progress callback failed: {}", e.what());
    } catch (...) {
      sluice::logger().error("progress callback failed");
    }
  };

  // Sets each partition's endOffset from what the commit confirmed, then publishes.
  auto finish_report = [self, publish](pending_report& r,
                                       const kafka::commit_outcome* o) {
    for (auto& pp : r.progress.partitions) {
      kafka::topic_partition tp{pp.topic, pp.partition};
      if (o && o->committed.contains(tp))
        pp.end_offset = o->committed.at(tp);
      else if (auto prior = r.prior_committed.find(tp); prior != r.prior_committed.end())
        pp.end_offset = prior->second;
    }
    bool unreachable = r.progress.message.starts_with("cannot reach");
    if (unreachable) {
      // That says more than a commit that cannot answer.
    } else if (!o)
      r.progress.message = "offset commit still pending; endOffset shows what the group "
                           "held before it";
    else if (o->error)
      r.progress.message = "offset commit failed (" + *o->error +
                           "); endOffset shows what the group holds";
    publish(r.progress);
  };

  // Closes the epoch: builds its report with the counters' deltas.
  auto build_report = [self, ctx](bool force) -> std::optional<pending_report> {
    auto& st = self->state;
    auto now = wall_clock_ms();
    pending_report r;
    auto& p = r.progress;
    p.id = ctx->query_id;
    p.run_id = ctx->run_id;
    p.name = ctx->config.name;
    p.batch_id = st.batch_id;
    p.timestamp_ms = st.epoch_start_ms;
    p.duration_ms = now - st.epoch_start_ms;
    p.source_description = source_description(ctx->config.source);
    // A pipeline whose last stage writes the records names that stage.
    p.sink_description = ctx->config.route.delivered_by.empty()
                             ? "KafkaSink[" + ctx->config.sink.bootstrap_servers + "]"
                             : ctx->config.route.delivered_by;
    auto outputs = ctx->metrics.output_rows.load();
    auto dlq = ctx->metrics.dlq_rows.load();
    auto dropped = ctx->metrics.dropped_rows.load();
    p.num_output_rows = outputs - st.outputs_at_epoch_start;
    p.num_dlq_rows = dlq - st.dlq_at_epoch_start;
    p.num_dropped_rows = dropped - st.dropped_at_epoch_start;
    p.num_processed_rows = p.num_output_rows + p.num_dlq_rows + p.num_dropped_rows;
    auto duplicates = ctx->metrics.duplicate_rows.load();
    auto late = ctx->metrics.late_rows.load();
    auto state_updated = ctx->metrics.state_rows_updated.load();
    auto state_removed = ctx->metrics.state_rows_removed.load();
    if (ctx->state_store) {
      state_operator_progress so;
      so.rows_total = ctx->metrics.state_rows();
      so.rows_updated = state_updated - st.state_updated_at_epoch_start;
      so.rows_removed = state_removed - st.state_removed_at_epoch_start;
      so.memory_used_bytes = ctx->state_store->memory_used();
      so.dropped_duplicates = duplicates - st.duplicates_at_epoch_start;
      so.late_rows = late - st.late_at_epoch_start;
      p.state_operators.push_back(so);
    }
    std::int64_t in_flight = 0;
    auto lost = ctx->metrics.lost_by_partition();
    for (auto& [tp, ps] : st.parts) {
      partition_progress pp;
      pp.topic = tp.topic;
      pp.partition = tp.partition;
      pp.start_offset = ps.epoch_start;
      pp.end_offset = ps.watermark; // replaced by the commit's outcome
      pp.latest_offset = ps.latest;
      // A partition's counter restarts when it is assigned anew.
      if (ps.consumed < ps.consumed_at_epoch_start) ps.consumed_at_epoch_start = 0;
      pp.num_input_rows = ps.consumed - ps.consumed_at_epoch_start;
      if (auto it = lost.find(tp); it != lost.end()) {
        auto& seen = st.lost_reported[tp];
        pp.num_lost_rows = it->second - seen;
        seen = it->second;
        p.num_lost_rows += pp.num_lost_rows;
      }
      if (!st.limits_reported)
        if (auto it = st.epoch_limits.find(tp); it != st.epoch_limits.end()) {
          pp.admitted_offset = it->second.second;
          pp.admitted_rows = it->second.second - it->second.first;
        }
      pp.in_flight = ps.in_flight;
      in_flight += ps.in_flight;
      p.num_input_rows += pp.num_input_rows;
      p.partitions.push_back(pp);
      r.prior_committed[tp] = ps.committed;
      ps.consumed_at_epoch_start = ps.consumed;
    }
    // The run's state, as Spark's status message says it.
    auto source_down = ctx->consumer.health().down_for();
    auto sink_down = ctx->producer.health().down_for();
    if (source_down.count() > 0)
      p.message = "cannot reach the source cluster for " +
                  std::to_string(source_down.count() / 1000) +
                  " s: " + ctx->consumer.health().last_error();
    else if (sink_down.count() > 0)
      p.message = "cannot reach the sink cluster for " +
                  std::to_string(sink_down.count() / 1000) +
                  " s: " + ctx->producer.health().last_error();
    else if (p.num_input_rows > 0 || in_flight > 0)
      p.message = "Processing new data";
    else if (ctx->admission.enabled() &&
             std::any_of(st.parts.begin(), st.parts.end(),
                         [](auto& e) { return e.second.latest > e.second.watermark; }))
      p.message = "Waiting for next trigger"; // a rate limit holds records back
    else
      p.message = "Waiting for data to arrive";
    // An unreachable cluster is reported when it starts and then at the idle
    // heartbeat's pace, not every epoch.
    bool active = p.num_input_rows > 0 || p.num_processed_rows > 0 || in_flight > 0 ||
                  p.num_lost_rows > 0 ||
                  (p.message.starts_with("cannot reach") &&
                   !st.last_message.starts_with("cannot reach"));
    st.epoch_start_ms = now;
    st.outputs_at_epoch_start = outputs;
    st.dlq_at_epoch_start = dlq;
    st.dropped_at_epoch_start = dropped;
    st.duplicates_at_epoch_start = duplicates;
    st.late_at_epoch_start = late;
    st.state_updated_at_epoch_start = state_updated;
    st.state_removed_at_epoch_start = state_removed;
    // Idle heartbeats start with the first assignment, so that the epoch
    // numbering can first continue from the commit metadata; but a cluster
    // that cannot be reached (so never assigns) is reported at their pace.
    bool unreachable = p.message.starts_with("cannot reach");
    if (!force && !active &&
        ((!st.assigned && !unreachable) || now - st.last_report_ms < idle_report_ms))
      return std::nullopt;
    st.limits_reported = true;
    st.last_report_ms = now;
    st.last_message = p.message;
    ++st.batch_id;
    return r;
  };

  // Fails the run when a cluster stayed unreachable longer than brokerTimeout.
  auto check_health = [ctx] {
    auto limit = ctx->config.runtime.broker_timeout;
    auto fail = [&](const char* which, const std::string& servers,
                    const kafka::cluster_health& h) {
      auto down = h.down_for();
      if (down <= limit) return;
      ctx->on_fatal(
          "cannot reach the " + std::string(which) + " cluster at " + servers + " for " +
          std::to_string(down.count() / 1000) + " s (runtime.brokerTimeout is " +
          std::to_string(limit.count() / 1000) + " s); last error: " + h.last_error());
    };
    fail("source", ctx->config.source.bootstrap_servers, ctx->consumer.health());
    fail("sink", ctx->config.sink.bootstrap_servers, ctx->producer.health());
  };

  auto close_epoch = [self, ctx, build_report, finish_report] {
    auto& st = self->state;
    if (st.pending) {
      // The previous epoch's commit has not answered: report it as it stands.
      finish_report(*st.pending, nullptr);
      st.pending.reset();
    }
    auto report = build_report(false);
    // Commit every watermark the group does not hold yet.
    kafka::offset_map to_commit;
    for (auto& [tp, p] : st.parts) {
      if (p.watermark >= 0 && p.watermark != p.committed) to_commit[tp] = p.watermark;
      // The next epoch starts where this one's commit ends.
      p.epoch_start = p.watermark;
    }
    if (to_commit.empty()) {
      kafka::commit_outcome nothing; // the group already holds every watermark
      if (report) finish_report(*report, &nothing);
      return;
    }
    if (st.commit_outstanding) {
      // The last commit has not answered: this epoch's goes with the next.
      if (report) finish_report(*report, nullptr);
      return;
    }
    st.commit_outstanding = true;
    auto seq = st.next_commit_seq++;
    if (report) {
      report->commit_seq = seq;
      st.pending = std::move(report);
    }
    auto me = caf::actor_cast<caf::actor>(self);
    ctx->consumer.commit_async(
        to_commit, st.batch_id - 1, [me, seq](kafka::commit_outcome outcome) {
          caf::anon_send(me, committed_atom::value, seq, std::move(outcome));
        });
  };

  // Closes the epoch for `which` (all when empty) and hands over their
  // uncommitted watermarks; the caller commits them synchronously and sends
  // the outcome back (`committed_atom, outcome`), which publishes the report.
  auto take = [self, ctx, build_report, finish_report](
                  const partition_list& which) -> std::pair<offset_map, std::int64_t> {
    // The caller commits these synchronously and sends the outcome back
    // (`committed_atom, outcome`), which publishes this epoch's report.
    auto& st = self->state;
    if (st.pending) {
      finish_report(*st.pending, nullptr);
      st.pending.reset();
    }
    auto report = build_report(!st.parts.empty());
    offset_map out;
    for (auto it = st.parts.begin(); it != st.parts.end();) {
      bool wanted = which.empty() ||
                    std::find(which.begin(), which.end(), it->first) != which.end();
      if (!wanted) {
        ++it;
        continue;
      }
      if (it->second.watermark >= 0 && it->second.watermark != it->second.committed)
        out[it->first] = it->second.watermark;
      ctx->admission.forget(it->first);
      st.admitted_end.erase(it->first);
      st.epoch_limits.erase(it->first);
      it = st.parts.erase(it);
    }
    if (report) {
      report->commit_seq = st.next_commit_seq++;
      st.pending = std::move(report);
      if (out.empty()) {
        kafka::commit_outcome nothing;
        finish_report(*st.pending, &nothing);
        st.pending.reset();
      } else {
        st.final_commit_seq = st.pending->commit_seq;
      }
    }
    return {std::move(out), st.batch_id - 1};
  };

  // Answers the takes that waited for the outstanding commit.
  auto serve_waiting_takes = [self, take] {
    auto waiting = std::move(self->state.waiting_takes);
    self->state.waiting_takes.clear();
    for (auto& w : waiting) {
      auto [offsets, batch_id] = take(w.which);
      w.rp.deliver(std::move(offsets), batch_id);
    }
  };

  bool once = ctx->config.trigger.mode == trigger_options::kind::once;
  bool runs_to_end =
      once || ctx->config.trigger.mode == trigger_options::kind::available_now;

  auto check_complete = [self, ctx, once] {
    auto& st = self->state;
    if (st.complete || ctx->end_offsets.empty()) return;
    for (auto& [tp, end] : ctx->end_offsets) {
      auto it = st.parts.find(tp);
      if (it == st.parts.end()) return;
      auto target = end;
      // A capped `once` ends with its single epoch.
      if (once && st.once_admitted)
        if (auto l = st.once_limits.find(tp); l != st.once_limits.end())
          target = std::min(target, l->second);
      if (it->second.watermark < target) return;
    }
    st.complete = true;
    if (ctx->on_complete) ctx->on_complete();
  };

  // Admits the next range of every partition: Spark's proportional split of
  // maxOffsetsPerTrigger, after minOffsetsPerTrigger's wait. False when
  // nothing is admitted.
  auto open_epoch = [self, ctx, runs_to_end] {
    auto& st = self->state;
    auto& src = ctx->config.source;
    std::map<kafka::topic_partition, backlog_range> backlog;
    std::int64_t total = 0;
    for (auto& [tp, p] : st.parts) {
      auto begin = p.watermark;
      if (auto a = st.admitted_end.find(tp); a != st.admitted_end.end())
        begin = std::max(begin, a->second);
      if (begin < 0) continue;
      // Only offsets that exist are admitted, even under an end past them.
      auto latest = std::max(p.latest, ctx->consumer.cached_watermarks(tp).second);
      std::int64_t end = begin;
      if (auto e = ctx->end_offsets.find(tp); e != ctx->end_offsets.end())
        end = latest >= 0 ? std::min(e->second, latest) : e->second;
      else if (ctx->end_offsets.empty())
        end = latest;
      end = std::max(end, begin);
      backlog[tp] = {begin, end};
      total += end - begin;
    }
    if (total == 0) return false;
    auto now = wall_clock_ms();
    if (!runs_to_end && src.min_offsets_per_trigger &&
        total < *src.min_offsets_per_trigger &&
        now - st.last_trigger_ms < src.max_trigger_delay.count()) {
      sluice::logger().debug(
          "{} offset(s) waiting, below source.minOffsetsPerTrigger ({}): the "
          "epoch waits",
          total, *src.min_offsets_per_trigger);
      return false;
    }
    auto limits = prorate(backlog, src.max_offsets_per_trigger);
    st.epoch_limits.clear();
    std::int64_t admitted = 0;
    for (auto& [tp, limit] : limits) {
      st.epoch_limits[tp] = {backlog[tp].begin, limit};
      st.admitted_end[tp] = limit;
      admitted += limit - backlog[tp].begin;
    }
    ctx->admission.admit(limits);
    if (runs_to_end && ctx->config.trigger.mode == trigger_options::kind::once)
      st.once_limits = limits;
    st.epoch_open = true;
    st.slow_epoch_reported = false;
    st.limits_reported = false;
    st.last_trigger_ms = now;
    sluice::logger().debug("epoch admits {} of {} waiting offset(s)", admitted, total);
    return true;
  };

  // Every partition handled what the open epoch admitted.
  auto epoch_done = [self] {
    auto& st = self->state;
    for (auto& [tp, range] : st.epoch_limits) {
      auto it = st.parts.find(tp);
      if (it == st.parts.end() || it->second.watermark >= range.second) continue;
      // Handled up to its last stable offset while a transaction is open: done
      // for this epoch (as in Spark, whose read_committed latest is the last
      // stable offset); the rest is admitted again by the next one.
      auto& p = it->second;
      if (p.stable_end >= 0 && p.stable_end < range.second && p.watermark >= p.stable_end)
        continue;
      return false;
    }
    return true;
  };

  // With a rate limit: closes the open epoch once it is handled, and opens
  // the next when the trigger is due (at once for availableNow).
  auto advance = [self, ctx, once, runs_to_end, open_epoch, epoch_done, close_epoch] {
    auto& st = self->state;
    if (!ctx->admission.enabled() || st.complete) return;
    if (once) {
      // One epoch, admitted once every partition of the run is assigned.
      if (st.once_admitted || !st.assigned) return;
      for (auto& [tp, end] : ctx->end_offsets)
        if (!st.parts.contains(tp)) return;
      st.once_admitted = open_epoch();
      return;
    }
    if (st.epoch_open) {
      if (!epoch_done()) return;
      st.epoch_open = false;
      // A partition held at its last stable offset: the next epoch admits
      // from there, not from this epoch's limit.
      for (auto& [tp, range] : st.epoch_limits)
        if (auto it = st.parts.find(tp);
            it != st.parts.end() && it->second.watermark < range.second)
          st.admitted_end[tp] = it->second.watermark;
      close_epoch(); // commits the admitted range and reports it
    }
    // As in Spark, the next epoch starts once the last one's commit answered
    // (its report shows what the group holds).
    if (st.pending) return;
    if (runs_to_end || st.trigger_due) {
      st.trigger_due = false;
      open_epoch();
    }
  };

  // Names the partitions that are behind when none has moved for stall_ms,
  // once per stall, and has their consumers log their state.
  auto report_stall = [self, ctx] {
    auto& st = self->state;
    auto still = wall_clock_ms() - st.last_progress_ms;
    if (st.stall_reported || still < stall_ms || st.complete) return;
    if (ctx->quiesced.load()) return; // a rebalance: nothing is read meanwhile
    // With a rate limit, only what the open epoch admitted is due.
    if (ctx->admission.enabled() && !st.epoch_open) return;
    std::string behind;
    for (auto& [tp, p] : st.parts) {
      auto end = std::max(p.latest, ctx->consumer.cached_watermarks(tp).second);
      if (auto e = ctx->end_offsets.find(tp); e != ctx->end_offsets.end())
        end = e->second;
      if (ctx->admission.enabled()) {
        auto range = st.epoch_limits.find(tp);
        if (range == st.epoch_limits.end()) continue;
        end = std::min(end, range->second.second);
      }
      if (p.watermark < 0 || end <= p.watermark) continue;
      // Read to the end of what it can read (an open transaction holds the
      // last stable offset below the high watermark): waiting, not stuck.
      if (p.stable_end >= 0 && p.watermark >= p.stable_end) continue;
      if (!behind.empty()) behind += "; ";
      behind += tp.str() + " handled to " + std::to_string(p.watermark) + " of " +
                std::to_string(end);
      if (auto c = caf::actor_cast<caf::actor>(p.consumer))
        self->send(c, stall_atom::value);
    }
    if (behind.empty()) return;
    st.stall_reported = true;
    sluice::logger().warn("no partition has moved for {} s: {}", still / 1000, behind);
  };

  // Names the partitions an admitted epoch still waits for, once per epoch.
  auto report_slow_epoch = [self] {
    auto& st = self->state;
    if (!st.epoch_open || st.slow_epoch_reported ||
        wall_clock_ms() - st.last_trigger_ms < slow_epoch_ms)
      return;
    st.slow_epoch_reported = true;
    std::string waiting;
    for (auto& [tp, range] : st.epoch_limits) {
      auto it = st.parts.find(tp);
      if (it == st.parts.end() || it->second.watermark >= range.second) continue;
      auto& p = it->second;
      if (!waiting.empty()) waiting += "; ";
      waiting +=
          tp.str() + " handled to " + std::to_string(p.watermark) + " of [" +
          std::to_string(range.first) + ", " + std::to_string(range.second) + "), " +
          std::to_string(p.in_flight) + " in flight, readable to " +
          (p.stable_end >= 0 ? std::to_string(p.stable_end) : std::string("the end"));
    }
    sluice::logger().warn("epoch {} has been open for {} s, waiting for: {}", st.batch_id,
                          slow_epoch_ms / 1000, waiting.empty() ? "its commit" : waiting);
  };

  // processingTime 0 is Spark's "as fast as possible": epochs back to back,
  // here at least epoch_floor apart, so that the timer is not a busy loop.
  auto interval =
      std::max<std::chrono::milliseconds>(ctx->config.trigger.interval, epoch_floor);
  self->delayed_send(self, interval, epoch_atom::value);
  // Cluster health is checked every second, whatever the epoch length (a
  // `once` run has a single epoch as long as the run).
  self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
  return {
      [=](tick_atom) {
        check_health();
        report_slow_epoch();
        report_stall();
        self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
      },
      [=](report_atom, const std::string& topic, std::int32_t partition,
          std::int64_t watermark, std::int64_t consumed, std::int64_t in_flight,
          std::int64_t latest, std::int64_t stable_end) {
        // Partitions are registered at assignment: a report that comes after
        // the partition was taken away (a stopped chain's last acks) is stale.
        auto it = self->state.parts.find({topic, partition});
        if (it == self->state.parts.end()) return;
        auto& p = it->second;
        if (watermark != p.watermark || consumed != p.consumed) {
          self->state.last_progress_ms = wall_clock_ms();
          self->state.stall_reported = false;
        }
        p.consumer = caf::actor_cast<caf::actor_addr>(self->current_sender());
        if (p.epoch_start < 0) p.epoch_start = watermark;
        p.watermark = watermark;
        p.consumed = consumed;
        p.in_flight = in_flight;
        if (latest >= 0) p.latest = std::max(p.latest, latest);
        p.stable_end = stable_end;
        check_complete();
        advance();
      },
      [=](epoch_atom) {
        check_health();
        auto& st = self->state;
        if (!ctx->admission.enabled()) {
          close_epoch();
        } else {
          // An admitted epoch closes when handled; an idle one here (the
          // heartbeat), then the trigger opens the next.
          // Not while the last epoch's commit is unanswered: its report waits.
          if (!st.epoch_open && !st.pending) close_epoch();
          st.trigger_due = true;
          advance();
        }
        self->delayed_send(self, interval, epoch_atom::value);
      },
      [=](committed_atom, std::uint64_t seq, kafka::commit_outcome& outcome) {
        auto& st = self->state;
        st.commit_outstanding = false;
        for (auto& [tp, off] : outcome.committed)
          if (auto it = st.parts.find(tp); it != st.parts.end())
            it->second.committed = off;
        // ACLs do not change by waiting: a refusal by them fails the run.
        if (outcome.denied)
          ctx->on_fatal("offset commit refused: " + *outcome.error);
        else if (outcome.error)
          sluice::logger().warn("offset commit failed: {} (retried at the next epoch)",
                                *outcome.error);
        // With assign there is no rebalance to wait for: a refusal is just a
        // failed commit (the group is in use by members), retried.
        bool assigned_by_hand =
            ctx->config.source.subscription == subscription_kind::assign;
        if (outcome.rebalancing && !assigned_by_hand && !ctx->quiesced.exchange(true))
          sluice::logger().info(
              "the group is rebalancing: reading paused until it is over");
        else if (!outcome.error)
          ctx->quiesced = false;
        if (st.pending && st.pending->commit_seq == seq) {
          finish_report(*st.pending, &outcome);
          st.pending.reset();
          advance();
        }
        serve_waiting_takes();
      },
      [=](assign_atom, const assignment& parts) {
        // Known before their chains report, so that an epoch admits them all.
        auto& st = self->state;
        st.assigned = true;
        // A stall counts from here: joining the group is not standing still.
        st.last_progress_ms = wall_clock_ms();
        st.stall_reported = false;
        for (auto& a : parts) {
          st.batch_id = std::max(st.batch_id, a.batch_id + 1);
          // A partition assigned again starts afresh from where this
          // assignment starts it (another member may have moved it on).
          auto& p = st.parts[a.tp];
          auto counted = std::pair{p.consumed, p.consumed_at_epoch_start};
          p = partition_state{};
          // The input counter is the chain's own: it goes on if it survived.
          std::tie(p.consumed, p.consumed_at_epoch_start) = counted;
          p.epoch_start = a.start_offset;
          p.watermark = a.start_offset;
          p.latest = a.latest;
          // The group already holds a start read from its commit: a stop
          // right away has nothing to commit (a commit of it could only fail
          // spuriously, e.g. refused by a rebalance, and fail the run).
          if (a.from_commit && a.lost == 0) p.committed = a.start_offset;
          if (auto l = st.once_limits.find(a.tp); l != st.once_limits.end())
            ctx->admission.admit({{a.tp, l->second}});
        }
        check_complete();
        advance();
      },
      [=](watermark_atom, const std::string& topic,
          std::int32_t partition) -> std::int64_t {
        auto it = self->state.parts.find({topic, partition});
        return it == self->state.parts.end() ? -1 : it->second.watermark;
      },
      [=](take_atom,
          const partition_list& which) -> caf::result<offset_map, std::int64_t> {
        auto& st = self->state;
        if (st.commit_outstanding && which.empty()) {
          // The final commit at a stop: the outstanding one's answer first,
          // so that it cannot land after the final one; at most a few seconds
          // (librdkafka may retry it for longer). Not for a revocation: that
          // take comes from librdkafka's rebalance callback, on the thread
          // that delivers commit answers, and would only wait the full time.
          auto rp = self->make_response_promise<offset_map, std::int64_t>();
          st.waiting_takes.push_back({rp, which});
          self->delayed_send(self, take_wait_limit, expire_atom::value);
          return rp;
        }
        auto [offsets, batch_id] = take(which);
        return caf::result<offset_map, std::int64_t>(std::move(offsets), batch_id);
      },
      [=](expire_atom) {
        if (!self->state.waiting_takes.empty()) {
          sluice::logger().warn(
              "an offset commit has not answered in {} s: committing anyway",
              take_wait_limit.count());
          serve_waiting_takes();
        }
      },
      [=](committed_atom, kafka::commit_outcome& outcome) {
        // The outcome of the commit of what take_atom handed over.
        auto& st = self->state;
        // Refused because the group is rebalancing: the offsets are committed
        // at the next assignment (said then), so this is no error.
        if (outcome.error && outcome.rebalancing)
          sluice::logger().warn("offset commit refused while the group rebalances: {}",
                                *outcome.error);
        else if (outcome.error)
          sluice::logger().error("offset commit failed: {}", *outcome.error);
        if (st.pending && st.pending->commit_seq == st.final_commit_seq) {
          finish_report(*st.pending, &outcome);
          st.pending.reset();
        }
      },
  };
}

} // namespace

caf::actor spawn_checkpoint(caf::actor_system& system, run_context* ctx) {
  return system.spawn(checkpoint, ctx);
}

} // namespace sluice::actors
