#pragma once

// The actor stage of Kafka -> files: one writer actor per partition, which
// answers a batch once its lines are in published files.

#include <sluice/actor_stage.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace sluice::lake {

struct lake_options {
  std::filesystem::path dir;
  /// Field with the event time (ISO-8601 text or epoch ms); empty: the
  /// record's Kafka timestamp.
  std::string date_field;
  /// Publish once this many lines are waiting...
  std::int64_t file_records = 5000;
  /// ...or this long after the first of them came.
  std::chrono::milliseconds file_interval{std::chrono::seconds(2)};
  /// No parse.schema: a value is written as it came when it is one line.
  bool schemaless = true;
};

/// The delivering stage (`actor_stage::delivers` = "files:<dir>"): records
/// without an event date go to the DLQ as `no_event_date`.
actor_stage lake_stage(const lake_options& options);

} // namespace sluice::lake
