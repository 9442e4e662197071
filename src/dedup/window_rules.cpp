#include "dedup/window_rules.hpp"

namespace sluice::dedup {

decision decide(const std::optional<sighting>& stored, const sighting& record,
                std::chrono::milliseconds within) {
  if (!stored) return {verdict::first, record};
  if (stored->offset == record.offset) return {verdict::replay, std::nullopt};
  if (stored->offset > record.offset) return {verdict::leftover, record};
  // Event times may arrive out of order: the distance either way counts.
  auto distance = record.event_time_ms - stored->event_time_ms;
  if (distance < 0) distance = -distance;
  if (distance <= within.count()) return {verdict::duplicate, std::nullopt};
  return {verdict::renewed, record};
}

bool expired(const sighting& s, std::int64_t event_time_ms,
             std::chrono::milliseconds kept) {
  return event_time_ms - s.event_time_ms > kept.count();
}

} // namespace sluice::dedup
