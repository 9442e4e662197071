#include "actors/checkpoint.hpp"
#include "actors/messages.hpp"
#include "actors/rebalance_bridge.hpp"
#include "actors/run_context.hpp"
#include "actors/run_control.hpp"
#include "actors/stages.hpp"
#include "actors/supervisor.hpp"
#include "core/log.hpp"
#include "dedup/changelog.hpp"
#include "dedup/state_guard.hpp"
#include "guarantee/transaction_committer.hpp"
#include "kafka/config.hpp"
#include "kafka/consumer.hpp"
#include "kafka/prefetch_policy.hpp"
#include "kafka/producer.hpp"
#include "kafka/source_bounds.hpp"
#include "state/state_store.hpp"

#include <sluice/errors.hpp>
#include <sluice/pipeline.hpp>

#include <caf/all.hpp>

#include <algorithm>
#include <optional>

namespace sluice {

using namespace actors;
using kafka::with_prefetch_limits;

struct pipeline::impl {
  pipeline_config config;
  std::unique_ptr<kafka::producer> producer;
  std::unique_ptr<kafka::group_consumer> consumer;
  /// Exactly-once: the run's transactions (made once the consumer is final;
  /// goes before the clients it calls).
  std::unique_ptr<guarantee::transaction_committer> transactions;
  /// Dedup state; opened at construction, so that a directory in use by
  /// another process fails at start. Closed after every actor is gone.
  std::unique_ptr<state::store> state;
  std::map<std::string, std::string> sink_props;
  std::function<void(record_batch&)> stage;
  std::vector<processing_step> steps;
  std::vector<std::function<void(const epoch_progress&)>> progress_listeners;
  /// The app's own actor system (use_actor_system), or null: one per run.
  caf::actor_system* app_system = nullptr;

  run_control control;
  rebalance_bridge bridge{control};
};

namespace {

/// A bounded run over a topic that never held a record reads nothing and
/// exits 0: say so, since a mistyped name looks just like that on clusters that
/// create topics when they are first asked for (the embedded broker does).
void warn_about_empty_topics(const std::vector<std::string>& topics,
                             const kafka::offset_map& ends) {
  for (auto& topic : topics) {
    bool empty = std::all_of(ends.begin(), ends.end(), [&](auto& entry) {
      return entry.first.topic != topic || entry.second == 0;
    });
    if (empty)
      sluice::logger().warn(
          "topic `{}` has never held a record: nothing to read (if the name is "
          "mistyped, this cluster may just have created it empty)",
          topic);
  }
}

/// What the source reads, for the run's first log line.
std::string describe_input(const source_options& src) {
  std::string topics;
  switch (src.subscription) {
  case subscription_kind::subscribe:
    for (auto& t : src.subscribe)
      topics += (topics.empty() ? "" : ",") + t;
    break;
  case subscription_kind::pattern:
    topics = "topics matching `" + src.pattern + "`";
    break;
  case subscription_kind::assign:
    for (auto& tp : src.assign)
      topics += (topics.empty() ? "" : ",") + tp.str();
    break;
  }
  return topics;
}

/// Dedup: the changelog exists (with as many partitions as the source, at
/// least), and the state is this pipeline's, checked against both clusters
/// before any partition opens its table. False when a stop came first.
bool prepare_dedup(const pipeline_config& cfg, state::store& store,
                   kafka::group_consumer& consumer, kafka::producer& producer,
                   const std::map<std::string, std::string>& sink_props,
                   const run_control& control, run_context& ctx,
                   std::int32_t source_partitions);

/// The counters of a whole run, as its summary shows them.
void summarize(const run_metrics& m, run_summary& out) {
  out.input_rows = m.input_rows.load();
  auto rows = m.rows();
  out.output_rows = rows.outputs;
  out.dlq_rows = rows.dlq;
  out.dropped_rows = rows.dropped;
  out.duplicate_rows = rows.duplicates;
  out.late_rows = rows.late;
  out.rows_by_topic = m.rows_by_topic();
  out.max_in_flight = m.max_in_flight.load();
  out.max_bytes_in_flight = m.max_bytes_in_flight.load();
  out.pauses = m.pauses.load();
  out.restarts = m.restarts.load();
}

/// One function that calls every progress listener in order; one that
/// throws is logged, and the rest still get the report.
std::function<void(const epoch_progress&)>
all_listeners(std::vector<std::function<void(const epoch_progress&)>> listeners) {
  if (listeners.empty()) return {};
  return [listeners = std::move(listeners)](const epoch_progress& p) {
    for (std::size_t i = 0; i < listeners.size(); ++i) {
      try {
        listeners[i](p);
      } catch (const std::exception& e) {
        sluice::logger().error("progress listener {} failed: {}", i + 1, e.what());
      } catch (...) {
        sluice::logger().error("progress listener {} failed", i + 1);
      }
    }
  };
}

} // namespace

pipeline::pipeline(pipeline_config config) : impl_(std::make_unique<impl>()) {
  // The file reader has done both already; a config built in code comes here.
  fill_defaults(config);
  validate(config);
  impl_->config = std::move(config);
  auto& cfg = impl_->config;
  auto sink_props = cfg.sink.kafka;
  sink_props["bootstrap.servers"] = cfg.sink.bootstrap_servers;
  // Every message is reported within this; drains and restarts wait for it,
  // so it must stay well below the group's max.poll.interval.ms (300 s).
  if (cfg.guarantee == delivery_guarantee::exactly_once) {
    // One producer per instance, fenced through the group's generation
    // (KIP-447): the id need not survive a restart, only be this instance's.
    kafka::set_default(sink_props, "transactional.id",
                       "sluice-" + cfg.name + "-" + random_uuid());
    // A dead instance's open transaction blocks read_committed readers of its
    // outputs until the broker aborts it: Kafka Streams' 10 s.
    kafka::set_default(sink_props, "transaction.timeout.ms", "10000");
    // librdkafka wants every message reported within the transaction's time
    // (validate() made it whole milliseconds).
    kafka::set_default(sink_props, "message.timeout.ms",
                       sink_props.at("transaction.timeout.ms"));
  }
  kafka::set_default(sink_props, "message.timeout.ms", "60000");
  // `assign` names its partitions; for a subscription run() counts them.
  auto source = with_prefetch_limits(
      cfg, cfg.source.subscription == subscription_kind::assign ? cfg.source.assign.size()
                                                                : 64);
  // Both clients' properties are checked before either is created: a bad
  // source property must not surface after the producer has connected.
  kafka::check_properties(kafka::consumer_properties(source),
                          kafka::client_kind::consumer, "source");
  kafka::check_properties(kafka::producer_properties(sink_props),
                          kafka::client_kind::producer, "sink");
  if (cfg.dedup) {
    // A damaged directory is set aside here (or fails the run, without a
    // changelog); whose it is can be told only once the clusters answer.
    impl_->state = dedup::open_state(*cfg.dedup, cfg.runtime.memory_budget);
    if (cfg.dedup->changelog_topic().empty())
      sluice::logger().warn(
          "dedup.changelog is false: the dedup state lives only in `{}`; if that "
          "directory is lost, or another instance takes a partition over, keys "
          "seen before are forgotten",
          cfg.dedup->state_dir);
  }
  impl_->sink_props = sink_props;
  impl_->producer = std::make_unique<kafka::producer>(std::move(sink_props), "sink");
  impl_->producer->on_unrecoverable(
      [im = impl_.get()](const std::string& why) { im->control.fail(why); });
  impl_->consumer =
      std::make_unique<kafka::group_consumer>(source, cfg.runtime.broker_timeout);
}

pipeline::~pipeline() = default;

void pipeline::set_stage(std::function<void(record_batch&)> fn) {
  impl_->stage = std::move(fn);
}

void pipeline::use_actor_system(caf::actor_system& system) {
  impl_->app_system = &system;
}

void pipeline::add_steps(std::vector<processing_step> steps) {
  for (auto& s : steps) {
    if (auto* a = std::get_if<actor_step>(&s))
      check_actor_step(*a, impl_->steps.size() + 1);
    impl_->steps.push_back(std::move(s));
  }
  check_delivering_steps(impl_->steps, impl_->config.route.delivered_by);
}

void pipeline::on_progress(std::function<void(const epoch_progress&)> fn) {
  if (fn) impl_->progress_listeners.push_back(std::move(fn));
}

void pipeline::stop() {
  impl_->control.request_stop();
}

run_summary pipeline::run() {
  auto& im = *impl_;
  auto started = std::chrono::steady_clock::now();
  run_summary out;
  try {
    out = run_until_stopped();
  } catch (const std::exception& e) {
    // Whatever went wrong, the caller gets a failed run, never an exception.
    out.ok = false;
    out.error = e.what();
  }
  auto ended = std::chrono::steady_clock::now();
  out.seconds = std::chrono::duration<double>(ended - started).count();
  if (auto first = im.control.first_assigned())
    out.processing_seconds = std::chrono::duration<double>(ended - *first).count();
  return out;
}

run_summary pipeline::run_until_stopped() {
  auto& im = *impl_;
  auto& cfg = im.config;
  auto& control = im.control;
  run_summary out;
  check_delivering_steps(im.steps, cfg.route.delivered_by);
  // A subscription to fewer than 64 partitions gets larger prefetch limits
  // (see with_prefetch_limits), in a consumer made again for them. A cluster
  // that does not answer at once keeps the limits for 64.
  std::int32_t source_partitions = 0;
  // Since when the source has not answered: runtime.brokerTimeout counts from there.
  std::optional<std::chrono::steady_clock::time_point> unanswered_since;
  if (cfg.source.subscription != subscription_kind::assign) {
    auto asked = std::chrono::steady_clock::now();
    auto n = im.consumer->partition_count(std::chrono::seconds(1));
    if (n == 0) unanswered_since = asked;
    source_partitions = static_cast<std::int32_t>(n);
    if (n > 0 && n < 64)
      im.consumer = std::make_unique<kafka::group_consumer>(with_prefetch_limits(cfg, n),
                                                            cfg.runtime.broker_timeout);
  } else {
    for (auto& tp : cfg.source.assign)
      source_partitions = std::max(source_partitions, tp.partition + 1);
  }
  // Set once ctx exists: the committer's hooks count into it.
  run_metrics* metrics = nullptr;
  // Exactly-once: the transactions end with the run, and before `metrics` and
  // `ctx` go. On the normal path they end once the actors are gone; on an
  // early exception their thread has nothing queued.
  struct end_transactions {
    std::unique_ptr<guarantee::transaction_committer>& transactions;
    ~end_transactions() { transactions.reset(); }
  } transactions_end{im.transactions};
  if (cfg.guarantee == delivery_guarantee::exactly_once) {
    im.transactions = std::make_unique<guarantee::transaction_committer>(
        *im.producer, im.consumer->handle(),
        cfg.source.subscription != subscription_kind::assign,
        !cfg.sink.kafka.contains("transactional.id"), // the id is this process's
        std::chrono::milliseconds(std::stoll(im.sink_props.at("transaction.timeout.ms"))),
        std::max<std::chrono::milliseconds>(cfg.runtime.broker_timeout,
                                            std::chrono::seconds(30)),
        [&metrics](bool committed) {
          if (!metrics) return;
          if (committed)
            metrics->settle();
          else
            metrics->discard();
        },
        [&control](const std::string& why) { control.fail(why); });
    im.transactions->start(cfg.sink.bootstrap_servers,
                           im.sink_props.at("transactional.id"));
  }
  kafka::offset_committer& committer =
      im.transactions ? static_cast<kafka::offset_committer&>(*im.transactions)
                      : im.consumer->committer();
  // Declared before the actor system: it must outlive every actor.
  run_context ctx{cfg,
                  *im.consumer,
                  committer,
                  *im.producer,
                  record_router::for_pipeline(cfg),
                  im.stage,
                  {},
                  {},
                  stable_uuid(cfg.name + "/" + cfg.source.group_id),
                  random_uuid(),
                  all_listeners(im.progress_listeners),
                  [&control] { control.mark_complete(); },
                  [&control](const std::string& why) { control.fail(why); }};
  ctx.steps = im.steps;
  if (im.transactions) {
    ctx.metrics.hold_until_commit();
    metrics = &ctx.metrics;
  }
  if (im.state && !prepare_dedup(cfg, *im.state, *im.consumer, *im.producer,
                                 im.sink_props, control, ctx, source_partitions))
    return out;
  auto& src = cfg.source;
  bool bounded = cfg.trigger.mode == trigger_options::kind::available_now ||
                 cfg.trigger.mode == trigger_options::kind::once || has_ending(src);
  bool names_partitions =
      !src.starting_specific.empty() || !src.starting_by_timestamp.empty() ||
      !src.ending_specific.empty() || !src.ending_by_timestamp.empty();
  if (bounded || names_partitions) {
    auto deadline = unanswered_since.value_or(std::chrono::steady_clock::now()) +
                    cfg.runtime.broker_timeout;
    auto read =
        kafka::read_source_ends(*im.consumer, src, deadline, cfg.runtime.broker_timeout,
                                [&control] { return control.stop_requested(); });
    if (!read.latest) {
      out.ok = read.error.empty();
      out.error = read.error;
      return out;
    }
    auto& latest = *read.latest;
    kafka::check_named_partitions(src, latest);
    if (bounded) {
      ctx.end_offsets = kafka::resolve_ends(*im.consumer, src, latest);
      if (ctx.end_offsets.empty()) {
        sluice::logger().warn(
            "no topic matches source.subscribePattern `{}`: nothing to read",
            src.pattern);
        return out;
      }
      sluice::logger().info(
          "bounded run: reading up to the end offsets of {} partition(s)",
          ctx.end_offsets.size());
      std::vector<std::string> topics;
      for (auto& [tp, end] : latest)
        if (topics.empty() || topics.back() != tp.topic) topics.push_back(tp.topic);
      warn_about_empty_topics(topics, latest);
    }
  }
  sluice::logger().info("pipeline `{}` (run {}): {} from {} as group `{}` -> {}",
                        cfg.name, ctx.run_id, describe_input(src),
                        cfg.source.bootstrap_servers, cfg.source.group_id,
                        cfg.sink.bootstrap_servers);
  if (auto s = src.kafka.find("partition.assignment.strategy");
      s != src.kafka.end() && s->second.find("cooperative") != std::string::npos)
    // librdkafka#4059, fixed in 2.10: measured in tests/kafka/rebalance_test.py.
    sluice::logger().warn(
        "source.kafka.partition.assignment.strategy `{}`: with librdkafka "
        "before 2.10 a commit answered ILLEGAL_GENERATION during a cooperative "
        "rebalance loses this member's partitions, and their records since the "
        "last commit are read again (librdkafka#4059); the eager default "
        "repeats none on a graceful rebalance",
        s->second);
  {
    caf::actor_system_config system_config;
    // CAF's workers poll 500 times, 50 us apart, after their last job before they
    // wait on a condition variable; librdkafka's wake-ups kept an idle run in
    // that phase, at 11% of a core. With 20 polls: 1.6%, and the same throughput
    // and latency at 20k records/s (bench/README.md, scaling and latency). A
    // system the application passes (builder.actor_system) keeps its own setting.
    system_config.set("work-stealing.moderate-poll-attempts", std::size_t{20});
    std::optional<caf::actor_system> own_system;
    caf::actor_system& system =
        im.app_system ? *im.app_system : own_system.emplace(system_config);
    auto& bridge = im.bridge;
    auto checkpoint = tracked(&ctx, spawn_checkpoint(system, &ctx));
    auto supervisor = tracked(&ctx, spawn_supervisor(system, &ctx, checkpoint));
    // Exactly-once: the checkpoint holds the chains for each epoch's commit.
    if (im.transactions) caf::anon_send(checkpoint, supervisor_atom::value, supervisor);
    bridge.attach(system, ctx, checkpoint, supervisor);
    try {
      im.consumer->start(bridge);
    } catch (const std::exception& e) {
      control.fail(e.what()); // the shutdown below still stops every actor
    }
    control.wait_for_end();
    // The ordered shutdown: drain -> final commit -> stop the chains ->
    // deferred commits -> close -> flush.
    bool failed = control.fatal().has_value();
    sluice::logger().info(failed ? "stopping after a fatal error"
                                 : "stopping: draining in-flight records");
    caf::scoped_actor self{system};
    // With a cluster unreachable, in-flight outputs cannot be delivered: a
    // stop does not wait the whole delivery timeout for them.
    bool drained = false;
    if (!failed)
      self->request(supervisor,
                    bridge.cluster_down() ? std::chrono::milliseconds(5000)
                                          : bridge.drain_timeout(),
                    drain_atom::value)
          .receive([&](bool clean) { drained = clean; }, [](caf::error&) {});
    // Only acknowledged offsets are in the checkpoint: committing is safe
    // even after a failure. Not under exactly-once, where the transaction
    // also holds whatever chains not drained wrote (partial batches): it is
    // left open, for the broker to abort after transaction.timeout.ms.
    kafka::commit_outcome final_commit;
    if (!im.transactions || (drained && !control.fatal()))
      final_commit = bridge.commit_final({});
    else if (im.transactions)
      sluice::logger().warn("exactly-once: nothing committed at the end (the run "
                            "failed, or its chains were not drained); the next run "
                            "resumes from the last committed transaction");
    if (final_commit.error) {
      sluice::logger().error("final offset commit failed: {}", *final_commit.error);
      control.fail("final offset commit failed: " + *final_commit.error);
    }
    self->request(supervisor, rebalance_bridge::actor_timeout, stop_atom::value)
        .receive([](bool) {}, [](caf::error&) {});
    // Offsets a rebalance refused, still waiting for the next assignment.
    if (auto err = ctx.committer.commit_deferred(rebalance_bridge::commit_timeout)) {
      sluice::logger().error("final offset commit failed: {}", *err);
      control.fail("final offset commit failed: " + *err);
    }
    // A cluster that cannot be reached does not get to delay the exit.
    im.consumer->close(im.consumer->health().down() ? std::chrono::seconds(1)
                                                    : std::chrono::seconds(10));
    self->send_exit(checkpoint, caf::exit_reason::user_shutdown);
    // Every delivery report must arrive while the actors can still take it.
    if (!im.producer->flush(im.producer->health().down() ? std::chrono::seconds(1)
                                                         : std::chrono::seconds(30))) {
      sluice::logger().error(
          "some outputs were not acknowledged in time; their inputs were not "
          "committed and will be read again");
      im.producer->purge();
    }
    bridge.detach();
    supervisor = nullptr;
    checkpoint = nullptr;
    // The run's actors use `ctx`: none may outlive it. (A system of the run's
    // own waits for them at its end too; an app's system does not.)
    while (!ctx.live->wait_none(std::chrono::seconds(10)))
      sluice::logger().warn("waiting for {} actor(s) of the run to end",
                            ctx.live->count());
    im.transactions.reset(); // its hooks count into ctx.metrics
  }
  auto fatal = control.fatal();
  out.ok = !fatal;
  out.error = fatal.value_or("");
  summarize(ctx.metrics, out);
  if (im.state) {
    try {
      im.state->flush();
    } catch (const std::exception& e) {
      sluice::logger().warn(
          "{} (the state is restored from the changelog at the next run)", e.what());
    }
    out.state_rows = ctx.metrics.state_rows();
    out.state_disk_bytes = im.state->disk_used();
  }
  out.producer_replacements = im.producer->replacements();
  out.transactions_committed = ctx.metrics.transactions_committed.load();
  out.transactions_aborted = ctx.metrics.transactions_aborted.load();
  return out;
}

namespace {

bool prepare_dedup(const pipeline_config& cfg, state::store& store,
                   kafka::group_consumer& consumer, kafka::producer& producer,
                   const std::map<std::string, std::string>& sink_props,
                   const run_control& control, run_context& ctx,
                   std::int32_t source_partitions) {
  ctx.state_store = &store;
  if (!cfg.dedup->changelog_topic().empty()) {
    ctx.changelog_client = dedup::reader_properties(sink_props);
    ctx.changelog_partitions = dedup::ensure_changelog(
        ctx.changelog_client, producer.handle(), cfg.dedup->changelog_topic(),
        std::max(source_partitions, 1), cfg.runtime.broker_timeout);
  }
  auto stopped = [&control] { return control.stop_requested(); };
  // A cluster that cannot be reached fails the run with the cause the
  // client saw (a refused password, a certificate), as a later wait would.
  // The consumer is not polled yet: its cause() serves the errors queued.
  auto identity = [&](rd_kafka_s* client, const std::string& bootstrap,
                      const std::function<std::string()>& cause_of) {
    try {
      return dedup::cluster_identity(client, bootstrap, cfg.runtime.broker_timeout,
                                     stopped);
    } catch (const fatal_error& e) {
      if (auto cause = cause_of(); !cause.empty())
        throw fatal_error(std::string(e.what()) + ": " + cause);
      throw;
    }
  };
  dedup::state_owner owner;
  auto cluster = identity(consumer.handle(), cfg.source.bootstrap_servers,
                          [&] { return consumer.cause(); });
  if (!cluster) return false;
  owner.cluster = *cluster;
  owner.pipeline = cfg.name;
  owner.group = cfg.source.group_id;
  owner.input = dedup::input_of(cfg.source);
  owner.changelog = cfg.dedup->changelog_topic();
  if (!owner.changelog.empty()) {
    auto sink = identity(producer.handle(), cfg.sink.bootstrap_servers,
                         [&] { return producer.health().cause(); });
    if (!sink) return false;
    owner.changelog_cluster = *sink;
  }
  dedup::claim_state(store, owner);
  return true;
}

} // namespace

} // namespace sluice
