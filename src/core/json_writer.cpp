#include "core/json_writer.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <vector>

namespace sluice {

namespace {

void write_double(double d, std::string& out) {
  // JSON has no NaN or infinity (Boost.JSON reads 1e400 as infinity, and a
  // step may compute NaN): null, as Spark writes them.
  if (!std::isfinite(d)) {
    out += "null";
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string_view s(buf, static_cast<std::size_t>(end - buf));
  out += s;
  if (s.find_first_of(".e") == std::string_view::npos)
    out += ".0"; // keep it a double for readers that infer types
}

void write_string(boost::json::string_view s, std::string& out) {
  out += boost::json::serialize(s); // escaping as Boost.JSON does it
}

/// `[a,b,...]`, each element written by `write`.
template <class Write>
void write_array(const boost::json::array& a, std::string& out, Write write) {
  out += '[';
  bool first = true;
  for (auto& e : a) {
    if (!first) out += ',';
    first = false;
    write(e, out);
  }
  out += ']';
}

} // namespace

void write_json(const boost::json::object& o, std::string& out) {
  out += '{';
  bool first = true;
  for (auto& kv : o) {
    if (!first) out += ',';
    first = false;
    write_string(kv.key(), out);
    out += ':';
    write_json(kv.value(), out);
  }
  out += '}';
}

void write_json(const boost::json::value& v, std::string& out) {
  switch (v.kind()) {
  case boost::json::kind::object:
    write_json(v.get_object(), out);
    break;
  case boost::json::kind::array:
    write_array(v.get_array(), out,
                [](const boost::json::value& e, std::string& o) { write_json(e, o); });
    break;
  case boost::json::kind::string:
    write_string(v.get_string(), out);
    break;
  case boost::json::kind::double_:
    write_double(v.get_double(), out);
    break;
  case boost::json::kind::int64:
    out += std::to_string(v.get_int64());
    break;
  case boost::json::kind::uint64:
    out += std::to_string(v.get_uint64());
    break;
  case boost::json::kind::bool_:
    out += v.get_bool() ? "true" : "false";
    break;
  case boost::json::kind::null:
    out += "null";
    break;
  }
}

void write_canonical_json(const boost::json::value& v, std::string& out) {
  switch (v.kind()) {
  case boost::json::kind::object: {
    std::vector<const boost::json::key_value_pair*> members;
    members.reserve(v.get_object().size());
    for (auto& kv : v.get_object())
      members.push_back(&kv);
    std::sort(members.begin(), members.end(),
              [](auto* a, auto* b) { return a->key() < b->key(); });
    out += '{';
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (i) out += ',';
      write_string(members[i]->key(), out);
      out += ':';
      write_canonical_json(members[i]->value(), out);
    }
    out += '}';
    break;
  }
  case boost::json::kind::array:
    write_array(v.get_array(), out, [](const boost::json::value& e, std::string& o) {
      write_canonical_json(e, o);
    });
    break;
  case boost::json::kind::double_: {
    // An integral value within 64 bits is the integer it equals.
    double d = v.get_double();
    // Not null: 1e400, -1e400 and NaN are three keys, none of them null.
    if (std::isnan(d)) {
      out += "NaN";
      break;
    }
    if (std::isinf(d)) {
      out += d > 0 ? "1e999" : "-1e999";
      break;
    }
    if (d == std::trunc(d)) {
      if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
        out += std::to_string(static_cast<std::int64_t>(d));
        break;
      }
      if (d >= 0 && d < 18446744073709551616.0) {
        out += std::to_string(static_cast<std::uint64_t>(d));
        break;
      }
    }
    write_double(d, out);
    break;
  }
  default:
    write_json(v, out);
  }
}

} // namespace sluice
