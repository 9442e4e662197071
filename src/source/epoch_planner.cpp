#include "source/epoch_planner.hpp"

#include "core/log.hpp"
#include "source/admission.hpp"

#include <algorithm>

namespace sluice {

epoch_planner::epoch_planner(rules r) : rules_(std::move(r)) {}

std::optional<epoch_planner::limit_map> epoch_planner::open(
    const position_map& positions, std::int64_t now_ms,
    const std::function<std::int64_t(const kafka::topic_partition&)>& cached_latest) {
  std::map<kafka::topic_partition, backlog_range> backlog;
  std::int64_t total = 0;
  for (auto& [tp, p] : positions) {
    auto begin = p.watermark;
    if (auto a = admitted_end_.find(tp); a != admitted_end_.end())
      begin = std::max(begin, a->second);
    if (begin < 0) continue;
    // Only offsets that exist are admitted, even under an end past them.
    auto latest = std::max(p.latest, cached_latest(tp));
    std::int64_t end = begin;
    auto& ends = rules_.end_offsets;
    if (auto e = ends.find(tp); e != ends.end())
      end = latest >= 0 ? std::min(e->second, latest) : e->second;
    else if (ends.empty())
      end = latest;
    end = std::max(end, begin);
    backlog[tp] = {begin, end};
    total += end - begin;
  }
  if (total == 0) return std::nullopt;
  if (!rules_.runs_to_end && rules_.min_offsets && total < *rules_.min_offsets &&
      now_ms - last_trigger_ms_ < rules_.max_trigger_delay_ms) {
    sluice::logger().debug("{} offset(s) waiting, below source.minOffsetsPerTrigger "
                           "({}): the epoch waits",
                           total, *rules_.min_offsets);
    return std::nullopt;
  }
  auto limits = prorate(backlog, rules_.max_offsets);
  ranges_.clear();
  std::int64_t admitted = 0;
  for (auto& [tp, limit] : limits) {
    ranges_[tp] = {backlog[tp].begin, limit};
    admitted_end_[tp] = limit;
    admitted += limit - backlog[tp].begin;
  }
  if (rules_.once) {
    once_limits_ = limits;
    once_admitted_ = true;
  }
  open_ = true;
  last_trigger_ms_ = now_ms;
  sluice::logger().debug("epoch admits {} of {} waiting offset(s)", admitted, total);
  return limits;
}

bool epoch_planner::handled(const position_map& positions) const {
  for (auto& [tp, range] : ranges_) {
    auto it = positions.find(tp);
    if (it == positions.end() || it->second.watermark >= range.second) continue;
    // Handled up to its last stable offset while a transaction is open: done
    // for this epoch (as in Spark, whose read_committed latest is the last
    // stable offset); the rest is admitted again by the next one.
    auto& p = it->second;
    if (p.stable_end >= 0 && p.stable_end < range.second && p.watermark >= p.stable_end)
      continue;
    return false;
  }
  return true;
}

void epoch_planner::close(const position_map& positions) {
  open_ = false;
  for (auto& [tp, range] : ranges_)
    if (auto it = positions.find(tp);
        it != positions.end() && it->second.watermark < range.second)
      admitted_end_[tp] = it->second.watermark;
}

bool epoch_planner::complete(const position_map& positions) const {
  if (rules_.end_offsets.empty()) return false;
  for (auto& [tp, end] : rules_.end_offsets) {
    auto it = positions.find(tp);
    if (it == positions.end()) return false;
    auto target = end;
    // A capped `once` ends with its single epoch.
    if (once_admitted_)
      if (auto l = once_limits_.find(tp); l != once_limits_.end())
        target = std::min(target, l->second);
    if (it->second.watermark < target) return false;
  }
  return true;
}

bool epoch_planner::once_due(const position_map& positions) const {
  if (!rules_.once || once_admitted_) return false;
  for (auto& [tp, end] : rules_.end_offsets)
    if (!positions.contains(tp)) return false;
  return true;
}

void epoch_planner::forget(const kafka::topic_partition& tp) {
  admitted_end_.erase(tp);
  ranges_.erase(tp);
}

std::optional<std::int64_t>
epoch_planner::once_limit(const kafka::topic_partition& tp) const {
  auto l = once_limits_.find(tp);
  if (l == once_limits_.end()) return std::nullopt;
  return l->second;
}

} // namespace sluice
