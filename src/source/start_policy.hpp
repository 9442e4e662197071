#pragma once

#include "kafka/assigned_partition.hpp"

#include <sluice/config.hpp>

#include <functional>
#include <optional>
#include <string>

namespace sluice {

/// The first offset of `tp` whose timestamp is at or after `timestamp_ms`;
/// none when every record is older. May throw fatal_error when the brokers
/// do not answer. The one broker question the start rules ask.
using offset_for_time_lookup = std::function<std::optional<std::int64_t>(
    const kafka::topic_partition& tp, std::int64_t timestamp_ms)>;

/// Where a newly assigned partition starts, by Spark's rules: the group's
/// committed offset (-1: none) when `opts.start_from_commits`; else, for a
/// partition that appeared while running (`is_new`), its log start; else
/// `startingTimestamp`, `startingOffsetsByTimestamp`, then `startingOffsets`.
/// `a` comes with its log range and leaves with `start_offset`, `from_commit`
/// and `lost` set: records deleted before they were read are skipped and
/// counted, or, with `fail_on_loss`, the answer is why the run must fail
/// instead (as it is for a start the options cannot give).
std::optional<std::string> choose_start(const source_options& opts,
                                        kafka::assigned_partition& a,
                                        std::int64_t committed, bool is_new,
                                        bool fail_on_loss,
                                        const offset_for_time_lookup& offset_for_time);

} // namespace sluice
