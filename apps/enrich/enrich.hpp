#pragma once

// Enrichment (`sluice enrich`): a stream joined with a table kept from a
// compacted topic. The table is kept by a pipeline of its own whose last
// stage writes each record into the table_store; the stream's pipeline
// looks each record up by a key field in a map step.

#include "apps/enrich/table_store.hpp"

#include <sluice/actor_stage.hpp>

#include <memory>
#include <string>
#include <vector>

namespace sluice::enrich {

/// The stage that keeps the table: each batch's records (the latest value
/// of each key; a tombstone deletes it) and the partition's next offset go
/// into the store in one write, then the batch is answered: delivered.
/// Records without a key go to the DLQ as `no_key`.
actor_stage table_stage(std::shared_ptr<table_store> table, std::string table_topic);

/// What a stream record gets from the table.
struct join_options {
  std::string key_field; ///< the stream field whose value is a table key
  /// Table fields to add (empty: all of the row's). A stream field of the
  /// same name is kept, not replaced.
  std::vector<std::string> table_fields;
  /// No row for the key: the record goes to the DLQ (`no_table_row`), or
  /// passes with `table_fields` set to null.
  bool missing_to_dlq = true;
};

/// The map step that joins a record with its table row.
record_map join_step(std::shared_ptr<const table_store> table, join_options options);

} // namespace sluice::enrich
