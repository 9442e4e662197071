// Small questions asked of options: a source's description, whether it has an
// end, whether epochs admit records, durations, secret and producer properties.
#include "config/checks.hpp"

#include <sluice/config.hpp>
#include <sluice/errors.hpp>

#include <algorithm>
#include <regex>
#include <string>

namespace sluice {

std::string source_description(const source_options& s) {
  std::string out;
  switch (s.subscription) {
  case subscription_kind::subscribe:
    for (auto& t : s.subscribe)
      out += (out.empty() ? "" : ",") + t;
    return "KafkaV2[Subscribe[" + out + "]]";
  case subscription_kind::pattern:
    return "KafkaV2[SubscribePattern[" + s.pattern + "]]";
  case subscription_kind::assign:
    for (auto& tp : s.assign)
      out += (out.empty() ? "" : ", ") + tp.topic + "-" + std::to_string(tp.partition);
    return "KafkaV2[Assign[" + out + "]]";
  }
  return "KafkaV2";
}

bool has_ending(const source_options& s) {
  return s.ending_latest || !s.ending_specific.empty() ||
         !s.ending_by_timestamp.empty() || s.ending_timestamp.has_value();
}

bool admits_by_epoch(const pipeline_config& c) {
  using kind = trigger_options::kind;
  bool runs_to_end =
      c.trigger.mode == kind::available_now || c.trigger.mode == kind::once;
  return c.source.max_offsets_per_trigger.has_value() ||
         (c.source.min_offsets_per_trigger.has_value() && !runs_to_end);
}

std::chrono::milliseconds parse_duration(std::string_view text,
                                         const std::string& option) {
  // An amount, decimals allowed as in Spark's interval strings, and a unit.
  static const std::regex re(R"(^\s*(-?)(\d*)(?:\.(\d*))?\s*([a-zA-Z]*)\s*$)");
  std::string s(text);
  std::smatch m;
  auto fail = [&](const std::string& hint = "") -> std::chrono::milliseconds {
    throw config_error(option,
                       "expected a duration like \"1 second\", \"500 milliseconds\" "
                       "or \"2 minutes\" (units: ms, seconds, minutes, hours, days, "
                       "weeks), got `" +
                           s + "`" + hint);
  };
  if (!std::regex_match(s, m, re)) return fail();
  auto whole = m[2].str();
  auto fraction = m[3].str();
  if (whole.empty() && fraction.empty()) return fail();
  // Beyond these, the amount is longer than 10 years or finer than 1 ms anyway.
  if (whole.size() > 12 || fraction.size() > 9) return fail();
  auto unit = m[4].str();
  std::transform(unit.begin(), unit.end(), unit.begin(), ::tolower);
  bool zero = (whole + fraction).find_first_not_of('0') == std::string::npos;
  std::int64_t unit_ms = 0;
  if (unit == "ms" || unit == "millisecond" || unit == "milliseconds")
    unit_ms = 1;
  else if (unit == "s" || unit == "sec" || unit == "second" || unit == "seconds")
    unit_ms = 1000;
  else if (unit == "m" || unit == "min" || unit == "minute" || unit == "minutes")
    unit_ms = 60'000;
  else if (unit == "h" || unit == "hour" || unit == "hours")
    unit_ms = 3'600'000;
  else if (unit == "d" || unit == "day" || unit == "days")
    unit_ms = 86'400'000;
  else if (unit == "w" || unit == "week" || unit == "weeks")
    unit_ms = 7 * 86'400'000LL;
  else if (unit.empty() && zero)
    return std::chrono::milliseconds(0); // nothing needs no unit
  else if (unit.empty())
    return fail(": add a unit, like \"" + m[1].str() + whole +
                (m[3].matched ? "." + fraction : "") + " seconds\"");
  else
    return fail();
  // Far beyond any sensible setting, and near where time arithmetic overflows.
  constexpr std::int64_t limit = 10LL * 365 * 86'400'000;
  bool negative = m[1].length() > 0;
  auto out_of_range = [&] {
    return config_error(option,
                        "`" + s + "` is " +
                            (negative ? "negative: expected a duration of 0 or more"
                                      : "longer than 10 years"));
  };
  std::int64_t n = whole.empty() ? 0 : std::stoll(whole);
  if (n > limit / unit_ms) throw out_of_range();
  // Exactly: the fraction's digits times the unit, rounded half up to 1 ms.
  std::int64_t scale = 1;
  for (std::size_t i = 0; i < fraction.size(); ++i)
    scale *= 10;
  std::int64_t part = fraction.empty() ? 0 : std::stoll(fraction);
  auto ms = n * unit_ms + (part * unit_ms + scale / 2) / scale;
  // What rounds to nothing is nothing, whatever its sign.
  if (ms > limit || (negative && ms != 0)) throw out_of_range();
  return std::chrono::milliseconds(ms);
}

bool is_secret_property(std::string_view name) {
  for (auto word :
       {"password", "secret", "jaas", "token", "key.pem", "keystore", "credential"})
    if (name.find(word) != std::string_view::npos) return true;
  return false;
}

bool is_producer_property(std::string_view name) {
  return config::producer_only(name);
}

bool is_consumer_property(std::string_view name) {
  return config::consumer_only(name);
}

} // namespace sluice
