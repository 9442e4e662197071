#pragma once

#include <boost/json/fwd.hpp>
#include <boost/json/storage_ptr.hpp>

#include <memory>
#include <string_view>
#include <system_error>

namespace sluice {

/// Reads one complete JSON text into a boost::json::value, with every number
/// that has a fraction or exponent read to the nearest double. Boost.JSON
/// 1.81's own parser is off by one unit in the last place for about one
/// decimal in ten (933.0544305299615 becomes 933.05443052996156): a value a
/// record carries must come out as it went in, and two dedup keys must not
/// merge. Reuses its buffers: one per thread.
class json_reader {
public:
  json_reader();
  ~json_reader();
  json_reader(const json_reader&) = delete;
  json_reader& operator=(const json_reader&) = delete;

  /// The value of `text`, or a null value with `ec` set (malformed, trailing
  /// data, or nested deeper than 32). Its memory comes from `storage`.
  boost::json::value read(std::string_view text, std::error_code& ec,
                          boost::json::storage_ptr storage = {});

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// What a JSON value is, as DLQ reasons name it: null, boolean, integer,
/// double, string, array or object.
std::string_view json_kind_name(const boost::json::value& v);

} // namespace sluice
