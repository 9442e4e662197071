#pragma once

#include <boost/json/fwd.hpp>

#include <string>

namespace sluice {

/// Appends `v` as compact JSON to `out`. Unlike boost::json::serialize,
/// doubles are written in their shortest round-trip form as people and Spark
/// write them (67.27, 5.0, 1e+21), not as 6.727E1.
void write_json(const boost::json::value& v, std::string& out);
void write_json(const boost::json::object& o, std::string& out);

/// Appends `v` in a canonical form: equal JSON values give equal text. A
/// number with an integral value is written as an integer (1, 1.0 and 1e0
/// are one number), object members are sorted by name. For keys (dedup),
/// never for output.
void write_canonical_json(const boost::json::value& v, std::string& out);

} // namespace sluice
