#include "actors/pipeline.hpp"

#include "actors/checkpoint.hpp"
#include "actors/messages.hpp"
#include "actors/run_context.hpp"
#include "actors/supervisor.hpp"
#include "runtime/errors.hpp"
#include "runtime/kafka/consumer.hpp"
#include "runtime/kafka/producer.hpp"

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

#include <condition_variable>

namespace sluice {

using namespace actors;

struct pipeline::impl : kafka::rebalance_listener {
  pipeline_config config;
  std::unique_ptr<kafka::producer> producer;
  std::unique_ptr<kafka::group_consumer> consumer;
  std::function<void(record_batch&)> stage;
  std::function<void(const epoch_progress&)> progress;

  std::mutex mutex;
  std::condition_variable changed;
  bool stop_requested = false;
  bool complete = false;
  std::optional<std::string> fatal;
  std::optional<std::chrono::steady_clock::time_point> first_assigned;

  caf::actor_system* system = nullptr;
  caf::actor supervisor_actor;
  caf::actor checkpoint_actor;

  void fail(const std::string& why) {
    std::lock_guard<std::mutex> guard{mutex};
    if (!fatal) fatal = why;
    changed.notify_all();
  }

  // -- rebalance_listener (the consumer's poll thread) ------------------------

  void on_assigned(const std::vector<kafka::assigned_partition>& parts) override {
    std::string list;
    for (auto& p : parts)
      list +=
          (list.empty() ? "" : ", ") + p.tp.str() + "@" + std::to_string(p.start_offset);
    spdlog::info("assigned: {}", list.empty() ? "(none)" : list);
    {
      std::lock_guard<std::mutex> guard{mutex};
      if (!first_assigned && !parts.empty())
        first_assigned = std::chrono::steady_clock::now();
    }
    caf::scoped_actor self{*system};
    self->request(supervisor_actor, caf::infinite, assign_atom::value, assignment(parts))
        .receive([](bool) {},
                 [&](caf::error& err) {
                   fail("cannot start partition chains: " + system->render(err));
                 });
  }

  void on_revoked(const std::vector<kafka::topic_partition>& parts) override {
    spdlog::info("revoked {} partition(s): draining and committing", parts.size());
    caf::scoped_actor self{*system};
    self->request(supervisor_actor, caf::infinite, revoke_atom::value,
                  partition_list(parts))
        .receive([](bool) {},
                 [](caf::error&) {}); // a stopped supervisor has nothing to drain
    commit_final(self, partition_list(parts));
  }

  void on_error(const std::string& what, bool is_fatal) override {
    if (is_fatal)
      fail("Kafka consumer: " + what);
    else
      spdlog::warn("Kafka consumer: {}", what);
  }

  /// Takes the watermarks of `parts` (all when empty) from the checkpoint and
  /// commits them synchronously.
  void commit_final(caf::scoped_actor& self, partition_list parts) {
    offset_map offsets;
    self->request(checkpoint_actor, caf::infinite, take_atom::value, std::move(parts))
        .receive([&](offset_map& m) { offsets = std::move(m); }, [](caf::error&) {});
    if (offsets.empty()) return;
    if (auto err = consumer->commit(offsets, true))
      spdlog::error("final offset commit failed: {}; those records will be read again",
                    *err);
    else
      spdlog::info("committed the offsets of {} partition(s)", offsets.size());
    for (auto& [tp, off] : offsets)
      spdlog::debug("committed {} at {}", tp.str(), off);
  }
};

pipeline::pipeline(pipeline_config config) : impl_(std::make_unique<impl>()) {
  impl_->config = std::move(config);
  auto& cfg = impl_->config;
  auto sink_props = cfg.sink.kafka;
  sink_props["bootstrap.servers"] = cfg.sink.bootstrap_servers;
  impl_->producer = std::make_unique<kafka::producer>(std::move(sink_props), "sink");
  impl_->consumer = std::make_unique<kafka::group_consumer>(cfg.source);
}

pipeline::~pipeline() = default;

void pipeline::set_stage(std::function<void(record_batch&)> fn) {
  impl_->stage = std::move(fn);
}

void pipeline::on_progress(std::function<void(const epoch_progress&)> fn) {
  impl_->progress = std::move(fn);
}

void pipeline::stop() {
  std::lock_guard<std::mutex> guard{impl_->mutex};
  impl_->stop_requested = true;
  impl_->changed.notify_all();
}

run_summary pipeline::run() {
  auto& im = *impl_;
  auto& cfg = im.config;
  auto started = std::chrono::steady_clock::now();
  // Declared before the actor system: it must outlive every actor.
  run_context ctx{cfg,
                  *im.consumer,
                  *im.producer,
                  record_router(cfg.route),
                  im.stage,
                  {},
                  {},
                  stable_uuid(cfg.name + "/" + cfg.source.group_id),
                  random_uuid(),
                  im.progress,
                  [&im] {
                    std::lock_guard<std::mutex> guard{im.mutex};
                    im.complete = true;
                    im.changed.notify_all();
                  },
                  [&im](const std::string& why) { im.fail(why); }};
  if (cfg.trigger.mode == trigger_options::kind::available_now) {
    ctx.end_offsets =
        im.consumer->end_offsets(cfg.source.subscribe, std::chrono::seconds(30));
    spdlog::info("availableNow: reading up to the end offsets of {} partition(s)",
                 ctx.end_offsets.size());
  }
  std::string topics;
  for (auto& t : cfg.source.subscribe)
    topics += (topics.empty() ? "" : ",") + t;
  spdlog::info("pipeline `{}` (run {}): {} from {} as group `{}` -> {}", cfg.name,
               ctx.run_id, topics, cfg.source.bootstrap_servers, cfg.source.group_id,
               cfg.sink.bootstrap_servers);
  {
    caf::actor_system_config system_config;
    caf::actor_system system{system_config};
    im.system = &system;
    im.checkpoint_actor = spawn_checkpoint(system, &ctx);
    im.supervisor_actor = spawn_supervisor(system, &ctx, im.checkpoint_actor);
    try {
      im.consumer->start(im);
    } catch (const std::exception& e) {
      im.fail(e.what()); // the shutdown below still stops every actor
    }
    {
      std::unique_lock<std::mutex> lock{im.mutex};
      im.changed.wait(lock, [&] { return im.stop_requested || im.complete || im.fatal; });
    }
    bool failed = im.fatal.has_value();
    spdlog::info(failed ? "stopping after a fatal error"
                        : "stopping: draining in-flight records");
    caf::scoped_actor self{system};
    if (!failed)
      self->request(im.supervisor_actor, caf::infinite, drain_atom::value)
          .receive([](bool) {}, [](caf::error&) {});
    // Only acknowledged offsets are in the checkpoint: committing is safe
    // even after a failure.
    im.commit_final(self, {});
    self->request(im.supervisor_actor, caf::infinite, stop_atom::value)
        .receive([](bool) {}, [](caf::error&) {});
    im.consumer->close();
    self->send_exit(im.checkpoint_actor, caf::exit_reason::user_shutdown);
    // Every delivery report must arrive while the actors can still take it.
    if (!im.producer->flush(std::chrono::seconds(30))) {
      spdlog::error("some outputs were not acknowledged in time; their inputs were not "
                    "committed and will be read again");
      im.producer->purge();
    }
    im.supervisor_actor = nullptr;
    im.checkpoint_actor = nullptr;
    im.system = nullptr;
  }
  run_summary out;
  out.ok = !im.fatal;
  out.error = im.fatal.value_or("");
  out.input_rows = ctx.metrics.input_rows.load();
  out.output_rows = ctx.metrics.output_rows.load();
  out.dlq_rows = ctx.metrics.dlq_rows.load();
  out.rows_by_topic = ctx.metrics.rows_by_topic();
  out.max_in_flight = ctx.metrics.max_in_flight.load();
  out.pauses = ctx.metrics.pauses.load();
  out.restarts = ctx.metrics.restarts.load();
  auto ended = std::chrono::steady_clock::now();
  out.seconds = std::chrono::duration<double>(ended - started).count();
  if (im.first_assigned)
    out.processing_seconds =
        std::chrono::duration<double>(ended - *im.first_assigned).count();
  return out;
}

} // namespace sluice
