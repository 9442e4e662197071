#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace sluice::testing {

/// One generated order event, as written to Kafka.
struct order_event {
  std::string key;   ///< customer_id
  std::string value; ///< JSON, or deliberately broken bytes
  std::string correlation_id;
  std::string priority; ///< high, medium or low; empty when malformed
  std::string order_id;
  /// Empty for a good event; otherwise how it is broken: truncated,
  /// wrong_type, missing_order_id, not_utf8, empty_value.
  std::string malformation;
  /// Set when this event re-sends an earlier one (a retrying producer): the
  /// sequence number of the original, whose key, value and headers it has.
  std::optional<std::int64_t> duplicate_of;
};

/// The pipeline `parse` section for order events, as JSON text: every field
/// typed, the fields a consumer needs required. Shared by the demo, the tests
/// and the benchmarks so that they validate the same way.
std::string order_parse_section();

/// The `sluice.error.type` a pipeline with the order schema (all fields typed,
/// order_id required) gives an event broken this way.
std::string expected_error_type(const std::string& malformation);

/// Deterministic order events: the same seed gives the same sequence, so a
/// test can regenerate what was written and compare it with what came out.
class order_generator {
public:
  /// A `duplicate_fraction` of events re-send one of the 100 before them.
  order_generator(std::uint64_t seed, double malformed_fraction, int customers = 5000,
                  double duplicate_fraction = 0);

  /// The event with sequence number `i`; independent of call order.
  order_event make(std::int64_t i) const;

private:
  std::uint64_t seed_;
  double malformed_fraction_;
  int customers_;
  double duplicate_fraction_;
};

/// Gives a good event's value `bytes` bytes where it can (for benches of record
/// size): a longer one loses its optional fields (product_id, order_time), a
/// shorter one gets a `note` field of filler (or spaces). Broken events stay as they are;
/// the minimal event (~100 bytes) is not cut further.
void fit_value(order_event& event, std::size_t bytes);

/// What produce_orders wrote.
struct produced {
  std::int64_t malformed = 0;
  std::int64_t duplicates =
      0; ///< re-sent events (each a later offset, a later timestamp)
};

/// Writes `count` events to `topic` (at most `rate` per second when given)
/// and waits for every delivery. Throws fatal_error when a delivery fails.
/// `props` are extra librdkafka producer properties (e.g. compression.type);
/// `value_bytes` > 0 fits each good event's value to that size (fit_value).
produced produce_orders(const std::string& bootstrap, const std::string& topic,
                        std::int64_t count, std::optional<double> rate,
                        double malformed_fraction, std::uint64_t seed,
                        std::map<std::string, std::string> props = {},
                        double duplicate_fraction = 0, std::size_t value_bytes = 0);

} // namespace sluice::testing
