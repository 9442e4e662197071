#include "records/record_parser.hpp"

#include "core/json_reader.hpp"
#include "core/json_writer.hpp"
#include "format/format.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

namespace json = boost::json;

namespace sluice {

namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return false;
  return std::all_of(s.begin() + pos, s.begin() + pos + n,
                     [](char c) { return c >= '0' && c <= '9'; });
}

int number(std::string_view s, std::size_t pos, std::size_t n) {
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i)
    v = v * 10 + (s[i] - '0');
  return v;
}

/// Checks one value against its declared type; converts ints to doubles for
/// `double` fields so outputs carry one type per field.
bool conforms(const json::value& v, field_type t) {
  switch (t) {
  case field_type::string_t:
    return v.is_string();
  case field_type::int_t:
    if (v.is_int64())
      return v.get_int64() >= std::numeric_limits<std::int32_t>::min() &&
             v.get_int64() <= std::numeric_limits<std::int32_t>::max();
    return v.is_uint64() && v.get_uint64() <= std::numeric_limits<std::int32_t>::max();
  case field_type::long_t:
    return v.is_int64() ||
           (v.is_uint64() && v.get_uint64() <= std::numeric_limits<std::int64_t>::max());
  case field_type::double_t:
    // An integer is a double value too, and is written as the integer it is.
    if (v.is_double()) return std::isfinite(v.get_double());
    return v.is_int64() || v.is_uint64();
  case field_type::boolean_t:
    return v.is_bool();
  case field_type::timestamp_t:
    return v.is_string() && is_iso8601_timestamp(v.get_string());
  }
  return false;
}

/// The first required field that is missing or null, as a DLQ reason.
std::optional<record_error> missing_required(const parse_options& opts,
                                             const json::object& obj,
                                             std::string_view when) {
  for (auto& name : opts.required) {
    auto* v = obj.if_contains(name);
    if (!v || v->is_null())
      return record_error{"missing_field",
                          std::string(when) + "required field `" + name + "` is missing"};
  }
  return std::nullopt;
}

record_error wrong_type(const schema_field& f, const json::value& v,
                        std::string_view when) {
  std::string shown; // numbers as people write them: 1.5, not 1.5E0
  write_json(v, shown);
  return record_error{"wrong_type", std::string(when) + "field `" + f.name +
                                        "` should be " + std::string(to_string(f.type)) +
                                        ", got " + std::string(json_kind_name(v)) + " " +
                                        shown.substr(0, 40)};
}

} // namespace

bool is_iso8601_timestamp(std::string_view s) {
  // Date: YYYY-MM-DD
  if (!digits(s, 0, 4) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2) ||
      s[7] != '-' || !digits(s, 8, 2))
    return false;
  // A real calendar date (proleptic Gregorian: 2024-02-29 yes, 2023-02-29 no).
  int year = number(s, 0, 4), month = number(s, 5, 2), day = number(s, 8, 2);
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  static constexpr int days_in[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1) return false;
  if (day > days_in[month - 1] + (month == 2 && leap ? 1 : 0)) return false;
  if (s.size() == 10) return true;
  // Time: [T ]HH:MM[:SS[.fraction]]
  if ((s[10] != 'T' && s[10] != ' ') || !digits(s, 11, 2) || s.size() < 16 ||
      s[13] != ':' || !digits(s, 14, 2))
    return false;
  if (number(s, 11, 2) > 23 || number(s, 14, 2) > 59) return false;
  std::size_t pos = 16;
  if (pos < s.size() && s[pos] == ':') {
    if (!digits(s, pos + 1, 2) || number(s, pos + 1, 2) > 60) return false;
    pos += 3;
    if (pos < s.size() && s[pos] == '.') {
      std::size_t start = ++pos;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9')
        ++pos;
      if (pos == start || pos - start > 9) return false;
    }
  }
  // Zone: Z, ±HH:MM, ±HHMM, or none (local time)
  if (pos == s.size()) return true;
  if (s[pos] == 'Z') return pos + 1 == s.size();
  if (s[pos] != '+' && s[pos] != '-') return false;
  // Offsets range over ±18:00, as in ISO-8601 practice (java.time's limit).
  if (!digits(s, pos + 1, 2)) return false;
  int hours = number(s, pos + 1, 2);
  pos += 3;
  if (pos < s.size() && s[pos] == ':') ++pos;
  if (!digits(s, pos, 2) || pos + 2 != s.size()) return false;
  int minutes = number(s, pos, 2);
  return minutes < 60 && hours * 60 + minutes <= 18 * 60;
}

std::optional<std::int64_t> iso8601_to_epoch_ms(std::string_view s) {
  if (!is_iso8601_timestamp(s)) return std::nullopt;
  // Days from the civil date (Howard Hinnant's algorithm).
  std::int64_t y = number(s, 0, 4), m = number(s, 5, 2), d = number(s, 8, 2);
  y -= m <= 2;
  auto era = (y >= 0 ? y : y - 399) / 400;
  auto yoe = y - era * 400;
  auto doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  auto doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  auto days = era * 146097 + doe - 719468;
  std::int64_t ms = days * 86400000;
  if (s.size() == 10) return ms;
  ms += (number(s, 11, 2) * 3600 + number(s, 14, 2) * 60) * std::int64_t{1000};
  std::size_t pos = 16;
  if (pos < s.size() && s[pos] == ':') {
    ms += number(s, pos + 1, 2) * std::int64_t{1000};
    pos += 3;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      std::int64_t scale = 100;
      for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos, scale /= 10)
        ms += (s[pos] - '0') * scale;
    }
  }
  if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int sign = s[pos] == '+' ? 1 : -1;
    int hours = number(s, pos + 1, 2);
    pos += 3;
    if (s[pos] == ':') ++pos;
    int minutes = number(s, pos, 2);
    ms -= sign * (hours * 60 + minutes) * std::int64_t{60000};
  }
  return ms;
}

record_parser::record_parser(parse_options opts)
    : opts_(std::move(opts)), decoder_(make_decoder(opts_)) {
  for (auto& name : opts_.required)
    if (std::none_of(opts_.fields.begin(), opts_.fields.end(),
                     [&](const schema_field& f) { return f.name == name; }))
      required_outside_schema_.push_back(name);
}

bool record_parser::in_schema_order(const json::object& obj) const {
  if (obj.size() != opts_.fields.size()) return false;
  auto it = obj.begin();
  for (auto& f : opts_.fields) {
    if (it->key() != f.name || it->value().is_null()) return false;
    ++it;
  }
  return true;
}

std::optional<record_error> record_parser::type_error(const schema_field& f,
                                                      const json::value& v) const {
  if (v.is_double() && !std::isfinite(v.get_double()))
    return record_error{"wrong_type", "field `" + f.name + "` is out of range for " +
                                          std::string(to_string(f.type))};
  if (!conforms(v, f.type)) return wrong_type(f, v, "");
  return std::nullopt;
}

record_parser::~record_parser() = default;

void record_parser::use_storage(json::storage_ptr storage) {
  decoder_->use_storage(std::move(storage));
}

void record_parser::parse(record& rec) {
  if (!rec.value) {
    // A tombstone: a delete on a compacted topic.
    switch (opts_.tombstones) {
    case tombstone_policy::dlq:
      rec.error = record_error{"empty_value", "the record has a null value (a tombstone; "
                                              "set parse.tombstones to pass or drop)"};
      break;
    case tombstone_policy::pass:
      break; // the router sends it on, key and null value
    case tombstone_policy::drop:
      rec.dropped = true;
      break;
    }
    return;
  }
  if (rec.value->empty()) {
    rec.error = record_error{"empty_value", "the record has an empty value"};
    return;
  }
  if (auto failed = decoder_->decode(*rec.value, rec.fields)) {
    rec.error = std::move(*failed);
    return;
  }
  // From here on the checks read the row: the same for every format. A
  // record that fails them keeps no fields (stages see an empty row).
  if (auto failed = check(rec.fields.tree())) {
    rec.error = std::move(*failed);
    rec.fields = row();
  }
}

std::optional<record_error> record_parser::check(json::object& obj) const {
  // Most producers write the schema's fields in its order, none null: then
  // the required ones in the schema are there, and the row stays as it is.
  if (!opts_.fields.empty() && in_schema_order(obj)) {
    for (auto& name : required_outside_schema_)
      if (auto* v = obj.if_contains(name); !v || v->is_null())
        return record_error{"missing_field", "required field `" + name + "` is missing"};
    auto it = obj.begin();
    for (auto& f : opts_.fields) {
      if (auto bad = type_error(f, (it++)->value())) return bad;
    }
    return std::nullopt;
  }
  if (auto missing = missing_required(opts_, obj, "")) return missing;
  if (opts_.fields.empty()) return std::nullopt;
  // Like Spark's from_json: the output keeps the schema's fields, in its order.
  json::object out(obj.storage());
  out.reserve(opts_.fields.size());
  for (auto& f : opts_.fields) {
    auto* v = obj.if_contains(f.name);
    if (!v || v->is_null()) continue;
    if (auto bad = type_error(f, *v)) return bad;
    out.emplace(f.name, std::move(*v));
  }
  obj = std::move(out);
  return std::nullopt;
}

std::optional<record_error> check_after_steps(const parse_options& opts,
                                              const row& fields) {
  constexpr std::string_view when = "after the steps, ";
  auto& obj = fields.tree();
  if (auto missing = missing_required(opts, obj, when)) return missing;
  for (auto& f : opts.fields)
    if (auto* v = obj.if_contains(f.name); v && !v->is_null() && !conforms(*v, f.type))
      return wrong_type(f, *v, when);
  return std::nullopt;
}

void write_fields(const record& rec, std::string& out) {
  append_json(rec.fields, out);
}

std::optional<std::int64_t> parse_timestamp_ms(std::string_view text) {
  return iso8601_to_epoch_ms(text);
}

} // namespace sluice
