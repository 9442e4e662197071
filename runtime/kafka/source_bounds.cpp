#include "runtime/kafka/source_bounds.hpp"

#include "runtime/errors.hpp"

#include <algorithm>

namespace sluice::kafka {

offset_map source_partitions(group_consumer& consumer, const source_options& src,
                             std::chrono::milliseconds timeout) {
  auto all = consumer.end_offsets(consumer.topics_now(timeout), timeout);
  if (src.subscription != subscription_kind::assign) return all;
  offset_map out;
  for (auto& tp : src.assign) {
    auto it = all.find(tp);
    if (it == all.end())
      throw config_error("source.assign",
                         "`" + tp.str() + "` does not exist (`" + tp.topic + "` has " +
                             std::to_string(std::count_if(
                                 all.begin(), all.end(),
                                 [&](auto& e) { return e.first.topic == tp.topic; })) +
                             " partition(s))");
    out.insert(*it);
  }
  return out;
}

void check_named_partitions(const source_options& src, const offset_map& partitions) {
  auto check = [&](const partition_offsets& named, const char* option) {
    for (auto& [tp, value] : named)
      if (!partitions.contains(tp))
        throw config_error(option, "`" + tp.str() +
                                       "` is not a partition the source reads (it does "
                                       "not exist, or is not assigned)");
  };
  check(src.starting_specific, "source.startingOffsets");
  check(src.starting_by_timestamp, "source.startingOffsetsByTimestamp");
  check(src.ending_specific, "source.endingOffsets");
  check(src.ending_by_timestamp, "source.endingOffsetsByTimestamp");
}

offset_map resolve_ends(group_consumer& consumer, const source_options& src,
                        const offset_map& latest) {
  auto by_time = [&](const topic_partition& tp, std::int64_t ts, std::int64_t end) {
    return consumer.offset_for_time(tp, ts, std::chrono::seconds(10)).value_or(end);
  };
  offset_map ends;
  for (auto& [tp, end] : latest) {
    if (src.ending_timestamp) {
      ends[tp] = by_time(tp, *src.ending_timestamp, end);
    } else if (!src.ending_by_timestamp.empty()) {
      auto it = src.ending_by_timestamp.find(tp);
      if (it == src.ending_by_timestamp.end())
        throw config_error("source.endingOffsetsByTimestamp",
                           "`" + tp.str() +
                               "` is read but has no end: with per-partition ends, every "
                               "partition read needs one (Spark's rule)");
      ends[tp] = by_time(tp, it->second, end);
    } else if (!src.ending_specific.empty()) {
      auto it = src.ending_specific.find(tp);
      if (it == src.ending_specific.end())
        throw config_error("source.endingOffsets",
                           "`" + tp.str() +
                               "` is read but has no end: with per-partition ends, every "
                               "partition read needs one (Spark's rule)");
      ends[tp] = it->second == -1 ? end : it->second;
    } else {
      ends[tp] = end;
    }
  }
  return ends;
}

} // namespace sluice::kafka
