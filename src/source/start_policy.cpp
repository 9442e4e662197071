#include "source/start_policy.hpp"

#include "core/log.hpp"

namespace sluice {

std::optional<std::string> choose_start(const source_options& opts,
                                        kafka::assigned_partition& a,
                                        std::int64_t committed, bool is_new,
                                        bool fail_on_loss,
                                        const offset_for_time_lookup& offset_for_time) {
  auto lo = a.log_start, hi = a.latest;
  auto by_time = [&](std::int64_t ts, const char* option) -> std::optional<std::string> {
    auto found = offset_for_time(a.tp, ts);
    if (found) {
      a.start_offset = *found;
      return std::nullopt;
    }
    if (opts.starting_strategy == timestamp_strategy::latest) {
      a.start_offset = hi;
      return std::nullopt;
    }
    return a.tp.str() + ": no record at or after " + option + " " + std::to_string(ts) +
           " (set source.startingOffsetsByTimestampStrategy to latest to start at the "
           "end instead)";
  };
  // An app that keeps its own positions (an enrichment table) starts from
  // its start options whatever the group committed.
  if (!opts.start_from_commits) committed = -1;
  if (committed >= 0) {
    a.start_offset = committed;
    a.from_commit = true;
    if (committed > hi) {
      // The log is shorter than what was read: it was truncated, or the topic
      // recreated. Records may be gone; how many cannot be known.
      auto what = a.tp.str() + ": the committed offset " + std::to_string(committed) +
                  " is past the end of the log (" + std::to_string(hi) +
                  "): the log was truncated or the topic recreated";
      if (fail_on_loss)
        return what + " (source.failOnDataLoss is true; set it to false to read it from "
                      "its start)";
      sluice::logger().warn(
          "{}; reading it from its start (source.failOnDataLoss is false)", what);
      a.start_offset = lo;
      a.from_commit = false;
    }
  } else if (is_new) {
    sluice::logger().info(
        "{}: a partition that appeared while running starts at earliest", a.tp.str());
    a.start_offset = lo;
  } else if (opts.starting_timestamp) {
    if (auto why = by_time(*opts.starting_timestamp, "startingTimestamp")) return why;
  } else if (!opts.starting_by_timestamp.empty()) {
    auto it = opts.starting_by_timestamp.find(a.tp);
    if (it == opts.starting_by_timestamp.end())
      return a.tp.str() + " is not in source.startingOffsetsByTimestamp: with "
                          "per-partition timestamps, every partition read needs one "
                          "(Spark's rule)";
    if (auto why = by_time(it->second, "startingOffsetsByTimestamp")) return why;
  } else if (opts.starting == starting_offsets::specific) {
    auto it = opts.starting_specific.find(a.tp);
    if (it == opts.starting_specific.end())
      return a.tp.str() +
             " is not in source.startingOffsets: with per-partition offsets, "
             "every partition read needs one (Spark's rule)";
    a.start_offset = it->second == -2 ? lo : it->second == -1 ? hi : it->second;
    if (a.start_offset > hi)
      return a.tp.str() + ": source.startingOffsets asks for offset " +
             std::to_string(a.start_offset) + ", past the end of the log (" +
             std::to_string(hi) + ")";
  } else {
    a.start_offset = opts.starting == starting_offsets::earliest ? lo : hi;
  }
  // Records deleted by retention before they were read.
  if (a.start_offset < lo) {
    auto gone = lo - a.start_offset;
    auto what = a.tp.str() + ": the next offset to read is " +
                std::to_string(a.start_offset) + " but the log starts at " +
                std::to_string(lo) + ": " + std::to_string(gone) +
                " record(s) were deleted before they were read";
    if (fail_on_loss)
      return what + " (source.failOnDataLoss is true; set it to false to skip them)";
    if (!opts.fail_on_data_loss)
      sluice::logger().warn("{}; skipping them (source.failOnDataLoss is false)", what);
    a.lost = gone;
    a.start_offset = lo;
  }
  return std::nullopt;
}

} // namespace sluice
