#pragma once

#include <sluice/record.hpp>
#include <sluice/stage.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

class encoder;

/// Runs a pipeline's processing steps over one batch, in order.
/// - Record steps (map, filter, flat_map) see valid records only. An exception
///   sends that record to the DLQ with the step's kind and the exception's
///   text, with its key, value and headers as they came (the source bytes).
/// - `schemaless` (no parse.schema): values are written byte for byte, so a
///   record whose fields a map changed gets its value written from them again
///   by `enc` (unless the map set `value` itself). With a schema records are written
///   from their fields, and a map that sets `value` is an error (DLQ).
/// - A batch stage's exception propagates (the chain restarts). It cannot
///   change the batch's coordinates; records it removes count as drops, and a
///   record it gives an offset outside the batch goes to the DLQ.
/// Actor steps are not run here: the chain sends those batches to the actor.
void apply_steps(record_batch& batch, const std::vector<processing_step>& steps,
                 bool schemaless, encoder& enc);

/// What a batch stage (a function or an actor) may not change: the batch's
/// coordinates and bookkeeping, and that every offset it had ends somewhere.
/// Taken before the stage sees the batch, settled on what it gives back.
/// Without a schema (`schemaless`) values are written byte for byte, so a
/// record whose fields the stage changed, and not its value, gets its value
/// written from its fields again, as after a map.
class batch_guard {
public:
  batch_guard(record_batch& batch, bool schemaless);

  /// Gives `out` the coordinates the batch had; a record with an offset
  /// outside them goes to the DLQ (`stage_error`), and each offset that no
  /// record has any more is a counted drop.
  void settle(record_batch& out, encoder& enc) const;

private:
  record_batch kept_;                 // without its records
  std::vector<std::int64_t> offsets_; // sorted, distinct
  /// Without a schema: each record's value and fields as they were, by offset.
  std::multimap<std::int64_t, std::pair<std::optional<std::string>, row>> before_;
};

} // namespace sluice
