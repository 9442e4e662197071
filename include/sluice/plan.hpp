#pragma once

#include <sluice/config.hpp>
#include <sluice/topic_partition.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

/// Where a run would read one partition: `sluice plan`'s rows.
struct partition_plan {
  kafka::topic_partition tp;
  std::int64_t committed = -1;     ///< the group's offset; -1: none
  std::int64_t start = 0;          ///< where reading would start
  std::optional<std::int64_t> end; ///< where it would stop; none: unbounded
  std::int64_t log_start = 0, log_end = 0;
  std::int64_t lost = 0; ///< records deleted before they were read
};

/// Resolves the subscription, the group's committed offsets and the start and
/// end rules of `config` (its defaults filled, then validated) against its
/// cluster, consuming and committing nothing, within
/// `config.runtime.brokerTimeout`. Throws config_error or fatal_error for
/// what would make a run fail at start.
std::vector<partition_plan> plan(const pipeline_config& config);

/// The plan as one JSON document: {"partitions": [{"topic", "partition",
/// "committedOffset", "startOffset", "endOffset", "logStartOffset",
/// "logEndOffset", "records", "lostRecords"}...]}.
std::string plan_json(const std::vector<partition_plan>& plan);

} // namespace sluice
