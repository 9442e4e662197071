#pragma once

// Whether a state directory may serve this run, decided once at start,
// before any partition's table is opened:
// - it opens: a damaged one is a cache, set aside and rebuilt from the
//   changelog (or, without one, the run fails saying what to delete);
// - it is this pipeline's: a state holds sightings (offsets of input
//   partitions) and changelog positions that mean something only for the
//   cluster, pipeline, group, input and changelog that wrote them. Another
//   cluster's state would drop new records at the same keys as duplicates,
//   silently. So the store records its owner, and a state from elsewhere is
//   rebuilt from this run's changelog (or, without one, the run fails
//   naming both owners).

#include "state/state_store.hpp"

#include <sluice/config.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct rd_kafka_s;

namespace sluice::dedup {

/// Whose a dedup state is.
struct state_owner {
  std::string cluster;           ///< the source cluster (see cluster_identity)
  std::string pipeline;          ///< the pipeline's name
  std::string group;             ///< the source's group.id
  std::string input;             ///< the input topics, or the pattern (input_of)
  std::string changelog;         ///< the changelog topic; empty: none
  std::string changelog_cluster; ///< the sink cluster, with a changelog

  bool operator==(const state_owner&) const = default;

  /// As the store keeps it: a JSON object.
  std::string encode() const;
  /// nullopt when `text` is not such an object.
  static std::optional<state_owner> decode(std::string_view text);
  /// For messages: pipeline `p`, group `g`, input [orders] on cluster `c`, ...
  std::string describe() const;
};

/// The input of a source as an owner names it: its topics, sorted, in
/// brackets, or `pattern <regex>`.
std::string input_of(const source_options& source);

/// The name a cluster gives itself (librdkafka's rd_kafka_clusterid), asked
/// through `client`. The embedded broker's id is made from memory addresses
/// (two in one process, one after the other, or two processes without
/// address randomization, can share it), so the bootstrap list, whose ports
/// are new for each embedded cluster, is added to it; a cluster that gives
/// no id (a broker older than Kafka 0.10.1) is named by its bootstrap list.
/// Waits for the cluster at most `timeout` (then throws fatal_error), in
/// short steps; nullopt when `cancelled` says the run stopped meanwhile.
std::optional<std::string> cluster_identity(rd_kafka_s* client,
                                            const std::string& bootstrap,
                                            std::chrono::milliseconds timeout,
                                            const std::function<bool()>& cancelled = {});

/// Opens the store under `options.state_dir` (see state::store). A damaged
/// one is moved aside (state::set_aside) and a new one opened, with a
/// warning, when a changelog can rebuild it; without a changelog, throws
/// fatal_error saying what is damaged and what to delete.
std::unique_ptr<state::store> open_state(const dedup_options& options,
                                         std::size_t memory_budget);

/// What claim_state() did.
struct claim_outcome {
  enum kind {
    adopted, ///< the state held no key: recorded as the owner's
    kept,    ///< already the owner's
    rebuilt, ///< from elsewhere: every table dropped, to be restored
  } what = adopted;
  /// The owner recorded before, when rebuilt (nullopt: none recorded, a
  /// state written before owners were).
  std::optional<state_owner> previous;
};

/// Makes the state in `store` `owner`'s, before any table is opened. A state
/// with keys of another owner, or of none recorded: with a changelog (the
/// owner has one), every table is dropped, so that each partition is
/// restored from the changelog, and a warning names both owners; without,
/// throws fatal_error naming both owners and what to delete.
claim_outcome claim_state(state::store& store, const state_owner& owner);

} // namespace sluice::dedup
