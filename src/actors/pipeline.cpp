#include "actors/checkpoint.hpp"
#include "actors/messages.hpp"
#include "actors/run_context.hpp"
#include "actors/stages.hpp"
#include "actors/supervisor.hpp"
#include "core/log.hpp"
#include "dedup/changelog.hpp"
#include "dedup/state_guard.hpp"
#include "kafka/config.hpp"
#include "kafka/consumer.hpp"
#include "kafka/producer.hpp"
#include "kafka/source_bounds.hpp"
#include "state/state_store.hpp"

#include <sluice/errors.hpp>
#include <sluice/pipeline.hpp>

#include <caf/all.hpp>

#include <algorithm>
#include <condition_variable>
#include <optional>
#include <regex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

namespace sluice {

using namespace actors;

namespace {

/// Whether a topic is one the source reads: a route function's choice is
/// checked against it for every record (fixed routes were checked at start).
std::function<bool(const std::string&)> source_topic_test(const source_options& src) {
  if (src.subscription == subscription_kind::pattern) {
    // A route function calls this for every record, from every chain: each
    // topic's answer is kept (a std::regex match costs microseconds).
    struct pattern_test {
      std::regex re;
      std::shared_mutex mutex;
      std::unordered_map<std::string, bool> known;
    };
    auto test = std::make_shared<pattern_test>();
    test->re = std::regex(src.pattern, std::regex::extended);
    return [test](const std::string& t) {
      {
        std::shared_lock<std::shared_mutex> read{test->mutex};
        if (auto it = test->known.find(t); it != test->known.end()) return it->second;
      }
      bool matches = std::regex_match(t, test->re);
      std::unique_lock<std::shared_mutex> write{test->mutex};
      if (test->known.size() < 10000) test->known.emplace(t, matches);
      return matches;
    };
  }
  std::set<std::string> topics(src.subscribe.begin(), src.subscribe.end());
  for (auto& tp : src.assign)
    topics.insert(tp.topic);
  return
      [topics = std::move(topics)](const std::string& t) { return topics.contains(t); };
}

/// The topics no routed record may go to, with what they are.
std::map<std::string, std::string> reserved_topics(const pipeline_config& cfg) {
  std::map<std::string, std::string> out;
  if (cfg.dlq) out[cfg.dlq->topic] = "the pipeline's DLQ";
  if (cfg.dedup && !cfg.dedup->changelog_topic().empty())
    out[cfg.dedup->changelog_topic()] = "the dedup changelog";
  return out;
}

} // namespace

struct pipeline::impl : kafka::rebalance_listener {
  pipeline_config config;
  std::unique_ptr<kafka::producer> producer;
  std::unique_ptr<kafka::group_consumer> consumer;
  /// Dedup state; opened at construction, so that a directory in use by
  /// another process fails at start. Closed after every actor is gone.
  std::unique_ptr<state::store> state;
  std::map<std::string, std::string> sink_props;
  std::function<void(record_batch&)> stage;
  std::vector<processing_step> steps;
  std::function<void(const epoch_progress&)> progress;

  std::mutex mutex;
  std::condition_variable changed;
  bool stop_requested = false;
  bool complete = false;
  std::optional<std::string> fatal;
  std::optional<std::chrono::steady_clock::time_point> first_assigned;
  std::set<kafka::topic_partition> held; ///< the poll thread's alone

  caf::actor_system* system = nullptr;
  /// The app's own actor system (use_actor_system), or null: one per run.
  caf::actor_system* app_system = nullptr;
  run_context* ctx = nullptr;
  caf::actor supervisor_actor;
  caf::actor checkpoint_actor;

  void fail(const std::string& why) {
    std::lock_guard<std::mutex> guard{mutex};
    if (!fatal) fatal = why;
    changed.notify_all();
  }

  // -- rebalance_listener (the consumer's poll thread) ------------------------

  /// What this member holds after an assignment or revocation: with the cooperative
  /// protocol an assignment only adds (often nothing) and a revocation only removes.
  /// At most the first 20 partitions, and how many more: a member of a
  /// pattern over many topics may hold thousands.
  void log_held() const {
    constexpr std::size_t shown = 20;
    std::string list;
    std::size_t n = 0;
    for (auto& tp : held)
      if (n++ < shown) list += (list.empty() ? "" : ", ") + tp.str();
    if (n > shown) list += ", ... " + std::to_string(n - shown) + " more";
    sluice::logger().info("holding: {}", list.empty() ? "(none)" : list);
  }

  void on_assigned(const std::vector<kafka::assigned_partition>& assigned) override {
    std::string list;
    auto parts = assigned;
    for (auto& p : parts) {
      // Retention deleted even the end (failOnDataLoss false): the partition
      // reads nothing, and only what its range held counts as lost here.
      if (ctx)
        if (auto end = ctx->end_offsets.find(p.tp); end != ctx->end_offsets.end())
          kafka::cap_loss_at_end(p, end->second);
      list +=
          (list.empty() ? "" : ", ") + p.tp.str() + "@" + std::to_string(p.start_offset);
      if (p.lost > 0 && ctx) ctx->metrics.add_lost(p.tp, p.lost);
      // Spark: "starting offset is after the ending offset".
      if (ctx && !p.from_commit)
        if (auto end = ctx->end_offsets.find(p.tp);
            end != ctx->end_offsets.end() && p.start_offset > end->second) {
          fail(p.tp.str() + ": the start options put its start at " +
               std::to_string(p.start_offset) + ", after its end " +
               std::to_string(end->second) + " (set source.startingOffsets)");
          return;
        }
    }
    sluice::logger().info("assigned: {}", list.empty() ? "(none)" : list);
    for (auto& p : parts)
      held.insert(p.tp);
    log_held();
    {
      std::lock_guard<std::mutex> guard{mutex};
      if (!first_assigned && !parts.empty())
        first_assigned = std::chrono::steady_clock::now();
    }
    if (ctx) ctx->quiesced = false; // the rebalance is over
    caf::scoped_actor self{*system};
    self->send(checkpoint_actor, assign_atom::value, assignment(parts));
    // Never wait without a bound from librdkafka's thread.
    self->request(supervisor_actor, actor_timeout, assign_atom::value, assignment(parts))
        .receive([](bool) {},
                 [&](caf::error& err) {
                   // An assignment that lands while the run stops (its actors are
                   // gone): nothing of it was read, and closing the consumer
                   // revokes it.
                   if (err == caf::sec::request_receiver_down && ending()) return;
                   fail("cannot start partition chains: " + system->render(err));
                 });
  }

  /// A stop was asked for, the run is complete or failed: its actors may be gone.
  bool ending() {
    std::lock_guard<std::mutex> guard{mutex};
    return stop_requested || complete || fatal.has_value();
  }

  void on_revoked(const std::vector<kafka::topic_partition>& parts, bool lost) override {
    caf::scoped_actor self{*system};
    if (lost)
      // Kafka's onPartitionsLost: the group moved on without this member.
      // Their chains stop at once (no drain); what they handled is still
      // committed below, or after the rejoin when the group refuses it.
      sluice::logger().warn(
          "lost {} partition(s) (the group moved on without this member): "
          "stopping their chains",
          parts.size());
    else
      sluice::logger().info("revoked {} partition(s): draining and committing",
                            parts.size());
    for (auto& p : parts)
      held.erase(p);
    log_held();
    // With a cluster unreachable, in-flight outputs cannot be delivered: do not
    // hold the group's thread for the whole delivery timeout.
    auto bound = cluster_down() ? std::chrono::milliseconds(10000) : drain_timeout();
    if (!parts.empty())
      self->request(supervisor_actor, bound, revoke_atom::value, partition_list(parts),
                    lost)
          .receive(
              [&](bool clean) {
                if (!clean)
                  fail("revoked partitions could not be drained: outputs were still in "
                       "flight after the producer's message.timeout.ms");
              },
              [&](caf::error& err) {
                if (err != caf::sec::request_receiver_down)
                  fail("revoked partitions could not be drained in time: " +
                       system->render(err));
              });
    if (parts.empty()) return; // an empty list would mean "all" to the checkpoint
    auto outcome = commit_final(self, partition_list(parts));
    if (outcome.rebalancing) {
      consumer->commit_after_rebalance(outcome.refused, outcome.batch_id);
      sluice::logger().info(
          "the group refused the commit while rebalancing; it is retried as "
          "the rebalance ends");
    } else if (outcome.error) {
      sluice::logger().warn(
          "the commit on revocation failed ({}); the next owner reads those "
          "records again",
          *outcome.error);
    }
  }

  void on_error(const std::string& what, bool is_fatal) override {
    if (is_fatal)
      fail("Kafka consumer: " + what);
    else
      sluice::logger().warn("Kafka consumer: {}", what);
  }

  bool cluster_down() const {
    return consumer->health().down() || producer->health().down();
  }

  /// Bounds a revocation: drains, then waits for the chains' deliveries.
  std::chrono::milliseconds drain_timeout() const {
    return 3 * producer->delivery_timeout() + std::chrono::seconds(30);
  }

  /// Takes the uncommitted watermarks of `parts` (all when empty) from the
  /// checkpoint and commits them, waiting at most commit_timeout.
  kafka::commit_outcome commit_final(caf::scoped_actor& self, partition_list parts) {
    offset_map offsets;
    std::int64_t batch_id = -1;
    self->request(checkpoint_actor, actor_timeout, take_atom::value, std::move(parts))
        .receive(
            [&](offset_map& m, std::int64_t id) {
              offsets = std::move(m);
              batch_id = id;
            },
            [](caf::error&) {});
    if (offsets.empty()) return {};
    auto outcome = consumer->commit_sync(offsets, batch_id, commit_timeout);
    outcome.batch_id = batch_id;
    for (auto& [tp, off] : offsets)
      if (!outcome.committed.contains(tp)) outcome.refused[tp] = off;
    self->send(checkpoint_actor, committed_atom::value, outcome);
    // A round trip: the checkpoint has published the epoch's report before
    // anyone stops it.
    self->request(checkpoint_actor, actor_timeout, watermark_atom::value, std::string(),
                  std::int32_t{0})
        .receive([](std::int64_t) {}, [](caf::error&) {});
    if (!outcome.error)
      sluice::logger().info("committed the offsets of {} partition(s)", offsets.size());
    for (auto& [tp, off] : offsets)
      sluice::logger().debug("committed {} at {}", tp.str(), off);
    // What could not be committed is read again: name it.
    if (outcome.error) {
      std::string missed;
      for (auto& [tp, off] : offsets)
        if (!outcome.committed.contains(tp))
          missed +=
              (missed.empty() ? "" : ", ") + tp.str() + " below " + std::to_string(off);
      outcome.error = *outcome.error + "; the records of " + missed +
                      " since the last successful commit will be read again";
    }
    return outcome;
  }

  /// Requests into actors from threads outside CAF never wait forever.
  static constexpr auto actor_timeout = std::chrono::seconds(30);
  static constexpr auto commit_timeout = std::chrono::seconds(15);
};

namespace {

/// librdkafka prefetches into each partition's queue up to
/// `queued.min.messages` and `queued.max.messages.kbytes`, per partition once
/// the queues are split (64 MiB and 100,000 messages by default: gigabytes
/// for 64 partitions). Sized from the credit: a partition prefetches at most
/// 1/64 of the byte credit (512 KiB by default), so 64 partitions hold about
/// one more credit's worth. Measured (1M events, 64 partitions): 1 MiB per
/// partition peaks near 300 MB RSS, 512 KiB near 180 MB at the same speed,
/// 256 KiB near 110 MB but about 30% slower.
/// With fewer partitions each gets a larger share (1/N of the credit below 64
/// partitions): librdkafka 2.0.2 stops fetching a partition whose queue is
/// over these limits and looks again only when its broker thread wakes up
/// (up to a second later; fetch.queue.backoff.ms came in 2.2). Many
/// partitions' fetches keep waking it; a lone partition at 512 KiB read
/// about 5,000 records/s (measured: 20,000 records in 4.1 s, 0.15 s at 32 MiB).
source_options with_prefetch_limits(const pipeline_config& cfg,
                                    std::size_t partitions = 64) {
  auto src = cfg.source;
  auto& rt = cfg.runtime;
  auto share = std::clamp<std::size_t>(partitions, 1, 64);
  auto kib = std::clamp<std::size_t>(rt.max_in_flight_bytes / 1024 / share, 64, 65536);
  kafka::set_default(src.kafka, "queued.max.messages.kbytes", std::to_string(kib));
  // Fewer than a credit's worth starves the chain (measured: a quarter of
  // it halves throughput against the embedded broker); the byte limit
  // above is what bounds memory.
  kafka::set_default(
      src.kafka, "queued.min.messages",
      std::to_string(std::min<std::size_t>(rt.max_in_flight_per_partition * (64 / share),
                                           10'000'000))); // librdkafka's maximum
  // One fetch response holds at most this per partition / in all.
  kafka::set_default(src.kafka, "fetch.message.max.bytes",
                     std::to_string(std::min<std::size_t>(kib * 1024, 1 << 20)));
  kafka::set_default(src.kafka, "fetch.max.bytes",
                     std::to_string(std::clamp<std::size_t>(rt.max_in_flight_bytes / 2,
                                                            1 << 20, 50u << 20)));
  return src;
}

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
      [im = impl_.get()](const std::string& why) { im->fail(why); });
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
  impl_->progress = std::move(fn);
}

void pipeline::stop() {
  std::lock_guard<std::mutex> guard{impl_->mutex};
  impl_->stop_requested = true;
  impl_->changed.notify_all();
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
  if (im.first_assigned)
    out.processing_seconds =
        std::chrono::duration<double>(ended - *im.first_assigned).count();
  return out;
}

run_summary pipeline::run_until_stopped() {
  auto& im = *impl_;
  auto& cfg = im.config;
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
  // Declared before the actor system: it must outlive every actor.
  run_context ctx{
      cfg,
      *im.consumer,
      *im.producer,
      record_router(cfg.route, source_topic_test(cfg.source), reserved_topics(cfg)),
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
  ctx.steps = im.steps;
  if (im.state) {
    ctx.state_store = im.state.get();
    if (!cfg.dedup->changelog_topic().empty()) {
      ctx.changelog_client = dedup::reader_properties(im.sink_props);
      ctx.changelog_partitions = dedup::ensure_changelog(
          ctx.changelog_client, im.producer->handle(), cfg.dedup->changelog_topic(),
          std::max(source_partitions, 1), cfg.runtime.broker_timeout);
    }
    // Whose the state is, before any partition opens its table.
    auto stopped = [&im] {
      std::lock_guard<std::mutex> guard{im.mutex};
      return im.stop_requested;
    };
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
    auto cluster = identity(im.consumer->handle(), cfg.source.bootstrap_servers,
                            [&] { return im.consumer->cause(); });
    if (!cluster) return out;
    owner.cluster = *cluster;
    owner.pipeline = cfg.name;
    owner.group = cfg.source.group_id;
    owner.input = dedup::input_of(cfg.source);
    owner.changelog = cfg.dedup->changelog_topic();
    if (!owner.changelog.empty()) {
      auto sink = identity(im.producer->handle(), cfg.sink.bootstrap_servers,
                           [&] { return im.producer->health().cause(); });
      if (!sink) return out;
      owner.changelog_cluster = *sink;
    }
    dedup::claim_state(*im.state, owner);
  }
  auto& src = cfg.source;
  bool bounded = cfg.trigger.mode == trigger_options::kind::available_now ||
                 cfg.trigger.mode == trigger_options::kind::once || has_ending(src);
  bool names_partitions =
      !src.starting_specific.empty() || !src.starting_by_timestamp.empty() ||
      !src.ending_specific.empty() || !src.ending_by_timestamp.empty();
  if (bounded || names_partitions) {
    // Retried in short steps, so that a stop request is honoured meanwhile,
    // until runtime.brokerTimeout.
    auto deadline = unanswered_since.value_or(std::chrono::steady_clock::now()) +
                    cfg.runtime.broker_timeout;
    auto missing_deadline = std::chrono::steady_clock::now() +
                            std::min<std::chrono::milliseconds>(
                                cfg.runtime.broker_timeout, std::chrono::seconds(5));
    kafka::offset_map latest;
    for (;;) {
      {
        std::lock_guard<std::mutex> guard{im.mutex};
        if (im.stop_requested) {
          sluice::logger().info("stopped before the end offsets could be read");
          return out;
        }
      }
      try {
        // Each request waits at most what is left of the timeout (at least
        // 100 ms), so that the run fails when it says, not 2 s later.
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        latest = kafka::source_partitions(
            *im.consumer, src,
            std::clamp<std::chrono::milliseconds>(left, std::chrono::milliseconds(100),
                                                  std::chrono::seconds(2)));
        break;
      } catch (const missing_topic_error& e) {
        // Metadata can lag a topic's creation for a moment; longer is an answer.
        if (std::chrono::steady_clock::now() < missing_deadline) {
          sluice::logger().warn("{} (yet; asking again)", e.what());
          std::this_thread::sleep_for(std::chrono::milliseconds(500)); // backoff
          continue;
        }
        out.ok = false;
        out.error = std::string(e.what()) + " at " + src.bootstrap_servers +
                    " (check the source's topics, or create the topic: this cluster "
                    "does not create topics when they are read)";
        return out;
      } catch (const config_error&) {
        throw;
      } catch (const fatal_error& e) {
        if (std::chrono::steady_clock::now() >= deadline) {
          out.ok = false;
          out.error = "cannot read the end offsets at " + src.bootstrap_servers +
                      " within runtime.brokerTimeout (" +
                      std::to_string(cfg.runtime.broker_timeout.count() / 1000) +
                      " s): " + e.what();
          return out;
        }
        sluice::logger().warn("{} (retrying)", e.what());
      }
    }
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
  sluice::logger().info("pipeline `{}` (run {}): {} from {} as group `{}` -> {}",
                        cfg.name, ctx.run_id, topics, cfg.source.bootstrap_servers,
                        cfg.source.group_id, cfg.sink.bootstrap_servers);
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
    std::optional<caf::actor_system> own_system;
    caf::actor_system& system =
        im.app_system ? *im.app_system : own_system.emplace(system_config);
    im.system = &system;
    im.ctx = &ctx;
    im.checkpoint_actor = tracked(&ctx, spawn_checkpoint(system, &ctx));
    im.supervisor_actor =
        tracked(&ctx, spawn_supervisor(system, &ctx, im.checkpoint_actor));
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
    sluice::logger().info(failed ? "stopping after a fatal error"
                                 : "stopping: draining in-flight records");
    caf::scoped_actor self{system};
    // With a cluster unreachable, in-flight outputs cannot be delivered: a
    // stop does not wait the whole delivery timeout for them.
    if (!failed)
      self->request(im.supervisor_actor,
                    im.cluster_down() ? std::chrono::milliseconds(5000)
                                      : im.drain_timeout(),
                    drain_atom::value)
          .receive([](bool) {}, [](caf::error&) {});
    // Only acknowledged offsets are in the checkpoint: committing is safe
    // even after a failure.
    auto final_commit = im.commit_final(self, {});
    if (final_commit.error) {
      sluice::logger().error("final offset commit failed: {}", *final_commit.error);
      im.fail("final offset commit failed: " + *final_commit.error);
    }
    self->request(im.supervisor_actor, impl::actor_timeout, stop_atom::value)
        .receive([](bool) {}, [](caf::error&) {});
    // Offsets a rebalance refused, still waiting for the next assignment.
    if (auto err = im.consumer->commit_deferred(impl::commit_timeout)) {
      sluice::logger().error("final offset commit failed: {}", *err);
      im.fail("final offset commit failed: " + *err);
    }
    // A cluster that cannot be reached does not get to delay the exit.
    im.consumer->close(im.consumer->health().down() ? std::chrono::seconds(1)
                                                    : std::chrono::seconds(10));
    self->send_exit(im.checkpoint_actor, caf::exit_reason::user_shutdown);
    // Every delivery report must arrive while the actors can still take it.
    if (!im.producer->flush(im.producer->health().down() ? std::chrono::seconds(1)
                                                         : std::chrono::seconds(30))) {
      sluice::logger().error(
          "some outputs were not acknowledged in time; their inputs were not "
          "committed and will be read again");
      im.producer->purge();
    }
    im.supervisor_actor = nullptr;
    im.checkpoint_actor = nullptr;
    // The run's actors use `ctx`: none may outlive it. (A system of the run's
    // own waits for them at its end too; an app's system does not.)
    while (!ctx.live->wait_none(std::chrono::seconds(10)))
      sluice::logger().warn("waiting for {} actor(s) of the run to end",
                            ctx.live->count());
    im.system = nullptr;
    im.ctx = nullptr;
  }
  out.ok = !im.fatal;
  out.error = im.fatal.value_or("");
  out.input_rows = ctx.metrics.input_rows.load();
  out.output_rows = ctx.metrics.output_rows.load();
  out.dlq_rows = ctx.metrics.dlq_rows.load();
  out.dropped_rows = ctx.metrics.dropped_rows.load();
  out.duplicate_rows = ctx.metrics.duplicate_rows.load();
  out.late_rows = ctx.metrics.late_rows.load();
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
  out.rows_by_topic = ctx.metrics.rows_by_topic();
  out.max_in_flight = ctx.metrics.max_in_flight.load();
  out.max_bytes_in_flight = ctx.metrics.max_bytes_in_flight.load();
  out.pauses = ctx.metrics.pauses.load();
  out.restarts = ctx.metrics.restarts.load();
  out.producer_replacements = im.producer->replacements();
  return out;
}

} // namespace sluice
