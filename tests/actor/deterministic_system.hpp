#pragma once

// The actor tier: Sluice's actors on CAF's deterministic test_coordinator.
// Nothing runs until the test says so (`run()`), and time moves only when the
// test moves it (`advance_time()`): orderings and timeouts are tested
// without threads, sleeps or a broker. Fakes stand for the I/O around the
// actor under test: a collector for the next stage, a scripted user actor.

#include <sluice/record.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <memory>
#include <vector>

namespace sluice::testing {

class deterministic_system {
public:
  deterministic_system() : sys_(configure(cfg_)), sched_(coordinator(sys_)) {
    sched_.clock().current_time += std::chrono::hours(1); // not the epoch
  }
  ~deterministic_system() { sched_.run(); }

  caf::actor_system& sys() { return sys_; }
  /// Runs every job there is, until all mailboxes are empty.
  std::size_t run() { return sched_.run(); }
  /// Moves the clock on by `d`, firing the timeouts (request timeouts,
  /// delayed sends) due by then; returns how many fired.
  std::size_t advance_time(std::chrono::milliseconds d) { return sched_.advance_time(d); }

private:
  static caf::actor_system_config& configure(caf::actor_system_config& cfg) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    return cfg;
  }
  static caf::scheduler::test_coordinator& coordinator(caf::actor_system& sys) {
    return dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  }

  caf::actor_system_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
};

/// A fake next stage: keeps every batch it receives, in arrival order.
struct collected_batches {
  std::vector<batch_ptr> batches;
};

inline caf::actor spawn_collector(caf::actor_system& sys,
                                  std::shared_ptr<collected_batches> out) {
  return sys.spawn([out](caf::event_based_actor*) -> caf::behavior {
    return {[out](batch_ptr& b) { out->batches.push_back(std::move(b)); }};
  });
}

/// A batch of one record per offset in [begin, end) of orders/0.
inline batch_ptr batch_of(std::int64_t begin, std::int64_t end) {
  auto b = std::make_shared<record_batch>();
  b->topic = "orders";
  b->partition = 0;
  b->begin_offset = begin;
  b->end_offset = end;
  for (auto o = begin; o < end; ++o) {
    auto& r = b->records.emplace_back();
    r.offset = o;
    r.value = "{\"n\":" + std::to_string(o) + "}";
  }
  return b;
}

} // namespace sluice::testing
