#pragma once

#include <sluice/config.hpp>
#include <sluice/record.hpp>

#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace sluice {

// Every step runs inside each partition's chain (one per lane with
// `source.minPartitions`), on that chain's own copy of the function: state a
// function object keeps is its partition's (or lane's) alone, and starts
// afresh when the chain restarts after a failure. A route function
// (topic_extractor, config.hpp) is shared by every chain: keep it stateless.

/// Changes one valid record in place: its fields (`fields`), key, headers or
/// timestamp. Without a `parse.schema` values are written byte for byte, and a
/// record whose fields the map changed is written from them (unless the map
/// set `value` itself); with a schema records are always written from their
/// fields, and a map that sets `value` sends the record to the DLQ. An
/// exception sends the record, as it came, to the DLQ with the exception's
/// text (`map_error`).
using record_map = std::function<void(record&)>;

/// Keeps a valid record (true) or drops it: a dropped record is handled,
/// committed and counted in `numDroppedRows`, never written. An exception
/// sends the record to the DLQ (`filter_error`).
using record_filter = std::function<bool(const record&)>;

/// Turns one valid record into any number of records, written in order with
/// the input record's offset (none: handled as a drop). An exception sends
/// the input record to the DLQ (`flat_map_error`).
using record_flat_map = std::function<std::vector<record>(const record&)>;

/// Sees a batch of one partition (one lane's share with minPartitions), in
/// offset order, and may change, reject (`record::error`) or drop
/// (`record::dropped`) its records; a record it removes counts as dropped. The
/// batch's offsets and bookkeeping stay Sluice's. Without a `parse.schema`, a
/// record whose fields it changed (and not its value) is written from its
/// fields, as after a map. An exception restarts the chain from the last
/// handled offset (within `runtime.restartBudget`).
using batch_stage = std::function<void(record_batch&)>;

/// (topic_extractor, for routing by a function, is in config.hpp.)

struct actor_stage; // user actors as stages: <sluice/actor_stage.hpp>

/// A stage run by a user's actor, one per partition chain.
struct actor_step {
  std::shared_ptr<const actor_stage> stage;
  /// The stage's `delivers`: readable where actor_stage is not complete.
  std::string delivers;
  explicit operator bool() const noexcept { return stage != nullptr; }
};

/// One processing step of a pipeline built in code, run in the order given,
/// after parsing and before routing.
using processing_step =
    std::variant<record_map, record_filter, record_flat_map, batch_stage, actor_step>;

} // namespace sluice
