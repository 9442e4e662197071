#include "actors/supervisor.hpp"

#include "actors/messages.hpp"
#include "actors/partition_consumer.hpp"

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

namespace sluice::actors {

namespace {

struct chain {
  caf::actor head; ///< the consumer actor; invalid while waiting to restart
  std::int64_t start_offset = 0;
  int restarts = 0;
  bool stopping = false;
};

/// How long a drain waits for in-flight records before giving up on them
/// (they are not committed, so they are read again by the next owner).
constexpr auto drain_timeout = std::chrono::seconds(60);

} // namespace

struct supervisor_state {
  std::map<kafka::topic_partition, chain> chains;
  std::uint32_t next_generation = 1;
};

namespace {

caf::behavior supervisor(caf::stateful_actor<supervisor_state>* self, run_context* ctx,
                         caf::actor checkpoint) {
  auto start_chain = [self, ctx, checkpoint](const kafka::topic_partition& tp,
                                             std::int64_t offset) {
    auto& c = self->state.chains[tp];
    c.start_offset = offset;
    c.head = spawn_partition_consumer(self, ctx, tp, offset,
                                      self->state.next_generation++, checkpoint);
    self->monitor(c.head);
  };

  // Drains the chains of `which` (all when empty); `done` runs when every one stopped.
  auto drain = [self](partition_list which, caf::typed_response_promise<bool> rp) {
    auto& chains = self->state.chains;
    auto pending = std::make_shared<std::size_t>(1);
    auto finish_one = [rp, pending]() mutable {
      if (--*pending == 0) rp.deliver(true);
    };
    for (auto& [tp, c] : chains) {
      if (!which.empty() && std::find(which.begin(), which.end(), tp) == which.end())
        continue;
      c.stopping = true;
      if (!c.head) continue; // waiting for a restart: nothing in flight
      ++*pending;
      auto head = c.head;
      self->request(head, drain_timeout, drain_atom::value)
          .then(
              [self, head, finish_one](std::int64_t) mutable {
                self->send_exit(head, caf::exit_reason::user_shutdown);
                finish_one();
              },
              [self, head, finish_one, tp = tp](caf::error& err) mutable {
                spdlog::warn(
                    "{}: drain gave up ({}); its in-flight records are not committed",
                    tp.str(), self->system().render(err));
                self->send_exit(head, caf::exit_reason::user_shutdown);
                finish_one();
              });
    }
    finish_one();
  };

  self->set_down_handler([self, ctx](caf::down_msg& dm) {
    auto& chains = self->state.chains;
    for (auto it = chains.begin(); it != chains.end(); ++it) {
      auto& [tp, c] = *it;
      if (!c.head || c.head.address() != dm.source) continue;
      c.head = nullptr;
      if (c.stopping) {
        chains.erase(it);
        return;
      }
      auto why = self->system().render(dm.reason);
      ++c.restarts;
      ++ctx->metrics.restarts;
      auto budget = ctx->config.runtime.restart_budget;
      if (c.restarts > budget) {
        ctx->on_fatal("partition " + tp.str() + " failed " + std::to_string(c.restarts) +
                      " times (runtime.restartBudget is " + std::to_string(budget) +
                      "); last error: " + why);
        return;
      }
      auto backoff =
          ctx->config.runtime.restart_backoff * (1 << std::min(c.restarts - 1, 10));
      spdlog::warn("{}: chain failed ({}); restart {} of {} in {} ms", tp.str(), why,
                   c.restarts, budget, backoff.count());
      self->delayed_send(self, backoff, restart_atom::value, tp.topic, tp.partition);
      return;
    }
  });

  return {
      [=](assign_atom, const assignment& parts) {
        for (auto& p : parts) {
          auto& c = self->state.chains[p.tp];
          c.stopping = false;
          c.restarts = 0;
          if (c.head) // reassigned before the old chain stopped
            self->send_exit(c.head, caf::exit_reason::user_shutdown);
          start_chain(p.tp, p.start_offset);
        }
        return true;
      },
      [=](restart_atom, const std::string& topic, std::int32_t partition) {
        kafka::topic_partition tp{topic, partition};
        auto it = self->state.chains.find(tp);
        if (it == self->state.chains.end() || it->second.stopping || it->second.head)
          return;
        self->request(checkpoint, caf::infinite, watermark_atom::value, topic, partition)
            .then([=](std::int64_t watermark) {
              auto it = self->state.chains.find(tp);
              if (it == self->state.chains.end() || it->second.stopping ||
                  it->second.head)
                return;
              auto from = std::max(watermark, it->second.start_offset);
              ctx->consumer.seek(tp, from);
              spdlog::info("{}: chain restarted from offset {}", tp.str(), from);
              start_chain(tp, from);
            });
      },
      [=](revoke_atom, partition_list& which) -> caf::result<bool> {
        auto rp = self->make_response_promise<bool>();
        if (which.empty()) return true;
        drain(std::move(which), rp);
        return rp;
      },
      [=](stop_atom) {
        for (auto& [tp, c] : self->state.chains)
          if (c.head) self->send_exit(c.head, caf::exit_reason::user_shutdown);
        self->state.chains.clear();
        self->quit();
        return true;
      },
      [=](drain_atom) -> caf::result<bool> {
        auto rp = self->make_response_promise<bool>();
        drain({}, rp);
        return rp;
      },
  };
}

} // namespace

caf::actor spawn_supervisor(caf::actor_system& system, run_context* ctx,
                            caf::actor checkpoint) {
  return system.spawn(supervisor, ctx, std::move(checkpoint));
}

} // namespace sluice::actors
