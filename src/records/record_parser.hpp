#pragma once

#include <sluice/config.hpp>
#include <sluice/record.hpp>

#include <boost/json/fwd.hpp>

#include <memory>
#include <optional>

namespace sluice {

class decoder;

/// The parse stage's rules: tombstones and empty values, decoding by the
/// pipeline's format, then `parse.required` and `parse.schema` checked on the
/// decoded row (whatever the format). Owned by one parser actor; not
/// thread-safe (its decoder reuses buffers).
class record_parser {
public:
  explicit record_parser(parse_options opts);
  ~record_parser();

  /// Fills `rec.fields`, or sets `rec.error` when the value cannot be
  /// decoded, misses a required field or has a field of the wrong type.
  void parse(record& rec);
  /// Where the rows parsed from now on keep their memory (a batch's arena).
  void use_storage(boost::json::storage_ptr storage);

private:
  /// parse.required and parse.schema on a decoded row; keeps the schema's
  /// fields only.
  std::optional<record_error> check(boost::json::object& fields) const;
  /// The schema's fields, in its order, none null, and nothing else.
  bool in_schema_order(const boost::json::object& fields) const;
  std::optional<record_error> type_error(const schema_field& f,
                                         const boost::json::value& v) const;

  parse_options opts_;
  std::vector<std::string> required_outside_schema_;
  std::unique_ptr<decoder> decoder_;
};

/// With a `parse.schema`: whether a row the steps changed still holds the
/// schema's fields with their declared types, and the required ones (a record
/// written from its fields must not break the schema it was read with).
/// Fields the steps added outside the schema are free.
std::optional<record_error> check_after_steps(const parse_options& opts,
                                              const row& fields);

/// True when `s` is an ISO-8601 date or date-time, like 2024-05-01,
/// 2024-05-01T12:30:00Z or 2024-05-01T12:30:00.125+02:00.
bool is_iso8601_timestamp(std::string_view s);

/// Epoch milliseconds of an ISO-8601 timestamp (one that
/// is_iso8601_timestamp accepts); a timestamp without a zone is read as UTC.
std::optional<std::int64_t> iso8601_to_epoch_ms(std::string_view s);

} // namespace sluice
