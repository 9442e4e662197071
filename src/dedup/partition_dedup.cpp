#include "dedup/partition_dedup.hpp"

#include "core/batch_bookkeeping.hpp"
#include "core/json_writer.hpp"
#include "core/log.hpp"
#include "dedup/changelog.hpp"
#include "records/record_parser.hpp"

#include <sluice/errors.hpp>
#include <sluice/progress.hpp>

#include <chrono>

namespace sluice::dedup {

namespace {

/// A duration as people write it: "2 h", "1 h 30 min", "45 s", "250 ms".
std::string duration_text(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 != 0 || ms == 0) return std::to_string(ms) + " ms";
  std::string out;
  auto part = [&](std::int64_t unit, const char* name) {
    if (ms < unit) return;
    if (!out.empty()) out += ' ';
    out += std::to_string(ms / unit) + " " + name;
    ms %= unit;
  };
  part(86'400'000, "d");
  part(3'600'000, "h");
  part(60'000, "min");
  part(1000, "s");
  return out;
}

/// A dedup.timeField value: epoch milliseconds, or an ISO-8601 timestamp.
std::optional<std::int64_t> event_time_of(const row& fields, const std::string& name) {
  switch (fields.kind(name)) {
  case field_kind::integer:
    try {
      return fields.get<std::int64_t>(name);
    } catch (const field_error&) {
      return std::nullopt; // beyond 64 bits
    }
  case field_kind::string:
    return iso8601_to_epoch_ms(*fields.get<std::string_view>(name));
  default:
    return std::nullopt;
  }
}

state::partition_table::lease take(state::store& store, const kafka::topic_partition& tp,
                                   std::chrono::milliseconds timeout) {
  auto lease = store.table(tp.str()).acquire(timeout);
  if (!lease)
    throw fatal_error("the dedup state of " + tp.str() +
                      " is still in use by a stopped " + "chain after " +
                      std::to_string(timeout.count() / 1000) + " s");
  return lease;
}

} // namespace

partition_dedup::partition_dedup(const dedup_options& options, state::store& store,
                                 kafka::topic_partition input,
                                 const changelog_target& changelog,
                                 std::function<bool()> cancelled)
    : options_(options), input_(std::move(input)), changelog_(changelog),
      changelog_partition_(changelog_partition(input_.partition, changelog.partitions)),
      changelog_prefix_(changelog_prefix(input_)),
      changelog_identity_(
          changelog_log{changelog.topic, changelog_partition_, changelog.partitions}
              .identity()),
      lease_(take(store, input_, changelog.timeout)), table_(*lease_),
      delivered_(std::make_shared<std::atomic<std::int64_t>>(-1)) {
  if (auto held = table_.stream_time();
      table_.set_progress_ceiling(wall_clock_ms() + options_.within.count()))
    sluice::logger().warn(
        "dedup state of {}: its event-time progress ({}) is more than "
        "dedup.within ahead of this machine's clock; not used (it would make "
        "every record late)",
        input_.str(), iso8601_utc(*held));
  if (changelog_.topic.empty()) return;
  auto started = std::chrono::steady_clock::now();
  auto outcome = restore_from_changelog(
      changelog_.client,
      changelog_log{changelog_.topic, changelog_partition_, changelog_.partitions},
      input_, table_, changelog_.timeout, [&] {
        // A restarted chain's new stage waits for this table: give it up.
        return lease_->wanted() || (cancelled && cancelled());
      });
  restored_ = outcome.applied;
  recorded_ = outcome.end;
  if (outcome.wiped)
    sluice::logger().warn(
        "dedup state of {} did not match the changelog `{}` (older than its "
        "start, or from another log): rebuilt from the changelog",
        input_.str(), changelog_.topic);
  if (outcome.unreadable > 0)
    sluice::logger().warn("dedup changelog `{}`: {} record(s) of {} are not sightings "
                          "({{\"offset\":N,\"eventTime\":T}}); skipped",
                          changelog_.topic, outcome.unreadable, input_.str());
  if (outcome.applied > 0)
    sluice::logger().info(
        "dedup state of {}: {} change(s) restored from `{}` [{}] in {} ms, {} "
        "key(s) held",
        input_.str(), outcome.applied, changelog_.topic, changelog_partition_,
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started)
            .count(),
        table_.rows());
}

partition_dedup::~partition_dedup() {
  try {
    record_position();
  } catch (const std::exception& e) {
    sluice::logger().warn("{} (the next open reads more of the changelog)", e.what());
  }
}

void partition_dedup::record_position() {
  // How far the changelog is known to hold this partition's changes, from
  // deliveries: recorded after the writes it covers (see dedup_table).
  if (auto d = delivered_->load(); !changelog_.topic.empty() && d + 1 > recorded_) {
    table_.set_changelog_position(d + 1, changelog_identity_);
    recorded_ = d + 1;
  }
}

batch_effect partition_dedup::process(record_batch& batch) {
  batch_effect effect;
  record_position();
  // A clock far ahead must not make every later record late.
  const auto now = wall_clock_ms();
  const auto ahead = now + options_.within.count();
  if (auto held = table_.stream_time(); table_.set_progress_ceiling(ahead))
    sluice::logger().warn(
        "dedup of {}: the event-time progress ({}) is more than dedup.within "
        "ahead of this machine's clock (set back?); not used",
        input_.str(), iso8601_utc(*held));
  scratch_.clear();
  positions_.clear();
  for (std::size_t i = 0; i < batch.records.size(); ++i) {
    auto& rec = batch.records[i];
    // DLQ records, dropped ones and deletes (no value) are not deduplicated.
    if (rec.error || rec.dropped || !rec.value) continue;
    // The key is built in place; a record that fails takes its entry back.
    auto& entry = scratch_.emplace_back();
    auto& key = entry.key;
    key.push_back('[');
    const std::string* missing = nullptr;
    for (auto& field : options_.key) {
      auto* v = rec.fields.tree().if_contains(field);
      if (!v || v->is_null()) {
        missing = &field;
        break;
      }
      if (key.size() > 1) key.push_back(',');
      write_canonical_json(*v, key); // 1 and 1.0 are one key
    }
    if (missing) {
      scratch_.pop_back();
      rec.error = record_error{"missing_dedup_key", "field `" + *missing +
                                                        "` of dedup.key is missing "
                                                        "or null"};
      continue;
    }
    key.push_back(']');
    std::int64_t event_time = rec.timestamp_ms >= 0 ? rec.timestamp_ms : now;
    if (!options_.time_field.empty()) {
      auto t = event_time_of(rec.fields, options_.time_field);
      if (!t) {
        scratch_.pop_back();
        rec.error = record_error{"invalid_dedup_time",
                                 "field `" + options_.time_field +
                                     "` (dedup.timeField) is missing or not a time"};
        continue;
      }
      event_time = *t;
    }
    // Years 0 to 9999, as ISO-8601 writes them; also keeps the window
    // arithmetic far from overflow.
    constexpr std::int64_t earliest = -62167219200000, latest = 253402300799999;
    if (event_time < earliest || event_time > latest) {
      scratch_.pop_back();
      rec.error =
          record_error{"invalid_dedup_time", "event time " + std::to_string(event_time) +
                                                 " ms is outside the years 0 to 9999"};
      continue;
    }
    if (event_time > ahead && !warned_ahead_) {
      warned_ahead_ = true;
      sluice::logger().warn(
          "dedup of {}: record at offset {} has an event time more than "
          "dedup.within ahead of this machine's clock ({}); such times do not "
          "move the partition's event-time progress",
          input_.str(), rec.offset, iso8601_utc(event_time));
    }
    entry.seen = sighting{rec.offset, event_time};
    positions_.push_back(i);
  }
  changes_.clear();
  const window w{options_.within, options_.lateness()};
  auto verdicts = table_.decide_all(scratch_, w, changes_, batch.begin_offset);
  for (std::size_t j = 0; j < verdicts.size(); ++j) {
    auto& rec = batch.records[positions_[j]];
    if (verdicts[j] == verdict::duplicate) {
      rec.dropped = true;
      rec.duplicate = true;
      ++effect.duplicates;
    } else if (verdicts[j] == verdict::replayed_late) {
      rec.late = true; // counted; passes (a replay is never dropped)
      ++effect.late;
    } else if (verdicts[j] == verdict::late) {
      // Late data is never silent: counted (numLateRows) and said once.
      rec.late = true;
      ++effect.late;
      auto seen = [&] { return iso8601_utc(scratch_[j].seen.event_time_ms); };
      auto progress = [&] { return iso8601_utc(table_.stream_time().value_or(0)); };
      if (options_.late_records == late_policy::drop) {
        rec.dropped = true;
      } else if (options_.late_records == late_policy::dlq) {
        rec.error = record_error{
            "late", "event time " + seen() +
                        " is more than dedup.within + dedup.allowedLateness (" +
                        duration_text(w.kept()) +
                        ") behind the partition's event-time progress (" + progress() +
                        "), and no sighting of its key that old is kept"};
      }
      if (!warned_late_) {
        warned_late_ = true;
        constexpr const char* what[] = {"pass without dedup", "are dropped",
                                        "go to the DLQ"};
        sluice::logger().warn(
            "dedup of {}: record at offset {} (event time {}) is more than "
            "dedup.within + dedup.allowedLateness ({}) behind the partition's "
            "event-time progress ({}); such late records {} (dedup.lateRecords; "
            "counted as numLateRows)",
            input_.str(), rec.offset, seen(), duration_text(w.kept()), progress(),
            what[static_cast<int>(options_.late_records)]);
      }
    }
  }
  effect.updated = table_.last_stored();
  // Expiry runs when event time has moved on by a second or 1% of the
  // window, so that its scan (past earlier deletions) is not paid per batch.
  auto step = std::max<std::int64_t>(1000, options_.within.count() / 100);
  if (auto now = table_.stream_time();
      now && !scratch_.empty() &&
      (purged_at_ == std::numeric_limits<std::int64_t>::min() ||
       *now - purged_at_ >= step)) {
    purged_at_ = *now;
    effect.removed = table_.purge(w, 100000, changes_);
  }
  if (!changelog_.topic.empty() && !changes_.empty()) {
    auto& books = bookkeeping_of(batch);
    books.changes.reserve(books.changes.size() + changes_.size());
    for (auto& c : changes_) {
      auto& out = books.changes.emplace_back();
      out.topic = changelog_.topic;
      out.partition = changelog_partition_;
      out.key = changelog_prefix_ + c.key;
      if (c.now) out.value = encode_sighting(*c.now);
    }
    books.changes_delivered = delivered_;
  }
  return effect;
}

} // namespace sluice::dedup
