#pragma once

// Writes a record batch straight onto the wire, bypassing librdkafka's
// producer, so that tests can put records into a log that no client would
// write: here, a batch whose CRC is wrong.

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::testing {

/// Sends one Produce request (v3) with a RecordBatch (v2) of `values` to
/// `broker` ("host:port", the partition's leader) whose CRC32C is wrong.
/// Returns the batch's base offset; throws on a broker error.
std::int64_t produce_corrupt_batch(const std::string& broker, const std::string& topic,
                                   std::int32_t partition,
                                   const std::vector<std::string>& values);

} // namespace sluice::testing
