#pragma once

#include <boost/json/fwd.hpp>

#include <string>

namespace sluice {

/// Appends `v` as compact JSON to `out`. Unlike boost::json::serialize,
/// doubles are written in their shortest round-trip form as people and Spark
/// write them (67.27, 5.0, 1e+21), not as 6.727E1.
void write_json(const boost::json::value& v, std::string& out);
void write_json(const boost::json::object& o, std::string& out);

} // namespace sluice
