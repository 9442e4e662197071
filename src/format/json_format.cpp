#include "core/json_reader.hpp"
#include "core/json_writer.hpp"
#include "format/format.hpp"

#include <boost/json/value.hpp>

namespace sluice {

namespace {

/// A JSON object per value; its members are the row's fields.
class json_decoder final : public decoder {
public:
  std::optional<record_error> decode(std::string_view value, row& out) override {
    std::error_code ec;
    auto doc = reader_.read(value, ec, storage_);
    if (ec)
      return record_error{"malformed_json",
                          "the value is not valid JSON: " + ec.message()};
    if (!doc.is_object())
      return record_error{"not_an_object", "expected a JSON object, got a JSON " +
                                               std::string(json_kind_name(doc))};
    out = row(std::move(doc.get_object()));
    return std::nullopt;
  }

private:
  json_reader reader_;
};

/// Compact JSON on one line, doubles in their shortest round-trip form.
class json_encoder final : public encoder {
public:
  void encode(const row& fields, std::string& out) override {
    write_json(fields.tree(), out);
  }
};

} // namespace

std::unique_ptr<decoder> make_decoder(const parse_options&) {
  return std::make_unique<json_decoder>();
}

std::unique_ptr<encoder> make_encoder(const parse_options&) {
  return std::make_unique<json_encoder>();
}

} // namespace sluice
