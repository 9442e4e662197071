#pragma once

#include <sluice/config.hpp>
#include <sluice/progress.hpp>
#include <sluice/record.hpp>
#include <sluice/stage.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace caf {
class actor_system;
}

namespace sluice {

/// What a finished run did.
struct run_summary {
  bool ok = true;
  std::string error; ///< why the run failed, when !ok
  std::int64_t input_rows = 0;
  std::int64_t output_rows = 0;
  std::int64_t dlq_rows = 0;
  /// Handled on purpose without a write: tombstones (parse.tombstones drop),
  /// filtered records, duplicates. With flat_map, one input may make several
  /// outputs: outputs + DLQ rows + drops can then exceed the input rows.
  std::int64_t dropped_rows = 0;
  std::int64_t duplicate_rows = 0; ///< of dropped_rows: duplicates dedup dropped
  /// Late by dedup's rules: outputs, drops or DLQ rows, as dedup.lateRecords says.
  std::int64_t late_rows = 0;
  std::int64_t state_rows = 0;       ///< dedup keys held at the end (open partitions)
  std::int64_t state_disk_bytes = 0; ///< dedup state files on disk at the end
  std::map<std::string, std::int64_t> rows_by_topic; ///< outputs and DLQ rows per topic
  std::int64_t max_in_flight = 0;       ///< highest in-flight count of a partition
  std::int64_t max_bytes_in_flight = 0; ///< highest byte credit in use, all partitions
  std::int64_t pauses = 0;              ///< times a partition ran out of credit
  std::int64_t restarts = 0;            ///< partition chains restarted
  /// Sink producers replaced after a fatal librdkafka error (an idempotent
  /// producer's sequence lost after a broker failover, for one).
  std::int64_t producer_replacements = 0;
  /// Exactly-once: Kafka transactions committed and aborted (0 otherwise).
  std::int64_t transactions_committed = 0;
  std::int64_t transactions_aborted = 0;
  double seconds = 0;            ///< whole run, including joining the group
  double processing_seconds = 0; ///< from the first assignment to the end
};

/// A Kafka -> parse -> route -> Kafka pipeline on actors: the library's
/// entry point, and what `sluice run` drives; pipeline_builder makes one.
/// Construct it (defaults are filled as for a file, then bad options throw
/// config_error, before anything runs; a damaged dedup state directory
/// without a changelog to rebuild it from throws fatal_error), optionally
/// add a stage, then run().
/// run() blocks until stop(), the end of an availableNow run, or a fatal
/// error; it drains in-flight records and commits before it returns. It
/// never throws: a failure is a summary with `ok` false and the reason.
class pipeline {
public:
  explicit pipeline(pipeline_config config);
  ~pipeline();
  pipeline(const pipeline&) = delete;
  pipeline& operator=(const pipeline&) = delete;

  /// Adds a user stage that sees every batch after routing and dedup, just
  /// before the sink (pipeline_builder's stage() runs before routing). Each
  /// chain runs its own copy; an exception restarts the chain.
  void set_stage(std::function<void(record_batch&)> fn);

  /// Adds processing steps (pipeline_builder's map, filter, flat_map and
  /// stage), run in order between parsing and routing. Throws config_error
  /// for an actor step that cannot work (no `make`, max_in_flight 0...).
  void add_steps(std::vector<processing_step> steps);

  /// Runs the actors on the app's own actor system (which must outlive
  /// run()) instead of one made for each run.
  void use_actor_system(caf::actor_system& system);
  /// Adds a progress listener: called once per epoch with its report (from
  /// an actor thread), after the listeners added before it. A listener that
  /// throws is logged; the others and the commits go on. Before run(). An
  /// empty function is ignored; listeners cannot be removed.
  void on_progress(std::function<void(const epoch_progress&)> fn);

  run_summary run();

  /// Asks a running pipeline to drain, commit and return. Thread-safe.
  void stop();

private:
  run_summary run_until_stopped();

  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace sluice
