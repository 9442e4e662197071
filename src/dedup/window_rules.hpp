#pragma once

// The dedup stage's window rules (../shared/DESIGN.md "Dedup and state"),
// apart from where the sightings are kept: what one record means given what
// the state holds for its key in its partition.

#include <chrono>
#include <cstdint>
#include <optional>

namespace sluice::dedup {

/// The window and how long past it a sighting is kept.
struct window {
  /// Records of a key this close in event time are duplicates.
  std::chrono::milliseconds within{0};
  /// How far past `within` behind the partition's event-time progress a
  /// sighting is still kept, so that a duplicate arriving that late is caught.
  std::chrono::milliseconds lateness{0};

  window() = default;
  /// Both, always: dedup.allowedLateness defaults to `within`, not to 0.
  window(std::chrono::milliseconds w, std::chrono::milliseconds l)
      : within(w), lateness(l) {}

  /// How long behind the progress a sighting is kept: within + lateness.
  std::chrono::milliseconds kept() const { return within + lateness; }
};

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
  /// Further behind the partition's event-time progress than the state
  /// keeps sightings (within + lateness), and no kept sighting makes it a
  /// duplicate: the state cannot tell. `dedup.lateRecords` says what becomes
  /// of it (passes unchecked, dropped, or the DLQ); it is never stored.
  /// Decided by the table, which knows the progress; never by decide().
  late,
  /// Late, but below an offset the state decided before, and the progress
  /// its first reading met is not known (work restored from the changelog,
  /// or a replay from further back than the table keeps): the progress it
  /// meets may be ahead of that one, so it passes, whatever
  /// `dedup.lateRecords` says. A restart never turns a record into a dropped
  /// one.
  replayed_late,
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

/// Whether a sighting is past keeping: more than `kept` (window::kept())
/// behind `event_time_ms`, the partition's event-time progress.
bool expired(const sighting& s, std::int64_t event_time_ms,
             std::chrono::milliseconds kept);

} // namespace sluice::dedup
