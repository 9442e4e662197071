#pragma once

#include "kafka/consumer.hpp"

#include <sluice/config.hpp>
#include <sluice/plan.hpp>

#include <chrono>
#include <functional>
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

/// What reading the source's end offsets at the start of a run came to.
struct source_ends {
  /// Every partition the source reads, with its end offset; none when the
  /// run cannot go on (`error`) or a stop came first (no error).
  std::optional<offset_map> latest;
  std::string error;
};

/// source_partitions(), asked again in short steps until `deadline` (from
/// runtime.brokerTimeout), so that `stopped` is honoured meanwhile; a topic
/// that does not exist is asked for again for up to 5 s (metadata can lag a
/// topic's creation). Throws config_error as source_partitions does.
source_ends read_source_ends(group_consumer& consumer, const source_options& src,
                             std::chrono::steady_clock::time_point deadline,
                             std::chrono::milliseconds broker_timeout,
                             const std::function<bool()>& stopped);

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
