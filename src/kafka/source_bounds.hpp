#pragma once

#include "kafka/consumer.hpp"

#include <sluice/config.hpp>
#include <sluice/plan.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

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

/// Where a run would read one partition, as `sluice plan` prints it.
/// Resolves the subscription, the group's committed offsets and the start and
/// end rules, consuming and committing nothing. Throws config_error or
/// fatal_error for what would make a run fail at start.
std::vector<partition_plan> plan_source(group_consumer& consumer,
                                        const pipeline_config& cfg,
                                        std::chrono::milliseconds timeout);

/// A bounded run whose records retention deleted up to past the end
/// (failOnDataLoss false): the partition starts at its end, reading nothing,
/// and only the records of its range count as lost; the rest are the next
/// run's to count.
void cap_loss_at_end(assigned_partition& a, std::int64_t end);

} // namespace sluice::kafka
