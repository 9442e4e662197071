#pragma once

#include <sluice/config.hpp>
#include <sluice/record.hpp>

namespace sluice {

/// Chooses each record's output topic: a fixed topic, or a topic looked up by
/// the value of one field. Immutable once built; safe to share.
class record_router {
public:
  explicit record_router(route_options opts);

  /// Sets `rec.target_topic`, or `rec.error` (kind `unroutable`) when the
  /// field's value maps to no topic and there is no default.
  void route(record& rec) const;

  /// Every topic a record can be routed to.
  std::vector<std::string> targets() const;

private:
  route_options opts_;
};

} // namespace sluice
