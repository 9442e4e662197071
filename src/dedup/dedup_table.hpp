#pragma once

// One partition's dedup state on a state table: the window rules applied to
// a batch at a time, expiry, and changes read back from the changelog.
//
// Layout of the table's keys:
//   k<key>                 -> sighting (offset, event time), 16 bytes
//   t<event time><key>     -> ""  (expiry index, ordered by event time)
//   m/changelog            -> changelog offset the state is known to include,
//                             and which changelog partition that counts in
//   m/stream-time          -> the partition's event-time progress
//   m/decided-until        -> every offset below was decided before
//   s<batch start>         -> the progress that batch met ("" for none), for
//                             a replay from there

#include "dedup/window_rules.hpp"
#include "state/state_store.hpp"

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace sluice::dedup {

/// A record's key (its encoded field values) and where and when it was seen.
struct keyed_sighting {
  std::string key;
  sighting seen;
};

/// A change of the state, for the changelog: the sighting now held, or none
/// (expired).
struct change {
  std::string key;
  std::optional<sighting> now;
};

/// A sighting as the changelog's value: {"offset":N,"eventTime":T}.
std::string encode_sighting(const sighting& s);
/// nullopt when `text` is not such a value.
std::optional<sighting> decode_sighting(std::string_view text);

class dedup_table {
public:
  /// Counts the rows the table already holds.
  explicit dedup_table(state::partition_table& table);

  /// Decides a batch's records in order and stores what changes (one write).
  /// Duplicates inside the batch are caught too. Appends the changes.
  ///
  /// A sighting further behind the partition's event-time progress (the
  /// latest event time seen before the record) than `w.kept()` counts as
  /// absent, whether or not purge() has removed it yet: so a verdict never
  /// depends on where batches happen to start, or on when purges run.
  ///
  /// `begin` is the batch's first offset (default: its first record's). A
  /// batch starting below what the table decided before is a replay: the
  /// table winds its progress back to what a batch starting there met (kept
  /// per batch start), so verdicts come out as they did; without that (a
  /// state restored from the changelog) late records below it pass
  /// (verdict::replayed_late).
  std::vector<verdict> decide_all(const std::vector<keyed_sighting>& records,
                                  const window& w, std::vector<change>& changes,
                                  std::int64_t begin = -1);

  /// Removes sightings more than `w.kept()` behind the event-time progress,
  /// oldest first, at most `limit`. Appends the removals.
  std::int64_t purge(const window& w, std::size_t limit, std::vector<change>& changes);

  /// Sightings the last decide_all() stored. A late record (verdict::late)
  /// is not stored: it would be purged at once.
  std::int64_t last_stored() const noexcept { return last_stored_; }

  /// The latest event time decided (kept with the state); nullopt before any.
  std::optional<std::int64_t> stream_time() const noexcept { return stream_time_; }

  /// Applies changes read from the changelog, in their order.
  void restore(const std::vector<change>& changes);

  /// Forgets everything (the changelog moved past what the table holds).
  void clear();

  /// How far into the changelog partition named `log` (topic, partition
  /// and partition count) the table is known to be complete; nullopt when
  /// never restored or written, or recorded for another log.
  std::optional<std::int64_t> changelog_position(std::string_view log);
  /// Recorded after the writes it covers, so a crash that loses the newest
  /// writes (the WAL is off) loses this too: the state is never claimed to
  /// hold more than it does.
  void set_changelog_position(std::int64_t next_offset, std::string_view log);

  /// Event times beyond this (now + within) do not move the event-time
  /// progress at all: one record from a clock far ahead would otherwise make
  /// every later record late (passed without dedup, and real sightings
  /// purged). Such a record is still decided and stored, so that its own
  /// re-sends are dropped. A progress already beyond the ceiling (a state
  /// from a machine whose clock was ahead) is forgotten: returns true then.
  bool set_progress_ceiling(std::int64_t ms) noexcept;

  std::int64_t rows() const noexcept { return rows_; }
  state::partition_table& table() noexcept { return table_; }

private:
  /// Moves the progress to `event_time_ms` unless beyond the ceiling.
  void advance(std::int64_t event_time_ms) noexcept;
  /// Writes the progress and how far records were decided.
  void put_progress(state::partition_table::writes& w) const;

  state::partition_table& table_;
  std::int64_t rows_ = 0;
  std::optional<std::int64_t> stream_time_;
  /// Every offset below was decided before (by this table or, restored, by
  /// the changelog's writer): a late record there is a replay.
  std::optional<std::int64_t> decided_until_;
  /// Where the last batch decided here ended: one starting below is read again.
  std::optional<std::int64_t> next_begin_;
  /// The progress is the one a first reading of the coming records met (false
  /// after a replay that found no snapshot to go back to).
  bool exact_ = true;
  /// Snapshots below this are pruned.
  std::int64_t snapshots_from_ = std::numeric_limits<std::int64_t>::min();
  std::int64_t last_stored_ = 0;
  std::int64_t progress_ceiling_ = std::numeric_limits<std::int64_t>::max();
  /// Every expiry entry below this time is purged already: purges start
  /// there, past RocksDB's deletions of earlier ones.
  std::optional<std::int64_t> purged_below_;
};

} // namespace sluice::dedup
