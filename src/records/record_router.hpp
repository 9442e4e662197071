#pragma once

#include <sluice/config.hpp>
#include <sluice/record.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace sluice {

/// Chooses each record's output topic: a fixed topic, a topic looked up by
/// the value of one field, or a user's function. Immutable once built; safe
/// to share (the user's function is called from every partition's chain).
class record_router {
public:
  /// A route function's answer is checked for every record (fixed topics
  /// were checked at start): `is_source` tells a topic the pipeline reads;
  /// `reserved` maps the topics no record may go to (the DLQ, the dedup
  /// changelog) to what they are, for the DLQ reason.
  explicit record_router(route_options opts,
                         std::function<bool(const std::string&)> is_source = {},
                         std::map<std::string, std::string> reserved = {});

  /// The router of a pipeline: its route, with the source's topics (a topic
  /// the source reads, or whose name its pattern matches) and its DLQ and
  /// dedup changelog guarded against a route function's answers.
  static record_router for_pipeline(const pipeline_config& cfg);

  /// Sets `rec.target_topic`, or `rec.error` (kind `unroutable`) when the
  /// field's value maps to no topic and there is no default.
  void route(record& rec) const;

  /// Every topic a record can be routed to.
  std::vector<std::string> targets() const;

private:
  route_options opts_;
  std::function<bool(const std::string&)> is_source_;
  std::map<std::string, std::string> reserved_;
};

} // namespace sluice
