#pragma once

// The dedup stage's window rules (../shared/DESIGN.md "Dedup and state"),
// apart from where the sightings are kept: what one record means given what
// the state holds for its key in its partition.

#include <chrono>
#include <cstdint>
#include <optional>

namespace sluice::dedup {

/// Where and when a key was first seen in a partition.
struct sighting {
  std::int64_t offset = 0;
  std::int64_t event_time_ms = 0;

  bool operator==(const sighting&) const = default;
};

/// What a record is, for its key.
enum class verdict {
  first,     ///< no sighting: it passes and is stored
  replay,    ///< the stored sighting is this very offset (a restart): it passes
  leftover,  ///< stored at a higher offset by work never committed: replaced, passes
  duplicate, ///< seen at another offset within the window: dropped, counted
  renewed,   ///< seen, but outside the window: passes, the new first sighting
  /// Older than the window behind the partition's event-time progress: it
  /// passes and is not stored (no later record could be its duplicate).
  /// Decided by the table, which knows the progress; never by decide().
  late,
};

/// The rule's answer: the verdict, and the sighting the state must hold
/// afterwards when it changes.
struct decision {
  verdict what = verdict::first;
  std::optional<sighting> store;

  bool passes() const { return what != verdict::duplicate; }
};

/// Decides one record. A replay must pass: a restart that reads a record
/// again must never turn it into a dropped one (that would be loss).
decision decide(const std::optional<sighting>& stored, const sighting& record,
                std::chrono::milliseconds within);

/// Whether a sighting can be purged: no record at or after `event_time_ms`
/// (the partition's event-time progress) can be its duplicate any more.
bool expired(const sighting& s, std::int64_t event_time_ms,
             std::chrono::milliseconds within);

} // namespace sluice::dedup
