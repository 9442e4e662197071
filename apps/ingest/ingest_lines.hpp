#pragma once

// Files to Kafka (`sluice ingest`): what a line becomes, and reading lines
// from a file descriptor that a stop request can interrupt. No Kafka here.

#include <sluice/record.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::ingest {

struct line_rules {
  /// The field whose value is the record's key; empty: no key.
  std::string key_field;
  /// Headers every record gets.
  std::vector<header> headers;
};

/// A line's fate: a record to write, a reason to reject it, or nothing (a
/// blank line).
struct line_outcome {
  std::optional<record> rec;
  std::string reject_reason;
  bool blank = false;
};

/// A line (without its newline; a trailing CR is dropped) must be one JSON
/// object; its value is the line as it came, its key the key field's value
/// (a string as is, a number or boolean as its JSON text).
line_outcome read_line(std::string_view line, const line_rules& rules);

/// Lines of a file descriptor, read in blocks; next() returns false at the
/// end, or once `stop` is set (checked at least every 200 ms while waiting).
class line_reader {
public:
  line_reader(int fd, const std::atomic<bool>& stop) : fd_(fd), stop_(stop) {}
  /// The next line, without its newline; throws std::system_error on a read error.
  bool next(std::string& line);

private:
  int fd_;
  const std::atomic<bool>& stop_;
  std::string buffer_;
  std::size_t at_ = 0;
  bool eof_ = false;
};

} // namespace sluice::ingest
