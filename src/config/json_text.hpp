#pragma once

// Where things are in a pipeline file's text: a key given twice (Boost.JSON
// keeps the last one silently), and "line L, column C" for messages.

#include <boost/json/parse_options.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace sluice::config {

/// A key given twice in one object of `text` (valid JSON): the option it
/// names under `root`, and where in `text` its second occurrence starts.
std::optional<std::pair<std::string, std::size_t>>
find_duplicate_key(std::string_view text, const std::string& root,
                   const boost::json::parse_options& opts);

/// What a message says of a key given twice.
extern const char* const given_twice;

/// "at line L, column C" of `offset` in `text`, with (part of) the line and a
/// caret under the character; string contents masked when the file names a
/// secret anywhere.
std::string position_in(std::string_view text, std::size_t offset);

} // namespace sluice::config
