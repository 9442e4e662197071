#include "apps/ingest/ingest_lines.hpp"

#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <poll.h>
#include <system_error>
#include <unistd.h>

namespace sluice::ingest {

line_outcome read_line(std::string_view line, const line_rules& rules) {
  line_outcome out;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) {
    out.blank = true;
    return out;
  }
  boost::json::error_code ec;
  boost::json::stream_parser parser;
  auto used = parser.write(line.data(), line.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    out.reject_reason = "not JSON (" + ec.message() + ") at column " +
                        std::to_string(std::min(used, line.size()) + 1);
    return out;
  }
  auto v = parser.release();
  if (!v.is_object()) {
    out.reject_reason = "not a JSON object";
    return out;
  }
  record r;
  if (!rules.key_field.empty()) {
    auto* k = v.as_object().if_contains(rules.key_field);
    if (!k || k->is_null()) {
      out.reject_reason =
          "no key: field `" + rules.key_field + "` is " + (k ? "null" : "missing");
      return out;
    }
    if (k->is_string())
      r.key = std::string(k->get_string());
    else if (k->is_int64())
      r.key = std::to_string(k->get_int64());
    else if (k->is_uint64())
      r.key = std::to_string(k->get_uint64());
    else if (k->is_double()) {
      char text[32]; // shortest round-trip form: 1.5, not Boost's 1.5E0
      auto end = std::to_chars(text, text + sizeof text, k->get_double()).ptr;
      r.key = std::string(text, end);
    } else if (k->is_bool())
      r.key = k->get_bool() ? "true" : "false";
    else {
      out.reject_reason =
          "no key: field `" + rules.key_field + "` is not a string, number or boolean";
      return out;
    }
  }
  r.value = std::string(line);
  r.headers = rules.headers;
  out.rec = std::move(r);
  return out;
}

bool line_reader::next(std::string& line) {
  for (;;) {
    auto nl = buffer_.find('\n', at_);
    if (nl != std::string::npos) {
      line.assign(buffer_, at_, nl - at_);
      at_ = nl + 1;
      return true;
    }
    if (eof_) {
      if (at_ >= buffer_.size()) return false;
      line.assign(buffer_, at_); // the last line, without a newline
      at_ = buffer_.size();
      return true;
    }
    buffer_.erase(0, at_);
    at_ = 0;
    // Wait for input in short steps, so that a stop is seen on an idle stdin.
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, 200);
    if (stop_.load()) return false;
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw std::system_error(errno, std::generic_category(), "poll");
    if (ready == 0) continue;
    char block[65536];
    auto n = ::read(fd_, block, sizeof block);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "read");
    if (n == 0)
      eof_ = true;
    else
      buffer_.append(block, static_cast<std::size_t>(n));
  }
}

} // namespace sluice::ingest
