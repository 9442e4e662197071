#include "actors/supervisor.hpp"

#include "actors/messages.hpp"
#include "actors/partition_consumer.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <deque>
#include <set>

namespace sluice::actors {

namespace {

using steady = std::chrono::steady_clock;

struct chain {
  caf::actor head; ///< the consumer actor; invalid while waiting to restart
  std::int64_t start_offset = 0;
  std::shared_ptr<partition_shared> shared = std::make_shared<partition_shared>();
  /// The current generation's open deliveries.
  std::shared_ptr<chain_deliveries> deliveries;
  /// When the chain failed, within runtime.restartWindow.
  std::deque<steady::time_point> failures;
  bool stopping = false;
};

/// Lanes per partition at most, whatever minPartitions asks: each lane is
/// three or four actors.
constexpr std::int64_t max_lanes = 64;

/// Interval at which a restart or a drain checks that a chain's deliveries
/// are all reported.
constexpr auto delivery_check = std::chrono::milliseconds(10);
/// Added to the producer's delivery timeout where a wait is bounded by it.
constexpr auto drain_margin = std::chrono::seconds(5);

} // namespace

/// A drain in progress: chains still to stop, deliveries still to report.
struct pending_drain {
  caf::typed_response_promise<bool> rp;
  std::set<caf::actor_addr> heads; ///< chains not stopped yet
  std::vector<std::shared_ptr<chain_deliveries>> open;
  steady::time_point deadline;
};

/// Exactly-once: a hold in progress (hold_atom), chains still to answer.
struct pending_hold {
  caf::typed_response_promise<hold_answer> rp;
  std::set<caf::actor_addr> heads;
  offset_map offsets;
};

/// Exactly-once: a rewind in progress. Every chain is stopped, and once none
/// can write any more (heads gone, deliveries reported) the transaction is
/// aborted and every chain restarts from its restart point.
struct pending_rewind {
  std::string why;
  bool aborted = false; ///< the transaction is aborted already
  std::set<caf::actor_addr> heads;
  std::vector<std::shared_ptr<chain_deliveries>> open;
  steady::time_point deadline;
  /// Assignments that came meanwhile: started once the abort is done, so
  /// that nothing of theirs lands in the aborted transaction.
  std::vector<kafka::assigned_partition> assigned;
};

struct supervisor_state {
  std::map<kafka::topic_partition, chain> chains;
  std::map<std::uint64_t, pending_drain> drains;
  std::uint64_t next_drain = 1;
  std::uint32_t next_generation = 1;
  std::optional<pending_hold> hold;
  /// Exactly-once: every chain is held for a commit until release_atom (or
  /// a rewind); assignments wait meanwhile, as new chains would write into
  /// the transaction being committed without its offsets.
  bool held = false;
  std::vector<kafka::assigned_partition> assigned_while_held;
  std::optional<pending_rewind> rewind;
  /// Rewinds within runtime.restartWindow (exactly-once's restart budget).
  std::deque<steady::time_point> rewinds;
};

namespace {

caf::behavior supervisor(caf::stateful_actor<supervisor_state>* self, run_context* ctx,
                         caf::actor checkpoint) {
  auto start_chain = [self, ctx, checkpoint](const kafka::topic_partition& tp,
                                             std::int64_t offset) {
    auto& c = self->state.chains[tp];
    c.deliveries = std::make_shared<chain_deliveries>();
    c.head =
        spawn_partition_consumer(self, ctx, tp, offset, self->state.next_generation++,
                                 c.shared, c.deliveries, checkpoint);
    self->monitor(c.head);
  };

  // Drains the chains of `which` (all when empty) and answers `rp` once every
  // one stopped and nothing it wrote is still in flight in the producer.
  auto drain = [self, ctx](partition_list which, caf::typed_response_promise<bool> rp) {
    auto& st = self->state;
    auto id = st.next_drain++;
    auto& d = st.drains[id];
    d.rp = rp;
    d.deadline = steady::now() + 2 * ctx->producer.delivery_timeout() + drain_margin;
    std::vector<kafka::topic_partition> idle;
    for (auto& [tp, c] : st.chains) {
      if (!which.empty() && std::find(which.begin(), which.end(), tp) == which.end())
        continue;
      c.stopping = true;
      if (c.deliveries) d.open.push_back(c.deliveries);
      if (!c.head) { // waiting for a restart: nothing in flight
        idle.push_back(tp);
        continue;
      }
      auto head = c.head;
      d.heads.insert(head.address());
      // librdkafka reports every message within its delivery timeout, so a
      // healthy drain never needs longer. A chain that dies meanwhile counts
      // as stopped (see the down handler).
      self->request(head, ctx->producer.delivery_timeout() + drain_margin,
                    drain_atom::value)
          .then(
              [self, head, id](std::int64_t) {
                self->send_exit(head, caf::exit_reason::user_shutdown);
                self->send(self, drain_atom::value, id, head.address());
              },
              [self, head, id, tp = tp](caf::error& err) {
                if (err != caf::sec::request_receiver_down)
                  sluice::logger().warn(
                      "{}: drain gave up ({}); its in-flight records are not committed",
                      tp.str(), self->system().render(err));
                self->send_exit(head, caf::exit_reason::user_shutdown);
                self->send(self, drain_atom::value, id, head.address());
              });
    }
    for (auto& tp : idle)
      st.chains.erase(tp);
    self->send(self, drain_atom::value, id, caf::actor_addr{});
  };

  // Starts the chains of newly assigned partitions.
  auto start_assigned = [self, ctx, start_chain](const assignment& parts) {
    // Lanes: enough parallel chains per partition for minPartitions.
    if (auto min = ctx->config.source.min_partitions) {
      std::int64_t assigned = 0;
      for (auto& [tp, c] : self->state.chains)
        if (!c.stopping) ++assigned;
      for (auto& p : parts)
        if (auto it = self->state.chains.find(p.tp);
            it == self->state.chains.end() || it->second.stopping)
          ++assigned;
      auto lanes = assigned == 0 ? 1 : (*min + assigned - 1) / assigned;
      ctx->lanes_per_partition = static_cast<int>(
          std::clamp<std::int64_t>(lanes, 1, static_cast<std::int64_t>(max_lanes)));
    }
    for (auto& p : parts) {
      auto& c = self->state.chains[p.tp];
      c.stopping = false;
      c.failures.clear();
      c.shared->latest = p.latest;
      if (c.head) { // reassigned before the old chain stopped
        if (c.deliveries) c.deliveries->retired = true;
        self->send_exit(c.head, caf::exit_reason::user_shutdown);
      }
      c.start_offset = p.start_offset;
      start_chain(p.tp, p.start_offset);
    }
  };

  // Exactly-once: stops every chain that is not being drained and has the
  // transaction aborted once none of them can write any more (`aborted`: it
  // is already); then rewind_step_atom restarts them from their restart
  // points. The checkpoint forgets the watermarks at once: they cover outputs
  // of the transaction being aborted, and must not be committed.
  auto rewind = [self, ctx, checkpoint](const std::string& why, bool aborted) {
    auto& st = self->state;
    if (st.rewind) return; // one abort takes back everything since the commit
    auto now = steady::now();
    st.rewinds.push_back(now);
    while (!st.rewinds.empty() &&
           now - st.rewinds.front() > ctx->config.runtime.restart_window)
      st.rewinds.pop_front();
    auto budget = ctx->config.runtime.restart_budget;
    if (static_cast<int>(st.rewinds.size()) > budget) {
      ctx->on_fatal("exactly-once: transactions aborted " +
                    std::to_string(st.rewinds.size()) +
                    " times within runtime.restartWindow (runtime.restartBudget is " +
                    std::to_string(budget) + "); last: " + why);
      return;
    }
    sluice::logger().warn("exactly-once: {}; aborting the open transaction and "
                          "restarting every partition from its last committed offset",
                          why);
    self->send(checkpoint, rewind_atom::value);
    auto& r = st.rewind.emplace();
    r.why = why;
    r.aborted = aborted;
    r.deadline = now + ctx->producer.delivery_timeout() + drain_margin;
    r.assigned = std::move(st.assigned_while_held);
    st.assigned_while_held.clear();
    st.held = false;
    if (st.hold) {
      st.hold->rp.deliver(hold_answer{hold_status::rewinding, {}});
      st.hold.reset();
    }
    for (auto& [tp, c] : st.chains) {
      if (c.stopping) continue; // a drain for a revocation has it
      if (c.deliveries) {
        c.deliveries->retired = true;
        r.open.push_back(c.deliveries);
      }
      if (c.head) {
        r.heads.insert(c.head.address());
        self->send_exit(c.head, caf::exit_reason::user_shutdown);
        c.head = nullptr;
      }
    }
    self->send(self, rewind_step_atom::value);
  };

  self->set_down_handler([self, ctx, rewind](caf::down_msg& dm) {
    if (auto& r = self->state.rewind; r && r->heads.erase(dm.source) > 0) return;
    auto& chains = self->state.chains;
    for (auto it = chains.begin(); it != chains.end(); ++it) {
      auto& [tp, c] = *it;
      if (!c.head || c.head.address() != dm.source) continue;
      c.head = nullptr;
      if (c.deliveries) c.deliveries->retired = true;
      if (c.stopping) {
        // A drain waiting for this chain need not wait for its answer.
        for (auto& [id, d] : self->state.drains)
          if (d.heads.contains(dm.source))
            self->send(self, drain_atom::value, id, dm.source);
        // Exactly-once: a chain that failed while draining may have left a
        // partial batch in the transaction: it must not commit.
        bool failed = dm.reason && dm.reason != caf::exit_reason::user_shutdown;
        auto name = tp.str();
        chains.erase(it);
        if (failed && ctx->committer.discards_on_failure())
          rewind(name + ": chain failed while draining (" +
                     self->system().render(dm.reason) + ")",
                 false);
        return;
      }
      auto why = self->system().render(dm.reason);
      // The budget counts failures within the window, so that transient
      // failures spread over weeks never end a long run.
      auto now = steady::now();
      c.failures.push_back(now);
      while (!c.failures.empty() &&
             now - c.failures.front() > ctx->config.runtime.restart_window)
        c.failures.pop_front();
      auto recent = static_cast<int>(c.failures.size());
      auto budget = ctx->config.runtime.restart_budget;
      if (recent > budget) {
        ctx->on_fatal("partition " + tp.str() + " failed " + std::to_string(recent) +
                      " times within runtime.restartWindow (runtime.restartBudget is " +
                      std::to_string(budget) + "); last error: " + why);
        return;
      }
      if (ctx->committer.discards_on_failure()) {
        // Its outputs since the last commit are in the open transaction with
        // every other chain's: all of it is taken back, and all restart.
        rewind(tp.str() + ": chain failed (" + why + ")", false);
        return;
      }
      auto backoff =
          ctx->config.runtime.restart_backoff * (1 << std::min(recent - 1, 10));
      sluice::logger().warn("{}: chain failed ({}); restart {} of {} in {} ms", tp.str(),
                            why, recent, budget, backoff.count());
      auto deadline = now + backoff + ctx->producer.delivery_timeout() + drain_margin;
      self->delayed_send(self, backoff, restart_atom::value, tp.topic, tp.partition,
                         deadline.time_since_epoch().count());
      return;
    }
  });

  return {
      [=](assign_atom, const assignment& parts) {
        auto& st = self->state;
        if (auto& r = st.rewind) {
          // Started once the transaction is aborted (rewind_step_atom).
          r->assigned.insert(r->assigned.end(), parts.begin(), parts.end());
          return true;
        }
        if (st.held) {
          // Started at release_atom, after the commit.
          st.assigned_while_held.insert(st.assigned_while_held.end(), parts.begin(),
                                        parts.end());
          return true;
        }
        start_assigned(parts);
        return true;
      },
      [=](restart_atom, const std::string& topic, std::int32_t partition,
          steady::rep deadline) {
        kafka::topic_partition tp{topic, partition};
        auto it = self->state.chains.find(tp);
        if (it == self->state.chains.end() || it->second.stopping || it->second.head)
          return;
        auto& c = it->second;
        // The failed chain's outputs still in the producer must land before
        // the replay's, or a key's records could be written out of order.
        if (c.deliveries && c.deliveries->open.load() > 0) {
          if (steady::now().time_since_epoch().count() >= deadline) {
            ctx->on_fatal("partition " + tp.str() +
                          ": the failed chain's outputs were not reported within the "
                          "producer's message.timeout.ms; not restarting");
            return;
          }
          self->delayed_send(self, delivery_check, restart_atom::value, topic, partition,
                             deadline);
          return;
        }
        // Where the guarantee says a replay starts (at-least-once: the watermark).
        auto from =
            ctx->committer.restart_point(tp, c.shared->watermark.load(), c.start_offset);
        ctx->consumer.seek(tp, from);
        ++ctx->metrics.restarts; // counted when done: a stop may come first
        sluice::logger().info("{}: chain restarted from offset {}", tp.str(), from);
        start_chain(tp, from);
      },
      [=](revoke_atom, partition_list& which, bool lost) -> caf::result<bool> {
        // An empty revoke (a member that held nothing) is answered at once.
        if (which.empty()) return true;
        if (lost) {
          std::vector<std::shared_ptr<chain_deliveries>> lost_deliveries;
          // Nothing of them can be committed: stop them now, write nothing more.
          for (auto& tp : which) {
            auto it = self->state.chains.find(tp);
            if (it == self->state.chains.end()) continue;
            auto& c = it->second;
            c.stopping = true;
            if (c.deliveries) c.deliveries->retired = true;
            if (ctx->committer.discards_on_failure() && c.deliveries)
              lost_deliveries.push_back(c.deliveries);
            if (c.head)
              self->send_exit(c.head, caf::exit_reason::user_shutdown);
            else
              self->state.chains.erase(it);
          }
          if (ctx->committer.discards_on_failure()) {
            // Their outputs since the last commit are in the open transaction,
            // which the group's new generation would refuse anyway.
            rewind("partitions lost (the group moved on without this member)", false);
            if (auto& r = self->state.rewind)
              r->open.insert(r->open.end(), lost_deliveries.begin(),
                             lost_deliveries.end());
          }
          return true;
        }
        auto rp = self->make_response_promise<bool>();
        drain(std::move(which), rp);
        return rp;
      },
      [=](hold_atom) -> caf::result<hold_answer> {
        auto& st = self->state;
        if (st.rewind) return hold_answer{hold_status::rewinding, {}};
        if (st.hold || st.held || !st.drains.empty())
          return hold_answer{hold_status::busy, {}};
        for (auto& [tp, c] : st.chains)
          if (c.stopping || !c.head) return hold_answer{hold_status::busy, {}};
        if (st.chains.empty()) return hold_answer{hold_status::held, {}};
        auto& h = st.hold.emplace();
        h.rp = self->make_response_promise<hold_answer>();
        auto rp = h.rp;
        for (auto& [tp, c] : st.chains) {
          auto head = c.head;
          h.heads.insert(head.address());
          // A healthy chain settles its batches within the delivery timeout.
          self->request(head, ctx->producer.delivery_timeout() + drain_margin,
                        hold_atom::value)
              .then(
                  [self, tp = tp, addr = head.address()](std::int64_t watermark) {
                    auto& st = self->state;
                    auto& h = st.hold;
                    if (!h || h->heads.erase(addr) == 0) return;
                    h->offsets[tp] = watermark;
                    if (!h->heads.empty()) return;
                    st.held = true;
                    h->rp.deliver(hold_answer{hold_status::held, std::move(h->offsets)});
                    h.reset();
                  },
                  [self](caf::error&) {
                    // A chain died (its down message rewinds) or is stuck:
                    // no commit this epoch; the others go on.
                    auto& st = self->state;
                    if (!st.hold) return;
                    st.hold->rp.deliver(hold_answer{hold_status::busy, {}});
                    st.hold.reset();
                    for (auto& [tp, c] : st.chains)
                      if (c.head) self->send(c.head, release_atom::value);
                  });
        }
        return rp;
      },
      [=](release_atom) {
        auto& st = self->state;
        st.held = false;
        for (auto& [tp, c] : st.chains)
          if (c.head) self->send(c.head, release_atom::value);
        auto assigned = std::move(st.assigned_while_held);
        st.assigned_while_held.clear();
        if (!assigned.empty()) start_assigned(assigned);
      },
      [=](rewind_atom, const std::string& why) { rewind(why, true); },
      [=](rewind_step_atom) {
        // A rewind: once no stopped chain can write any more, the abort; once
        // that is done, every chain restarts where the last commit left it.
        auto& st = self->state;
        if (!st.rewind) return;
        auto& r = *st.rewind;
        bool busy =
            !r.heads.empty() || std::any_of(r.open.begin(), r.open.end(),
                                            [](auto& o) { return o->open.load() > 0; });
        if (busy) {
          if (steady::now() >= r.deadline) {
            ctx->on_fatal("exactly-once: the stopped chains' outputs were not reported "
                          "within the producer's message.timeout.ms; cannot abort");
            return;
          }
          self->delayed_send(self, delivery_check, rewind_step_atom::value);
          return;
        }
        if (!r.aborted) {
          r.aborted = true;
          auto me = caf::actor_cast<caf::actor>(self);
          ctx->committer.discard(r.why,
                                 [me] { caf::anon_send(me, rewind_step_atom::value); });
          return;
        }
        auto assigned = std::move(r.assigned);
        st.rewind.reset();
        offset_map restarted;
        for (auto& [tp, c] : st.chains) {
          if (c.stopping || c.head) continue;
          auto from = ctx->committer.restart_point(tp, c.shared->watermark.load(),
                                                   c.start_offset);
          ctx->consumer.seek(tp, from);
          ++ctx->metrics.restarts;
          restarted[tp] = from;
          start_chain(tp, from);
        }
        // Reported after every stopped chain is gone: nothing of theirs
        // comes after it.
        self->send(checkpoint, rewind_atom::value, restarted);
        if (!restarted.empty())
          sluice::logger().info("exactly-once: {} partition(s) restarted from their last "
                                "committed offsets",
                                restarted.size());
        if (!assigned.empty()) start_assigned(assigned);
      },
      [=](stop_atom) {
        for (auto& [tp, c] : self->state.chains) {
          if (c.deliveries) c.deliveries->retired = true;
          if (c.head) self->send_exit(c.head, caf::exit_reason::user_shutdown);
        }
        self->state.chains.clear();
        // Nobody may wait for a drain that can no longer finish.
        for (auto& [id, d] : self->state.drains)
          d.rp.deliver(false);
        self->state.drains.clear();
        self->quit();
        return true;
      },
      [=](drain_atom) -> caf::result<bool> {
        auto rp = self->make_response_promise<bool>();
        drain({}, rp);
        return rp;
      },
      [=](drain_atom, std::uint64_t id, const caf::actor_addr& stopped) {
        // A chain of drain `id` stopped, or a delivery check is due.
        auto& drains = self->state.drains;
        auto it = drains.find(id);
        if (it == drains.end()) return;
        auto& d = it->second;
        if (stopped) d.heads.erase(stopped);
        if (!d.heads.empty()) return;
        // A drain that gave up killed its chain: what that chain had already
        // handed to librdkafka must be reported before the partition is let go.
        bool busy = std::any_of(d.open.begin(), d.open.end(),
                                [](auto& o) { return o->open.load() > 0; });
        if (busy && steady::now() < d.deadline) {
          self->delayed_send(self, delivery_check, drain_atom::value, id,
                             caf::actor_addr{});
          return;
        }
        if (busy)
          sluice::logger().error(
              "outputs of drained partitions were not reported within the "
              "producer's message.timeout.ms");
        d.rp.deliver(!busy);
        drains.erase(it);
      },
  };
}

} // namespace

caf::actor spawn_supervisor(caf::actor_system& system, run_context* ctx,
                            caf::actor checkpoint) {
  return system.spawn(supervisor, ctx, std::move(checkpoint));
}

} // namespace sluice::actors
