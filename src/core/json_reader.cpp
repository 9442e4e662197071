#include "core/json_reader.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_stack.hpp>

#include <charconv>
#include <string>

namespace json = boost::json;

namespace sluice {

namespace {

/// Builds the value as boost::json::parser does, except for doubles, which
/// are read again from their text with std::from_chars (correctly rounded).
struct exact_handler {
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  json::value_stack st;
  std::string number; // the parts of a number split across writes

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) { return true; }
  bool on_object_end(std::size_t n, json::error_code&) {
    st.push_object(n);
    return true;
  }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t n, json::error_code&) {
    st.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    st.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    st.push_string(s);
    return true;
  }
  bool on_number_part(json::string_view s, json::error_code&) {
    number.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    number.clear();
    st.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    number.clear();
    st.push_uint64(u);
    return true;
  }
  bool on_double(double d, json::string_view s, json::error_code&) {
    number.append(s.data(), s.size());
    double exact = 0;
    auto [end, err] =
        std::from_chars(number.data(), number.data() + number.size(), exact);
    // Out of range (1e999, 1e-999): Boost's value (infinity or zero) stands.
    if (err == std::errc() && end == number.data() + number.size()) d = exact;
    number.clear();
    st.push_double(d);
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    st.push_bool(b);
    return true;
  }
  bool on_null(json::error_code&) {
    st.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

} // namespace

struct json_reader::impl {
  json::basic_parser<exact_handler> parser{json::parse_options{}};
};

json_reader::json_reader() : impl_(std::make_unique<impl>()) {}
json_reader::~json_reader() = default;

json::value json_reader::read(std::string_view text, std::error_code& ec,
                              json::storage_ptr storage) {
  auto& p = impl_->parser;
  p.reset();
  p.handler().st.reset(std::move(storage));
  p.handler().number.clear();
  json::error_code jec;
  auto n = p.write_some(false, text.data(), text.size(), jec);
  if (!jec && n < text.size()) jec = json::error::extra_data;
  if (jec) {
    p.fail(jec);
    ec = jec;
    // What was built so far, and the storage, go now: a batch's arena must
    // not stay alive in the reader until the next read.
    p.handler().st.reset();
    return nullptr;
  }
  ec.clear();
  auto doc = p.handler().st.release();
  p.handler().st.reset(); // the stack keeps no reference to the storage
  return doc;
}

std::string_view json_kind_name(const boost::json::value& v) {
  switch (v.kind()) {
  case boost::json::kind::null:
    return "null";
  case boost::json::kind::bool_:
    return "boolean";
  case boost::json::kind::int64:
  case boost::json::kind::uint64:
    return "integer";
  case boost::json::kind::double_:
    return "double";
  case boost::json::kind::string:
    return "string";
  case boost::json::kind::array:
    return "array";
  case boost::json::kind::object:
    return "object";
  }
  return "?";
}

} // namespace sluice
