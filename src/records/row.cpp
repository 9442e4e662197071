#include "core/json_writer.hpp"

#include <sluice/row.hpp>

#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <cmath>
#include <limits>

namespace sluice {

namespace json = boost::json;

namespace {

const char* name_of(field_kind k) {
  switch (k) {
  case field_kind::missing:
    return "missing";
  case field_kind::null:
    return "null";
  case field_kind::boolean:
    return "a boolean";
  case field_kind::integer:
    return "an integer";
  case field_kind::number:
    return "a number";
  case field_kind::string:
    return "text";
  case field_kind::list:
    return "a list";
  case field_kind::record:
    return "a record";
  }
  return "?";
}

field_kind kind_of(const json::value& v) noexcept {
  switch (v.kind()) {
  case json::kind::null:
    return field_kind::null;
  case json::kind::bool_:
    return field_kind::boolean;
  case json::kind::int64:
  case json::kind::uint64:
    return field_kind::integer;
  case json::kind::double_:
    return field_kind::number;
  case json::kind::string:
    return field_kind::string;
  case json::kind::array:
    return field_kind::list;
  case json::kind::object:
    return field_kind::record;
  }
  return field_kind::null;
}

[[noreturn]] void wrong_type(std::string_view name, const json::value& v,
                             const char* wanted) {
  throw field_error("field `" + std::string(name) + "` is " + name_of(kind_of(v)) +
                    ", not " + wanted);
}

/// The field's value, or null when it is missing or null.
const json::value* present(const json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  return v && !v->is_null() ? v : nullptr;
}

} // namespace

std::vector<std::string_view> row::names() const {
  std::vector<std::string_view> out;
  out.reserve(fields_.size());
  for (auto& f : fields_)
    out.emplace_back(f.key());
  return out;
}

field_kind row::kind(std::string_view name) const noexcept {
  auto* v = fields_.if_contains(name);
  return v ? kind_of(*v) : field_kind::missing;
}

std::optional<std::string_view> row::read(std::string_view name,
                                          std::string_view*) const {
  auto* v = present(fields_, name);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrong_type(name, *v, "text");
  return std::string_view(v->get_string());
}

std::optional<std::string> row::read(std::string_view name, std::string*) const {
  if (auto s = read(name, static_cast<std::string_view*>(nullptr)))
    return std::string(*s);
  return std::nullopt;
}

std::optional<std::int64_t> row::read(std::string_view name, std::int64_t*) const {
  auto* v = present(fields_, name);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) {
    if (v->get_uint64() <= std::uint64_t(std::numeric_limits<std::int64_t>::max()))
      return static_cast<std::int64_t>(v->get_uint64());
    throw field_error("field `" + std::string(name) +
                      "` is beyond a signed 64-bit integer");
  }
  if (v->is_double()) {
    // 3.0 in a payload is the integer 3; 3.5 is not an integer at all.
    double d = v->get_double();
    if (std::trunc(d) == d && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
      return static_cast<std::int64_t>(d);
  }
  wrong_type(name, *v, "an integer");
}

std::optional<double> row::read(std::string_view name, double*) const {
  auto* v = present(fields_, name);
  if (!v) return std::nullopt;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  wrong_type(name, *v, "a number");
}

std::optional<bool> row::read(std::string_view name, bool*) const {
  auto* v = present(fields_, name);
  if (!v) return std::nullopt;
  if (!v->is_bool()) wrong_type(name, *v, "a boolean");
  return v->get_bool();
}

std::optional<std::string> row::text(std::string_view name) const {
  auto* v = present(fields_, name);
  if (!v) return std::nullopt;
  if (v->is_string()) return std::string(v->get_string());
  std::string out;
  write_json(*v, out); // 1.0 as "1.0", not "1E0"
  return out;
}

namespace {

/// Sets `name` to `v`. In place when the field is there; otherwise added at
/// the end under a copy of the name, since inserting may move the row's
/// storage and `name` may be a view into it.
void put(json::object& fields, std::string_view name, json::value v) {
  if (auto* at = fields.if_contains(name)) {
    *at = std::move(v);
    return;
  }
  fields.emplace(std::string(name), std::move(v));
}

} // namespace

void row::set(std::string_view name, std::string_view value) {
  // Copied first: `value` may be a view into this row (copying a field).
  put(fields_, name, json::string(value, fields_.storage()));
}
void row::set_integer(std::string_view name, std::int64_t value) {
  put(fields_, name, json::value(value, fields_.storage()));
}
void row::set_unsigned(std::string_view name, std::uint64_t value) {
  if (value <= std::uint64_t(std::numeric_limits<std::int64_t>::max()))
    put(fields_, name, json::value(static_cast<std::int64_t>(value), fields_.storage()));
  else
    put(fields_, name, json::value(value, fields_.storage()));
}
void row::set(std::string_view name, double value) {
  if (std::isfinite(value))
    put(fields_, name, json::value(value, fields_.storage()));
  else
    put(fields_, name, json::value(nullptr, fields_.storage()));
}
void row::set(std::string_view name, float value) {
  if (!std::isfinite(value)) return set(name, nullptr);
  // The double a person reads in the float: its shortest decimal text.
  char text[32];
  auto [end, ec] = std::to_chars(text, text + sizeof text, value);
  double d = value;
  if (ec == std::errc()) std::from_chars(text, end, d);
  set(name, d);
}
void row::set(std::string_view name, bool value) {
  put(fields_, name, json::value(value, fields_.storage()));
}
void row::set(std::string_view name, std::nullptr_t) {
  put(fields_, name, json::value(nullptr, fields_.storage()));
}

bool row::erase(std::string_view name_view) {
  if (!fields_.contains(name_view)) return false;
  // A copy: `name_view` may view a value that is moved below.
  const std::string name(name_view);
  // object::erase moves the last field into the gap (Boost 1.81 has no
  // stable erase): the order is kept by copying the others.
  boost::json::object kept(fields_.storage());
  kept.reserve(fields_.size() - 1);
  for (auto& f : fields_)
    if (f.key() != name) kept.emplace(f.key(), std::move(f.value()));
  fields_ = std::move(kept);
  return true;
}

void append_json(const row& fields, std::string& out) {
  write_json(fields.tree(), out);
}

} // namespace sluice
