#include "kafka/source_bounds.hpp"

#include "core/log.hpp"
#include "source/admission.hpp"

#include <sluice/errors.hpp>

#include <algorithm>
#include <thread>

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

source_ends read_source_ends(group_consumer& consumer, const source_options& src,
                             std::chrono::steady_clock::time_point deadline,
                             std::chrono::milliseconds broker_timeout,
                             const std::function<bool()>& stopped) {
  auto missing_deadline =
      std::chrono::steady_clock::now() +
      std::min<std::chrono::milliseconds>(broker_timeout, std::chrono::seconds(5));
  source_ends out;
  for (;;) {
    if (stopped()) {
      sluice::logger().info("stopped before the end offsets could be read");
      return out;
    }
    try {
      // Each request waits at most what is left of the timeout (at least
      // 100 ms), so that the run fails when it says, not 2 s later.
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      out.latest = source_partitions(
          consumer, src,
          std::clamp<std::chrono::milliseconds>(left, std::chrono::milliseconds(100),
                                                std::chrono::seconds(2)));
      return out;
    } catch (const missing_topic_error& e) {
      // Metadata can lag a topic's creation for a moment; longer is an answer.
      if (std::chrono::steady_clock::now() < missing_deadline) {
        sluice::logger().warn("{} (yet; asking again)", e.what());
        std::this_thread::sleep_for(std::chrono::milliseconds(500)); // backoff
        continue;
      }
      out.error = std::string(e.what()) + " at " + src.bootstrap_servers +
                  " (check the source's topics, or create the topic: this cluster "
                  "does not create topics when they are read)";
      return out;
    } catch (const config_error&) {
      throw;
    } catch (const fatal_error& e) {
      if (std::chrono::steady_clock::now() >= deadline) {
        out.error = "cannot read the end offsets at " + src.bootstrap_servers +
                    " within runtime.brokerTimeout (" +
                    std::to_string(broker_timeout.count() / 1000) + " s): " + e.what();
        return out;
      }
      sluice::logger().warn("{} (retrying)", e.what());
    }
  }
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
  // With per-partition ends, every partition read needs one (Spark's rule).
  auto named = [](const partition_offsets& ends, const topic_partition& tp,
                  const char* option) {
    auto it = ends.find(tp);
    if (it == ends.end())
      throw config_error(option, "`" + tp.str() +
                                     "` is read but has no end: with per-partition ends, "
                                     "every partition read needs one (Spark's rule)");
    return it->second;
  };
  offset_map ends;
  for (auto& [tp, end] : latest) {
    if (src.ending_timestamp) {
      ends[tp] = by_time(tp, *src.ending_timestamp, end);
    } else if (!src.ending_by_timestamp.empty()) {
      ends[tp] = by_time(
          tp, named(src.ending_by_timestamp, tp, "source.endingOffsetsByTimestamp"), end);
    } else if (!src.ending_specific.empty()) {
      auto n = named(src.ending_specific, tp, "source.endingOffsets");
      ends[tp] = n == -1 ? end : n;
    } else {
      ends[tp] = end;
    }
  }
  return ends;
}

std::vector<partition_plan> plan_source(group_consumer& consumer,
                                        const pipeline_config& cfg,
                                        std::chrono::milliseconds timeout) {
  auto& src = cfg.source;
  auto latest = source_partitions(consumer, src, timeout);
  check_named_partitions(src, latest);
  bool bounded = cfg.trigger.mode == trigger_options::kind::available_now ||
                 cfg.trigger.mode == trigger_options::kind::once || has_ending(src);
  auto ends = bounded ? resolve_ends(consumer, src, latest) : offset_map{};
  std::vector<topic_partition> parts;
  for (auto& [tp, end] : latest)
    parts.push_back(tp);
  auto committed = consumer.committed(parts, timeout);
  std::vector<partition_plan> out;
  for (auto& tp : parts) {
    auto range = consumer.log_range(tp, timeout);
    if (!range) throw fatal_error("cannot read the log range of " + tp.str());
    assigned_partition a;
    a.tp = tp;
    a.log_start = range->first;
    a.latest = range->second;
    partition_plan p;
    p.tp = tp;
    p.committed = committed.at(tp);
    if (auto why = consumer.planned_start(a, p.committed)) throw fatal_error(*why);
    p.start = a.start_offset;
    p.lost = a.lost;
    p.log_start = a.log_start;
    p.log_end = a.latest;
    if (bounded) {
      p.end = ends.at(tp);
      cap_loss_at_end(a, *p.end);
      p.start = a.start_offset;
      p.lost = a.lost;
    }
    // The run's own check: a start from the options past the end fails.
    if (p.end && !a.from_commit && a.lost == 0 && p.start > *p.end)
      throw fatal_error(tp.str() + ": the start options put its start at " +
                        std::to_string(p.start) + ", after its end " +
                        std::to_string(*p.end) + " (set source.startingOffsets)");
    out.push_back(p);
  }
  // A capped `once` stops after its one epoch: its share of the cap.
  if (cfg.trigger.mode == trigger_options::kind::once && src.max_offsets_per_trigger) {
    std::map<topic_partition, backlog_range> backlog;
    for (auto& p : out)
      if (p.end) backlog[p.tp] = {p.start, std::max(p.start, *p.end)};
    auto limits = prorate(backlog, src.max_offsets_per_trigger);
    for (auto& p : out)
      if (auto l = limits.find(p.tp); l != limits.end()) p.end = l->second;
  }
  return out;
}

void cap_loss_at_end(assigned_partition& a, std::int64_t end) {
  if (a.lost > 0 && a.start_offset > end) {
    a.lost = std::max<std::int64_t>(0, a.lost - (a.start_offset - end));
    a.start_offset = end;
  }
}

} // namespace sluice::kafka
