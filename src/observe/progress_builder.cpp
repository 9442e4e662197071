#include "observe/progress_builder.hpp"

#include <algorithm>

namespace sluice {

namespace {

std::string status_message(run_status status, const epoch_reading& r) {
  switch (status) {
  case run_status::source_unreachable:
    return "cannot reach the source cluster for " +
           std::to_string(r.source.down_ms / 1000) + " s: " + r.source.error;
  case run_status::sink_unreachable:
    return "cannot reach the sink cluster for " + std::to_string(r.sink.down_ms / 1000) +
           " s: " + r.sink.error;
  case run_status::processing:
    return "Processing new data";
  case run_status::waiting_for_trigger:
    return "Waiting for next trigger";
  case run_status::waiting_for_data:
    break;
  }
  return "Waiting for data to arrive";
}

} // namespace

progress_builder::progress_builder(identity id, std::int64_t now_ms)
    : id_(std::move(id)), epoch_start_ms_(now_ms) {}

void progress_builder::continue_after(std::int64_t committed_batch_id) {
  batch_id_ = std::max(batch_id_, committed_batch_id + 1);
}

std::optional<closed_epoch> progress_builder::close(const epoch_reading& r,
                                                    std::int64_t now_ms, bool force) {
  closed_epoch out;
  auto& p = out.progress;
  p.id = id_.query_id;
  p.run_id = id_.run_id;
  p.name = id_.name;
  p.batch_id = batch_id_;
  p.timestamp_ms = epoch_start_ms_;
  p.duration_ms = now_ms - epoch_start_ms_;
  p.source_description = id_.source_description;
  p.sink_description = id_.sink_description;
  auto& c = r.counts;
  auto rows = c.rows - at_start_.rows;
  p.num_output_rows = rows.outputs;
  p.num_dlq_rows = rows.dlq;
  p.num_dropped_rows = rows.dropped;
  p.num_processed_rows = p.num_output_rows + p.num_dlq_rows + p.num_dropped_rows;
  if (r.state) {
    state_operator_progress so;
    so.rows_total = r.state->rows;
    so.rows_updated = c.state_updated - at_start_.state_updated;
    so.rows_removed = c.state_removed - at_start_.state_removed;
    so.memory_used_bytes = r.state->memory_bytes;
    so.dropped_duplicates = rows.duplicates;
    so.late_rows = rows.late;
    p.state_operators.push_back(so);
  }
  std::int64_t in_flight = 0;
  bool held_back = false;
  for (auto& [tp, part] : r.partitions) {
    partition_progress pp;
    pp.topic = tp.topic;
    pp.partition = tp.partition;
    pp.start_offset = part.epoch_start;
    pp.end_offset = part.watermark; // replaced by the commit's outcome
    pp.latest_offset = part.latest;
    // A partition's counter restarts when it is assigned anew.
    auto& consumed_before = consumed_at_start_[tp];
    if (part.consumed < consumed_before) consumed_before = 0;
    pp.num_input_rows = part.consumed - consumed_before;
    consumed_before = part.consumed;
    if (auto it = r.lost.find(tp); it != r.lost.end()) {
      auto& seen = lost_reported_[tp];
      pp.num_lost_rows = it->second - seen;
      seen = it->second;
      p.num_lost_rows += pp.num_lost_rows;
    }
    if (r.admitted)
      if (auto it = r.admitted->find(tp); it != r.admitted->end()) {
        pp.admitted_offset = it->second.second;
        pp.admitted_rows = it->second.second - it->second.first;
      }
    pp.in_flight = part.in_flight;
    in_flight += part.in_flight;
    p.num_input_rows += pp.num_input_rows;
    p.partitions.push_back(pp);
    out.prior_committed[tp] = part.committed;
    held_back = held_back || part.latest > part.watermark;
  }
  if (r.source.down_ms > 0)
    out.status = run_status::source_unreachable;
  else if (r.sink.down_ms > 0)
    out.status = run_status::sink_unreachable;
  else if (p.num_input_rows > 0 || in_flight > 0)
    out.status = run_status::processing;
  else if (r.rate_limited && held_back)
    out.status = run_status::waiting_for_trigger;
  else
    out.status = run_status::waiting_for_data;
  p.message = status_message(out.status, r);
  // An unreachable cluster is reported when it starts and then at the idle
  // heartbeat's pace, not every epoch.
  bool unreachable = is_unreachable(out.status);
  bool active = p.num_input_rows > 0 || p.num_processed_rows > 0 || in_flight > 0 ||
                p.num_lost_rows > 0 || (unreachable && !is_unreachable(last_status_));
  epoch_start_ms_ = now_ms;
  at_start_ = c;
  // Idle heartbeats start with the first assignment, so that the epoch
  // numbering can first continue from the commit metadata; but a cluster
  // that cannot be reached (so never assigns) is reported at their pace.
  if (!force && !active &&
      ((!r.assigned && !unreachable) || now_ms - last_report_ms_ < idle_report_ms))
    return std::nullopt;
  last_report_ms_ = now_ms;
  last_status_ = out.status;
  ++batch_id_;
  return out;
}

} // namespace sluice
