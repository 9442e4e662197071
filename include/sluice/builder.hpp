#pragma once

#include <sluice/config.hpp>
#include <sluice/errors.hpp>
#include <sluice/pipeline.hpp>
#include <sluice/stage.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace caf {
class actor_system;
}

namespace sluice {

/// Builds a pipeline in the order its data flows:
///
///     auto p = sluice::pipeline_builder("orders-by-priority")
///                  .source(src)               // source_options: Kafka, what to read
///                  .parse(schema)             // parse_options: JSON, schema, required
///                  .filter(is_paid)           // record steps, in the order given
///                  .map(add_total)
///                  .route(by_priority)        // a topic, route_options or a function
///                  .sink(out)                 // sink_options: where outputs go
///                  .dlq("orders-dlq")
///                  .build();                  // checked; clients made, nothing read
///     p->run();
///
/// A pipeline file fills the same builder (`from_file`): `sluice run` is
/// this class plus a file. build() checks everything a run would refuse at
/// start and throws config_error naming the option (as a pipeline file spells
/// it: `route.topic`, `sink.kafka.bootstrap.servers`...); then it makes the
/// pipeline, whose Kafka clients exist from then on (nothing is read before
/// run()).
///
/// A pipeline without an end (no availableNow or ending offsets) runs until
/// stop(): an app connects SIGINT/SIGTERM to it, from a thread that waits for
/// the signal (stop() is thread-safe, not async-signal-safe), so that the run
/// drains and commits before it exits.
class pipeline_builder {
public:
  explicit pipeline_builder(std::string name);

  /// The options of a pipeline file (with `--set` overrides), read and
  /// checked; steps may be added before build().
  static pipeline_builder from_file(const std::string& path,
                                    const std::vector<std::string>& overrides = {});
  /// Options filled elsewhere (checked at build()).
  static pipeline_builder from_config(pipeline_config config);

  pipeline_builder& source(source_options options);
  pipeline_builder& parse(parse_options options);

  pipeline_builder& map(record_map fn);
  pipeline_builder& filter(record_filter fn);
  pipeline_builder& flat_map(record_flat_map fn);
  /// A function over whole batches (one partition, in order).
  pipeline_builder& stage(batch_stage fn);
  /// A user actor per partition chain (<sluice/actor_stage.hpp>).
  pipeline_builder& stage(actor_stage stage);
  /// Runs the pipeline's actors on the app's own actor system, which must
  /// outlive run(); without it each run makes one of its own.
  pipeline_builder& actor_system(caf::actor_system& system);

  /// Every record to one topic.
  pipeline_builder& route(std::string topic);
  /// By a field's value (`route.field`, `route.topics`, `route.default`).
  pipeline_builder& route(route_options options);
  /// By a function of the record.
  pipeline_builder& route(topic_extractor fn);

  pipeline_builder& dedup(dedup_options options);
  pipeline_builder& sink(sink_options options);
  pipeline_builder& dlq(std::string topic);
  pipeline_builder& trigger(trigger_options options);
  pipeline_builder& runtime(runtime_options options);

  /// Adds a progress listener: called once per epoch with its report (from
  /// an actor thread), after the listeners added before it. A listener that
  /// throws is logged; the others and the commits go on. An empty function is
  /// ignored; listeners cannot be removed.
  pipeline_builder& on_progress(std::function<void(const epoch_progress&)> fn);

  /// The options so far.
  const pipeline_config& config() const noexcept { return config_; }

  /// Checks the whole pipeline and makes it (its Kafka clients too); throws
  /// config_error.
  std::unique_ptr<pipeline> build();

private:
  pipeline_config config_;
  std::vector<processing_step> steps_;
  std::vector<std::function<void(const epoch_progress&)>> progress_listeners_;
  caf::actor_system* system_ = nullptr;
};

} // namespace sluice
