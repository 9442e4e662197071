#pragma once

#include <sluice/config.hpp>
#include <sluice/record.hpp>
#include <sluice/row.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

// The seam between payload bytes and rows. The parse stage decodes a value
// into a row and then checks it against `parse.schema` (whatever the format);
// the sink, and a step that changed a schemaless record's fields, encode a
// row into value bytes. One decoder and one encoder per actor: neither is
// thread-safe (they reuse buffers).

/// Turns a record's value bytes into its fields.
class decoder {
public:
  virtual ~decoder() = default;
  /// Fills `out` from a non-empty value, or says why it cannot: the record
  /// then goes to the DLQ with that reason.
  virtual std::optional<record_error> decode(std::string_view value, row& out) = 0;
  /// Where the rows decoded from now on keep their memory (the batch's
  /// arena; the default heap when never set).
  void use_storage(boost::json::storage_ptr storage) { storage_ = std::move(storage); }

protected:
  boost::json::storage_ptr storage_;
};

/// Turns a row into value bytes.
class encoder {
public:
  virtual ~encoder() = default;
  /// Appends the bytes of `fields` to `out`.
  virtual void encode(const row& fields, std::string& out) = 0;
};

/// The decoder and encoder of a pipeline's payload format (JSON, the only one
/// so far: `parse.format` is still to come).
std::unique_ptr<decoder> make_decoder(const parse_options& opts);
std::unique_ptr<encoder> make_encoder(const parse_options& opts);

} // namespace sluice
