#include "actors/checkpoint.hpp"

#include "actors/messages.hpp"
#include "core/log.hpp"
#include "observe/progress_builder.hpp"
#include "source/epoch_planner.hpp"
#include "state/state_store.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>

namespace sluice::actors {

namespace {

/// A partition's bookkeeping besides its position (which the planner reads).
struct partition_state {
  std::int64_t epoch_start = -1; ///< committed offset when the epoch began
  std::int64_t committed = -1;   ///< last offset the group confirmed
  std::int64_t consumed = 0;
  std::int64_t in_flight = 0;
  /// The partition's consumer actor (its reports' sender), asked to log its
  /// state when the run stalls; weak, so that a stopped one can go.
  caf::actor_addr consumer;
};

/// An epoch's report waiting for its commit's outcome, so that `endOffset`
/// shows what the group really holds.
struct pending_report {
  std::uint64_t commit_seq = 0;
  closed_epoch epoch;
};

/// How long a final commit waits for an outstanding one to answer.
constexpr auto take_wait_limit = std::chrono::seconds(5);

/// The shortest epoch timer (processingTime 0 asks for epochs back to back).
constexpr std::chrono::milliseconds epoch_floor{10};

/// An admitted epoch still open after this long is reported with what it
/// waits for (a stuck chain or sink shows where).
constexpr std::int64_t slow_epoch_ms = 30000;

/// No partition moved for this long while some are behind: each of those is
/// logged, and its consumer logs its own state (where a stuck chain waits).
constexpr std::int64_t stall_ms = 30000;

epoch_planner::rules planner_rules(const run_context& ctx) {
  auto& src = ctx.config.source;
  auto mode = ctx.config.trigger.mode;
  epoch_planner::rules r;
  r.once = mode == trigger_options::kind::once;
  r.runs_to_end = r.once || mode == trigger_options::kind::available_now;
  r.max_offsets = src.max_offsets_per_trigger;
  r.min_offsets = src.min_offsets_per_trigger;
  r.max_trigger_delay_ms = src.max_trigger_delay.count();
  r.end_offsets = ctx.end_offsets;
  return r;
}

progress_builder::identity report_identity(const run_context& ctx) {
  // A pipeline whose last stage writes the records names that stage.
  auto& cfg = ctx.config;
  return {ctx.query_id, ctx.run_id, cfg.name, source_description(cfg.source),
          cfg.route.delivered_by.empty() ? "KafkaSink[" + cfg.sink.bootstrap_servers + "]"
                                         : cfg.route.delivered_by};
}

} // namespace

struct checkpoint_state {
  /// Where each assigned partition stands (what the planner reads)...
  position_map positions;
  /// ...and the rest of its bookkeeping; both hold the same partitions.
  std::map<kafka::topic_partition, partition_state> parts;
  std::optional<epoch_planner> planner;
  std::optional<progress_builder> reports;
  std::uint64_t next_commit_seq = 1;
  std::optional<pending_report> pending;
  std::uint64_t final_commit_seq = 0;
  /// Exactly-once: partitions handed over whose report waits for the commit.
  std::optional<partition_list> taken;
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

  bool complete = false;
  /// The trigger fired: open the next epoch (the first opens at once).
  bool trigger_due = true;
  /// The open epoch's admitted ranges are in a progress report already (no
  /// epoch yet at start: nothing to report).
  bool limits_reported = true;
  /// An admitted epoch that outlasted `slow_epoch_ms` was reported as such.
  bool slow_epoch_reported = false;
  /// When a report last moved a partition's watermark or consumed count, and
  /// whether the stall since then was logged.
  std::int64_t last_progress_ms = wall_clock_ms();
  bool stall_reported = false;
  /// Exactly-once: the supervisor, which holds the chains for each commit;
  /// and the transaction counts the last published report had reached.
  caf::actor supervisor;
  /// A rewind is under way: the watermarks are void (they cover outputs of an
  /// aborted transaction) until the restarted chains' offsets arrive.
  bool rewinding = false;
  /// The commit whose chains are held until it answers (0: none).
  std::uint64_t holding_for = 0;
  std::int64_t reported_committed = 0;
  std::int64_t reported_aborted = 0;
};

namespace {

caf::behavior checkpoint(caf::stateful_actor<checkpoint_state>* self, run_context* ctx) {
  self->state.planner.emplace(planner_rules(*ctx));
  self->state.reports.emplace(report_identity(*ctx), wall_clock_ms());

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

  bool exactly_once = ctx->config.guarantee == delivery_guarantee::exactly_once;

  // Sets each partition's endOffset from what the commit confirmed, then publishes.
  auto finish_report = [self, ctx, publish,
                        exactly_once](closed_epoch& r, const kafka::commit_outcome* o) {
    auto& progress = r.progress;
    if (exactly_once) {
      auto& st = self->state;
      progress.guarantee = "exactly-once";
      auto committed = ctx->metrics.transactions_committed.load();
      auto aborted = ctx->metrics.transactions_aborted.load();
      progress.transactions_committed = committed - st.reported_committed;
      progress.transactions_aborted = aborted - st.reported_aborted;
      st.reported_committed = committed;
      st.reported_aborted = aborted;
    }
    for (auto& pp : progress.partitions) {
      kafka::topic_partition tp{pp.topic, pp.partition};
      if (o && o->committed.contains(tp))
        pp.end_offset = o->committed.at(tp);
      else if (auto prior = r.prior_committed.find(tp); prior != r.prior_committed.end())
        pp.end_offset = prior->second;
    }
    if (is_unreachable(r.status)) {
      // That says more than a commit that cannot answer.
    } else if (!o)
      progress.message = "offset commit still pending; endOffset shows what the group "
                         "held before it";
    else if (o->error && exactly_once)
      progress.message = "transaction not committed (" + *o->error +
                         "); endOffset shows what the group holds";
    else if (o->error)
      progress.message = "offset commit failed (" + *o->error +
                         "); endOffset shows what the group holds";
    publish(progress);
  };

  // Closes the epoch: its report, with the counters' deltas (none for an
  // idle epoch between heartbeats, unless `force`).
  auto build_report = [self, ctx](bool force) -> std::optional<pending_report> {
    auto& st = self->state;
    epoch_reading r;
    auto& m = ctx->metrics;
    r.counts = m.epoch_counts();
    for (auto& [tp, p] : st.parts) {
      auto& pos = st.positions.at(tp);
      r.partitions[tp] = {p.epoch_start, pos.watermark, pos.latest,
                          p.committed,   p.consumed,    p.in_flight};
    }
    r.lost = m.lost_by_partition();
    if (!st.limits_reported) r.admitted = &st.planner->ranges();
    r.rate_limited = ctx->admission.enabled();
    r.assigned = st.assigned;
    r.source = {ctx->consumer.health().down_for().count(),
                ctx->consumer.health().last_error()};
    r.sink = {ctx->producer.health().down_for().count(),
              ctx->producer.health().last_error()};
    if (ctx->state_store) r.state = {{m.state_rows(), ctx->state_store->memory_used()}};
    auto closed = st.reports->close(r, wall_clock_ms(), force);
    if (!closed) return std::nullopt;
    st.limits_reported = true;
    return pending_report{0, std::move(*closed)};
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

  // Exactly-once: the epoch's transaction commits with the offsets it covers.
  // The chains are held first (no batch in flight), so that the watermarks
  // they answer cover exactly what the transaction holds; they go on once
  // the commit answered (epoch_committed, which reports the epoch: its
  // counts are the committed transaction's), or restart after an abort.
  auto close_transaction = [self, ctx] {
    auto& st = self->state;
    // The last commit has not answered: this epoch's goes with the next.
    if (st.commit_outstanding || !st.supervisor) return;
    st.commit_outstanding = true;
    auto seq = st.next_commit_seq++;
    auto batch_id = st.reports->batch_id();
    self->request(st.supervisor, 2 * ctx->producer.delivery_timeout(), hold_atom::value)
        .then(
            [self, ctx, seq, batch_id](hold_answer& answer) {
              auto& st = self->state;
              sluice::logger().debug("epoch {}: hold answered {} with {} partition(s)",
                                     batch_id, static_cast<int>(answer.status),
                                     answer.offsets.size());
              kafka::offset_map to_commit;
              for (auto& [tp, watermark] : answer.offsets)
                if (auto it = st.parts.find(tp); it != st.parts.end() && watermark >= 0 &&
                                                 watermark != it->second.committed)
                  to_commit[tp] = watermark;
              if (answer.status != hold_status::held || to_commit.empty()) {
                // Nothing to commit, or not now (a rebalance, a restart):
                // what was written stays in the open transaction.
                if (answer.status == hold_status::held)
                  self->send(st.supervisor, release_atom::value);
                kafka::commit_outcome nothing;
                self->send(self, epoch_committed{seq, std::move(nothing)});
                return;
              }
              auto me = caf::actor_cast<caf::actor>(self);
              ctx->committer.commit_async(
                  to_commit, batch_id, [me, seq](kafka::commit_outcome outcome) {
                    caf::anon_send(me, epoch_committed{seq, std::move(outcome)});
                  });
              self->state.holding_for = seq;
            },
            [self, seq](caf::error& err) {
              // The supervisor did not answer in time: whatever it held goes on.
              // (Gone: the run is stopping, and its final commit is the last.)
              if (err != caf::sec::request_receiver_down)
                sluice::logger().warn("the chains were not held for the epoch's commit "
                                      "({}); it goes with the next",
                                      self->system().render(err));
              self->send(self->state.supervisor, release_atom::value);
              self->send(self, epoch_committed{seq, kafka::commit_outcome{}});
            });
  };

  auto close_epoch = [self, ctx, build_report, finish_report, exactly_once,
                      close_transaction] {
    auto& st = self->state;
    if (exactly_once) {
      close_transaction();
      return;
    }
    if (st.pending) {
      // The previous epoch's commit has not answered: report it as it stands.
      finish_report(st.pending->epoch, nullptr);
      st.pending.reset();
    }
    auto report = build_report(false);
    // Commit every watermark the group does not hold yet.
    kafka::offset_map to_commit;
    for (auto& [tp, p] : st.parts) {
      auto watermark = st.positions.at(tp).watermark;
      if (watermark >= 0 && watermark != p.committed) to_commit[tp] = watermark;
      // The next epoch starts where this one's commit ends.
      p.epoch_start = watermark;
    }
    if (to_commit.empty()) {
      kafka::commit_outcome nothing; // the group already holds every watermark
      if (report) finish_report(report->epoch, &nothing);
      return;
    }
    if (st.commit_outstanding) {
      // The last commit has not answered: this epoch's goes with the next.
      if (report) finish_report(report->epoch, nullptr);
      return;
    }
    st.commit_outstanding = true;
    auto seq = st.next_commit_seq++;
    if (report) {
      report->commit_seq = seq;
      st.pending = std::move(report);
    }
    auto me = caf::actor_cast<caf::actor>(self);
    ctx->committer.commit_async(
        to_commit, st.reports->batch_id() - 1, [me, seq](kafka::commit_outcome outcome) {
          caf::anon_send(me, epoch_committed{seq, std::move(outcome)});
        });
  };

  // Closes the epoch for `which` (all when empty) and hands over their
  // uncommitted watermarks; the caller commits them synchronously and sends
  // the outcome back (`final_committed`), which publishes the report.
  // Lets go of partitions handed over (a revocation, the end of the run).
  auto forget = [self, ctx](const partition_list& taken) {
    auto& st = self->state;
    for (auto& tp : taken) {
      ctx->admission.forget(tp);
      st.planner->forget(tp);
      st.reports->forget(tp);
      st.positions.erase(tp);
      st.parts.erase(tp);
    }
  };

  auto take = [self, build_report, finish_report, forget, exactly_once](
                  const partition_list& which) -> std::pair<offset_map, std::int64_t> {
    auto& st = self->state;
    if (st.pending) {
      finish_report(st.pending->epoch, nullptr);
      st.pending.reset();
    }
    offset_map out;
    partition_list taken;
    for (auto& [tp, p] : st.parts) {
      if (!which.empty() && std::find(which.begin(), which.end(), tp) == which.end())
        continue;
      taken.push_back(tp);
      auto watermark = st.positions.at(tp).watermark;
      if (watermark >= 0 && watermark != p.committed) out[tp] = watermark;
    }
    if (exactly_once && !out.empty()) {
      // Reported once the transaction answered (final_committed), with the
      // counts it committed; the partitions are let go then.
      st.taken = std::move(taken);
      return {std::move(out), st.reports->batch_id()};
    }
    auto report = build_report(!st.parts.empty());
    forget(taken);
    if (report) {
      report->commit_seq = st.next_commit_seq++;
      st.pending = std::move(report);
      if (out.empty()) {
        kafka::commit_outcome nothing;
        finish_report(st.pending->epoch, &nothing);
        st.pending.reset();
      } else {
        st.final_commit_seq = st.pending->commit_seq;
      }
    }
    return {std::move(out), st.reports->batch_id() - 1};
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

  bool runs_to_end = ctx->config.trigger.mode == trigger_options::kind::once ||
                     ctx->config.trigger.mode == trigger_options::kind::available_now;

  auto check_complete = [self, ctx] {
    auto& st = self->state;
    if (st.complete || !st.planner->complete(st.positions)) return;
    st.complete = true;
    if (ctx->on_complete) ctx->on_complete();
  };

  // Admits the next range of every partition. False when nothing is admitted.
  auto open_epoch = [self, ctx] {
    auto& st = self->state;
    auto limits = st.planner->open(st.positions, wall_clock_ms(), [ctx](auto& tp) {
      return ctx->consumer.cached_watermarks(tp).second;
    });
    if (!limits) return false;
    ctx->admission.admit(*limits);
    st.slow_epoch_reported = false;
    st.limits_reported = false;
    return true;
  };

  // With a rate limit: closes the open epoch once it is handled, and opens
  // the next when the trigger is due (at once for availableNow).
  auto advance = [self, ctx, runs_to_end, open_epoch, close_epoch] {
    auto& st = self->state;
    auto& planner = *st.planner;
    if (!ctx->admission.enabled() || st.complete) return;
    if (ctx->config.trigger.mode == trigger_options::kind::once) {
      // One epoch, admitted once every partition of the run is assigned.
      if (st.assigned && planner.once_due(st.positions)) open_epoch();
      return;
    }
    if (planner.is_open()) {
      if (!planner.handled(st.positions)) return;
      planner.close(st.positions);
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
    if (ctx->admission.enabled() && !st.planner->is_open()) return;
    std::string behind;
    for (auto& [tp, pos] : st.positions) {
      auto end = std::max(pos.latest, ctx->consumer.cached_watermarks(tp).second);
      if (auto e = ctx->end_offsets.find(tp); e != ctx->end_offsets.end())
        end = e->second;
      if (ctx->admission.enabled()) {
        auto& ranges = st.planner->ranges();
        auto range = ranges.find(tp);
        if (range == ranges.end()) continue;
        end = std::min(end, range->second.second);
      }
      if (pos.watermark < 0 || end <= pos.watermark) continue;
      // Read to the end of what it can read (an open transaction holds the
      // last stable offset below the high watermark): waiting, not stuck.
      if (pos.stable_end >= 0 && pos.watermark >= pos.stable_end) continue;
      if (!behind.empty()) behind += "; ";
      behind += tp.str() + " handled to " + std::to_string(pos.watermark) + " of " +
                std::to_string(end);
      if (auto c = caf::actor_cast<caf::actor>(st.parts.at(tp).consumer))
        self->send(c, stall_atom::value);
    }
    if (behind.empty()) return;
    st.stall_reported = true;
    sluice::logger().warn("no partition has moved for {} s: {}", still / 1000, behind);
  };

  // Names the partitions an admitted epoch still waits for, once per epoch.
  auto report_slow_epoch = [self] {
    auto& st = self->state;
    auto& planner = *st.planner;
    if (!planner.is_open() || st.slow_epoch_reported ||
        wall_clock_ms() - planner.opened_at_ms() < slow_epoch_ms)
      return;
    st.slow_epoch_reported = true;
    std::string waiting;
    for (auto& [tp, range] : planner.ranges()) {
      auto it = st.positions.find(tp);
      if (it == st.positions.end() || it->second.watermark >= range.second) continue;
      auto& pos = it->second;
      if (!waiting.empty()) waiting += "; ";
      waiting +=
          tp.str() + " handled to " + std::to_string(pos.watermark) + " of [" +
          std::to_string(range.first) + ", " + std::to_string(range.second) + "), " +
          std::to_string(st.parts.at(tp).in_flight) + " in flight, readable to " +
          (pos.stable_end >= 0 ? std::to_string(pos.stable_end) : std::string("the end"));
    }
    sluice::logger().warn("epoch {} has been open for {} s, waiting for: {}",
                          st.reports->batch_id(), slow_epoch_ms / 1000,
                          waiting.empty() ? "its commit" : waiting);
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
      [=](const partition_report& r) {
        // Partitions are registered at assignment: a report that comes after
        // the partition was taken away (a stopped chain's last acks) is stale.
        auto& st = self->state;
        auto it = st.parts.find(r.tp);
        if (it == st.parts.end() || st.rewinding) return;
        auto& p = it->second;
        auto& pos = st.positions.at(r.tp);
        if (r.watermark != pos.watermark || r.consumed != p.consumed) {
          st.last_progress_ms = wall_clock_ms();
          st.stall_reported = false;
        }
        p.consumer = caf::actor_cast<caf::actor_addr>(self->current_sender());
        if (p.epoch_start < 0) p.epoch_start = r.watermark;
        pos.watermark = r.watermark;
        p.consumed = r.consumed;
        p.in_flight = r.in_flight;
        if (r.latest >= 0) pos.latest = std::max(pos.latest, r.latest);
        pos.stable_end = r.stable_end;
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
          if (!st.planner->is_open() && !st.pending) close_epoch();
          st.trigger_due = true;
          advance();
        }
        self->delayed_send(self, interval, epoch_atom::value);
      },
      [=](epoch_committed& r) {
        auto& st = self->state;
        auto& outcome = r.outcome;
        st.commit_outstanding = false;
        for (auto& [tp, off] : outcome.committed)
          if (auto it = st.parts.find(tp); it != st.parts.end())
            it->second.committed = off;
        if (exactly_once) {
          if (st.holding_for == r.seq) {
            // The held chains go on, or restart from the last committed
            // offsets after an abort (the committer aborted it already).
            st.holding_for = 0;
            if (!outcome.error)
              self->send(st.supervisor, release_atom::value);
            else
              self->send(st.supervisor, rewind_atom::value,
                         "the epoch's transaction was not committed: " + *outcome.error);
          }
          // The epoch's report, now that its counts are the transaction's.
          if (auto report = build_report(false)) finish_report(report->epoch, &outcome);
          for (auto& [tp, p] : st.parts)
            p.epoch_start = std::max(p.epoch_start, p.committed);
          serve_waiting_takes();
          advance();
          return;
        }
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
        if (st.pending && st.pending->commit_seq == r.seq) {
          finish_report(st.pending->epoch, &outcome);
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
          st.reports->continue_after(a.batch_id);
          // A partition assigned again starts afresh from where this
          // assignment starts it (another member may have moved it on).
          auto& p = st.parts[a.tp];
          // The input counter is the chain's own: it goes on if it survived.
          auto consumed = p.consumed;
          p = partition_state{};
          p.consumed = consumed;
          p.epoch_start = a.start_offset;
          st.positions[a.tp] = {a.start_offset, a.latest, -1};
          // The group already holds a start read from its commit: a stop
          // right away has nothing to commit (a commit of it could only fail
          // spuriously, e.g. refused by a rebalance, and fail the run).
          if (a.from_commit && a.lost == 0) p.committed = a.start_offset;
          if (auto l = st.planner->once_limit(a.tp)) ctx->admission.admit({{a.tp, *l}});
        }
        check_complete();
        advance();
      },
      [=](supervisor_atom, caf::actor supervisor) {
        self->state.supervisor = std::move(supervisor);
      },
      [=](rewind_atom) {
        // Exactly-once: the open transaction is being aborted. Its watermarks
        // must never be committed (a revocation or a stop meanwhile commits
        // nothing past the last commit), and the stopped chains' last reports
        // are ignored until the restarted ones report.
        auto& st = self->state;
        st.rewinding = true;
        for (auto& [tp, p] : st.parts)
          st.positions.at(tp).watermark = p.committed;
      },
      [=](rewind_atom, const offset_map& restarted) {
        // Every chain restarted from its last committed offset (sent after
        // every stopped chain was gone: none of their reports comes later).
        auto& st = self->state;
        st.rewinding = false;
        for (auto& [tp, offset] : restarted)
          if (auto it = st.positions.find(tp); it != st.positions.end())
            it->second.watermark = offset;
      },
      [=](watermark_atom, const std::string& topic,
          std::int32_t partition) -> std::int64_t {
        auto& positions = self->state.positions;
        auto it = positions.find({topic, partition});
        return it == positions.end() ? -1 : it->second.watermark;
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
      [=](final_committed& r) {
        // The outcome of the commit of what take_atom handed over.
        auto& st = self->state;
        auto& outcome = r.outcome;
        // Refused because the group is rebalancing: the offsets are committed
        // at the next assignment (said then), so this is no error.
        if (outcome.error && outcome.rebalancing)
          sluice::logger().warn("offset commit refused while the group rebalances: {}",
                                *outcome.error);
        else if (outcome.error)
          sluice::logger().error("offset commit failed: {}", *outcome.error);
        if (st.pending && st.pending->commit_seq == st.final_commit_seq) {
          finish_report(st.pending->epoch, &outcome);
          st.pending.reset();
        }
        if (st.taken) {
          // Exactly-once: the epoch's report, with what its transaction held.
          for (auto& [tp, off] : outcome.committed)
            if (auto it = st.parts.find(tp); it != st.parts.end())
              it->second.committed = off;
          if (auto report = build_report(true)) finish_report(report->epoch, &outcome);
          forget(*st.taken);
          st.taken.reset();
        }
      },
  };
}

} // namespace

caf::actor spawn_checkpoint(caf::actor_system& system, run_context* ctx) {
  return system.spawn(checkpoint, ctx);
}

} // namespace sluice::actors
