#pragma once

#include "runtime/kafka/consumer.hpp"
#include "runtime/options.hpp"

#include <chrono>
#include <string>

namespace sluice::kafka {

/// The partitions a source reads now (the assignment's, or every partition of
/// the subscribed or matching topics), each with its current end offset.
/// Throws config_error for an assigned partition that does not exist,
/// missing_topic_error or fatal_error as group_consumer::end_offsets does.
offset_map source_partitions(group_consumer& consumer, const source_options& src,
                             std::chrono::milliseconds timeout);

/// Throws config_error naming the option when a partition named in a
/// per-partition option (starting or ending offsets or timestamps) is not
/// among `partitions`.
void check_named_partitions(const source_options& src, const offset_map& partitions);

/// Where each partition of a bounded run stops, from `latest` (the current end
/// offsets) and the ending options in Spark's precedence: endingTimestamp,
/// endingOffsetsByTimestamp, endingOffsets; without any, `latest` itself
/// (availableNow, once). A timestamp no record reaches means the latest offset.
offset_map resolve_ends(group_consumer& consumer, const source_options& src,
                        const offset_map& latest);

} // namespace sluice::kafka
