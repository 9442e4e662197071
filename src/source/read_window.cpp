#include "source/read_window.hpp"

#include <algorithm>
#include <iterator>

namespace sluice {

namespace {

bool is_consume_error(const record& r) {
  return r.error && r.error->type == "consume-error";
}

} // namespace

std::int64_t record_bytes(const record& r) {
  std::size_t n = (r.key ? r.key->size() : 0) + (r.value ? r.value->size() : 0);
  for (auto& h : r.headers)
    n += h.name.size() + (h.value ? h.value->size() : 0);
  return static_cast<std::int64_t>(n);
}

std::size_t read_window::take_held(std::vector<record>& out, std::size_t want) {
  auto n = std::min(held_.size(), want);
  auto end = held_.begin() + static_cast<std::ptrdiff_t>(n);
  std::size_t bytes = 0;
  for (auto it = held_.begin(); it != end; ++it) // the poll counted them when held
    bytes += static_cast<std::size_t>(record_bytes(*it));
  std::move(held_.begin(), end, std::back_inserter(out));
  held_.erase(held_.begin(), end);
  return bytes;
}

void read_window::note_poll(std::optional<std::int64_t> end_of_log,
                            const std::vector<record>& polled) {
  // librdkafka reports an end of log once per position: remembered until a
  // record comes from at or past it.
  if (end_of_log) end_of_log_ = *end_of_log;
  if (end_of_log_ >= 0 && !polled.empty() && polled.back().offset >= end_of_log_)
    end_of_log_ = -1;
}

read_window::cut read_window::trim(std::vector<record>& recs, const bounds& at,
                                   const loss_rules& loss) {
  cut out;
  auto issued_end = at.issued_end;
  // Records before the read position are re-deliveries of issued offsets.
  auto first_new = std::find_if(recs.begin(), recs.end(), [&](const record& r) {
    return r.offset >= issued_end || is_consume_error(r);
  });
  recs.erase(recs.begin(), first_new);
  // A record set librdkafka cannot decode is reported at its first offset,
  // and librdkafka does not always move past it (it fetches the same set
  // again when nothing follows it in the response). Each offset it covers
  // goes to the DLQ, and the read position steps past it, one at a time;
  // what this poll returned after the error is read again after the step.
  bool cut_short = false;
  auto bad = std::find_if(recs.begin(), recs.end(), is_consume_error);
  if (bad != recs.end()) {
    auto next = bad == recs.begin() ? issued_end : std::prev(bad)->offset + 1;
    std::optional<std::int64_t> step;
    if (bad->offset >= next) {
      step = bad->offset; // a new bad set
      stepping_ = bad->offset;
    } else if (stepping_ && bad->offset == *stepping_) {
      step = next; // the same set again: its next offset
      bad->error->message = "offset " + std::to_string(next) +
                            " is inside a record set that failed: " + bad->error->message;
    }
    if (step) {
      bad->offset = *step;
      recs.erase(std::next(bad), recs.end());
      cut_short = true;
      out.seek_to = *step + 1;
      end_of_log_ = -1; // records below it are fetched again
    } else {
      recs.erase(bad); // stale: from before the read position
    }
  } else if (!recs.empty()) {
    stepping_.reset();
  }
  // Records at or past the end offset belong to a later run.
  if (at.end_offset) {
    auto past_end = std::find_if(recs.begin(), recs.end(), [&](const record& r) {
      return r.offset >= *at.end_offset;
    });
    recs.erase(past_end, recs.end());
  }
  // Past the admission limit: kept for a later epoch, in order.
  auto past_limit = std::find_if(recs.begin(), recs.end(),
                                 [&](const record& r) { return r.offset >= at.limit; });
  if (past_limit != recs.end()) {
    for (auto it = past_limit; it != recs.end(); ++it) // counted when read again
      out.bytes_held_back += static_cast<std::size_t>(record_bytes(*it));
    held_.insert(held_.begin(), std::make_move_iterator(past_limit),
                 std::make_move_iterator(recs.end()));
    recs.erase(past_limit, recs.end());
  }
  // A jump over offsets below the log start: retention deleted records
  // before they were read (librdkafka moved the position up, possibly in
  // the middle of what it had queued). Holes above the log start are
  // compaction or transaction markers, never loss.
  std::optional<std::int64_t> log_start; // looked up at the first hole only
  auto lost_until = loss.lost_until;
  // Offsets [prev, next) produced no record: loss when below the log start.
  // Returns false when the run must fail (failOnDataLoss).
  auto check_gap = [&](std::int64_t prev, std::int64_t next) {
    if (!log_start) log_start = loss.log_start();
    // Counted once, even when a restarted chain reads the gap again.
    auto from = std::max(prev, lost_until);
    auto to = std::min(*log_start, next);
    if (to <= from) return true;
    auto what = loss.partition + ": the next offset to read was " + std::to_string(prev) +
                " but the log now starts at " + std::to_string(*log_start) + ": " +
                std::to_string(to - from) +
                " record(s) were deleted before they were read";
    if (loss.fail_on_data_loss) {
      out.loss_failure =
          what + " (source.failOnDataLoss is true; set it to false to skip them)";
      return false;
    }
    out.lost.push_back({from, to, std::move(what)});
    lost_until = to;
    return true;
  };
  {
    auto prev = issued_end;
    for (auto it = recs.begin(); it != recs.end(); ++it) {
      if (it->offset > prev && !is_consume_error(*it) && !check_gap(prev, it->offset)) {
        // What came before the gap is issued; nothing past it is.
        recs.erase(it, recs.end());
        break;
      }
      prev = std::max(prev, it->offset + 1);
    }
  }
  // The epoch's admitted range ends inside a hole: the rest of it is
  // handled. Deleted records (failOnDataLoss false) are skipped whole, past
  // the limit: they are not records, and a cap must not crawl through them.
  std::optional<std::int64_t> skip_to;
  bool skip_past_limit = false;
  if (recs.empty() && !out.loss_failure && !held_.empty() &&
      held_.front().offset >= at.limit && at.limit > issued_end &&
      check_gap(issued_end, held_.front().offset)) {
    skip_to = at.limit;
    if (log_start && *log_start > at.limit) {
      skip_to = std::min(*log_start, held_.front().offset);
      skip_past_limit = true;
    }
  }
  if (out.loss_failure) return out;
  // The end of log seen in an earlier epoch counts too: one whose limit
  // fell among the offsets before it that hold no record would otherwise
  // wait for another end-of-log event, which never comes. Not while
  // records below the limit are still held.
  bool held_below_limit = !held_.empty() && held_.front().offset < at.limit;
  if (end_of_log_ >= 0 && !held_below_limit && !cut_short && !skip_past_limit) {
    // librdkafka's fetch position passed offsets that produced no record
    // (transaction markers, aborted records): they are handled.
    skip_to = std::max(skip_to.value_or(0), end_of_log_);
  }
  if (skip_to) {
    auto batch_end = recs.empty() ? issued_end : recs.back().offset + 1;
    auto end = skip_past_limit ? *skip_to : std::min(*skip_to, at.limit);
    if (at.end_offset) end = std::min(end, *at.end_offset);
    if (end > batch_end) out.handled = {batch_end, end};
  }
  return out;
}

} // namespace sluice
