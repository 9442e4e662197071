#include "dedup/dedup_table.hpp"

#include <boost/json/parse.hpp>

#include <unordered_map>

namespace sluice::dedup {

namespace {

constexpr std::string_view position_key = "m/changelog";
constexpr std::string_view stream_time_key = "m/stream-time";
constexpr std::string_view decided_key = "m/decided-until";

/// Big-endian with the sign bit flipped: byte order is numeric order.
void put_ordered(std::string& out, std::int64_t v) {
  auto u = static_cast<std::uint64_t>(v) ^ (std::uint64_t{1} << 63);
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((u >> shift) & 0xff));
}

std::int64_t get_ordered(std::string_view in) {
  std::uint64_t u = 0;
  for (int i = 0; i < 8; ++i)
    u = (u << 8) | static_cast<unsigned char>(in[static_cast<std::size_t>(i)]);
  return static_cast<std::int64_t>(u ^ (std::uint64_t{1} << 63));
}

std::string row_key(std::string_view key) {
  std::string out;
  out.reserve(key.size() + 1);
  out.push_back('k');
  out.append(key);
  return out;
}

std::string expiry_key(std::int64_t event_time_ms, std::string_view key) {
  std::string out;
  out.reserve(key.size() + 9);
  out.push_back('t');
  put_ordered(out, event_time_ms);
  out.append(key);
  return out;
}

std::string row_value(const sighting& s) {
  std::string out;
  put_ordered(out, s.offset);
  put_ordered(out, s.event_time_ms);
  return out;
}

/// Where the progress before a batch starting at `begin` is kept.
std::string snapshot_key(std::int64_t begin) {
  std::string out = "s";
  put_ordered(out, begin);
  return out;
}

/// How far back (in offsets) a replay finds the progress it first met; one
/// from further back passes its late records (see verdict::replayed_late).
/// A replay starts at the watermark or the last commit, close behind; the
/// span bounds the keys a partition of one-record batches keeps.
constexpr std::int64_t snapshot_span = 1'000'000;

std::optional<sighting> from_row(const std::optional<std::string>& v) {
  if (!v || v->size() != 16) return std::nullopt;
  return sighting{get_ordered(*v), get_ordered(std::string_view(*v).substr(8))};
}

} // namespace

std::string encode_sighting(const sighting& s) {
  return "{\"offset\":" + std::to_string(s.offset) +
         ",\"eventTime\":" + std::to_string(s.event_time_ms) + "}";
}

std::optional<sighting> decode_sighting(std::string_view text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto& o = v.get_object();
  auto* offset = o.if_contains("offset");
  auto* time = o.if_contains("eventTime");
  if (!offset || !time || !offset->is_int64() || !time->is_int64()) return std::nullopt;
  // The years 0 to 9999, as for records: a wild time from another writer
  // must not reach the window arithmetic.
  constexpr std::int64_t earliest = -62167219200000, latest = 253402300799999;
  auto t = time->get_int64();
  constexpr std::int64_t max_offset = std::int64_t{1} << 62;
  if (t < earliest || t > latest || offset->get_int64() < 0 ||
      offset->get_int64() > max_offset)
    return std::nullopt;
  return sighting{offset->get_int64(), t};
}

dedup_table::dedup_table(state::partition_table& table) : table_(table) {
  if (auto v = table_.get(stream_time_key); v && v->size() == 8)
    stream_time_ = get_ordered(*v);
  if (auto v = table_.get(decided_key); v && v->size() == 8)
    decided_until_ = get_ordered(*v);
  // A state from before the key existed: its sightings say how far it decided.
  const bool from_sightings = !decided_until_;
  std::int64_t highest = -1;
  table_.scan("k", [&](std::string_view, std::string_view v) {
    ++rows_;
    if (from_sightings && v.size() == 16) highest = std::max(highest, get_ordered(v));
    return true;
  });
  if (from_sightings && highest >= 0) decided_until_ = highest + 1;
}

std::vector<verdict> dedup_table::decide_all(const std::vector<keyed_sighting>& records,
                                             const window& win,
                                             std::vector<change>& changes,
                                             std::int64_t begin) {
  if (begin < 0 && !records.empty()) begin = records.front().seen.offset;
  // A batch starting below where the last one ended (or, first, below what
  // the state decided) is read again: a restarted chain or process resumes
  // at a batch start. The progress goes back to what a batch starting there
  // met, so that late verdicts come out as they did then.
  auto resumed_below = next_begin_ ? next_begin_ : decided_until_;
  if (begin >= 0 && resumed_below && begin < *resumed_below) {
    // The batch that started there, or the first one after it up to this
    // batch's first record: offsets between hold no record to decide (a
    // range handled without a batch, e.g. transaction markers), so that
    // batch met the same progress.
    auto last = records.empty() ? begin : records.front().seen.offset;
    std::optional<std::string> snap;
    table_.scan(
        "s",
        [&](std::string_view k, std::string_view v) {
          if (k.size() == 9 && get_ordered(k.substr(1)) <= last) snap = std::string(v);
          return false;
        },
        snapshot_key(begin));
    exact_ = snap.has_value();
    if (snap)
      stream_time_ = snap->size() == 8 ? std::optional(get_ordered(*snap)) : std::nullopt;
  }
  const bool exact = exact_;
  const bool first_reading = !decided_until_ || begin >= *decided_until_;
  const auto progress_before = stream_time_;
  // Each distinct key is read once; the batch then works on its copy, so a
  // duplicate of a record earlier in the same batch is caught too.
  std::unordered_map<std::string_view, std::size_t> slot_of;
  std::vector<std::string> keys;
  for (auto& r : records)
    if (slot_of.emplace(r.key, keys.size()).second) keys.push_back(row_key(r.key));
  auto stored = table_.get(keys);
  std::vector<std::optional<sighting>> before(keys.size()), now(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i)
    before[i] = now[i] = from_row(stored[i]);
  std::vector<bool> changed(keys.size(), false);
  last_stored_ = 0;
  std::vector<verdict> out;
  out.reserve(records.size());
  for (auto& r : records) {
    auto slot = slot_of[r.key];
    auto held = now[slot];
    if (held && stream_time_ && expired(*held, *stream_time_, win.kept())) held.reset();
    auto d = decide(held, r.seen, win.within);
    // A duplicate of a kept sighting is one however late it comes; a record
    // past keeping that is not cannot be told from a duplicate purged.
    if (d.passes() && stream_time_ && expired(r.seen, *stream_time_, win.kept())) {
      bool replayed = !exact && decided_until_ && r.seen.offset < *decided_until_;
      d = {replayed ? verdict::replayed_late : verdict::late, std::nullopt};
    } else if (d.store) {
      now[slot] = d.store;
      changed[slot] = true;
      ++last_stored_;
    }
    out.push_back(d.what);
    advance(r.seen.event_time_ms);
  }
  state::partition_table::writes w(table_);
  std::vector<std::string_view> key_of(keys.size());
  for (auto& [k, slot] : slot_of)
    key_of[slot] = k;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (!changed[i] || now[i] == before[i]) continue;
    if (before[i])
      w.remove(expiry_key(before[i]->event_time_ms, key_of[i]));
    else
      ++rows_;
    w.put(keys[i], row_value(*now[i]));
    w.put(expiry_key(now[i]->event_time_ms, key_of[i]), {});
    changes.push_back({std::string(key_of[i]), now[i]});
  }
  // The progress this batch met, for a replay from here (none written when
  // it is not known to be the one a first reading met).
  if (begin >= 0 && (exact || first_reading)) {
    std::string v;
    if (progress_before) put_ordered(v, *progress_before);
    w.put(snapshot_key(begin), v);
  }
  // The next batch starts past this one, even one with nothing to decide.
  if (begin >= 0) next_begin_ = std::max(next_begin_.value_or(begin + 1), begin + 1);
  for (auto& r : records) {
    decided_until_ = std::max(decided_until_.value_or(0), r.seen.offset + 1);
    next_begin_ = std::max(*next_begin_, r.seen.offset + 1);
  }
  put_progress(w);
  table_.apply(w);
  return out;
}

std::int64_t dedup_table::purge(const window& win, std::size_t limit,
                                std::vector<change>& changes) {
  if (!stream_time_) return 0;
  auto now_ms = *stream_time_;
  state::partition_table::writes w(table_);
  std::int64_t removed = 0;
  bool complete = true;
  std::string from = "t";
  if (purged_below_) put_ordered(from, *purged_below_);
  table_.scan(
      "t",
      [&](std::string_view k, std::string_view) {
        if (k.size() < 9) return true;
        auto time = get_ordered(k.substr(1, 8));
        if (!expired(sighting{0, time}, now_ms, win.kept())) return false; // time order
        if (static_cast<std::size_t>(removed) == limit) {
          complete = false;
          return false;
        }
        auto key = k.substr(9);
        w.remove(k);
        w.remove(row_key(key));
        changes.push_back({std::string(key), std::nullopt});
        ++removed;
        return true;
      },
      from);
  // Snapshots too far back for a replay to use.
  if (decided_until_ && *decided_until_ - snapshot_span > snapshots_from_) {
    auto below = *decided_until_ - snapshot_span;
    table_.scan(
        "s",
        [&](std::string_view k, std::string_view) {
          if (k.size() != 9 || get_ordered(k.substr(1)) >= below) return false;
          w.remove(k);
          return true;
        },
        snapshot_key(snapshots_from_));
    snapshots_from_ = below;
  }
  table_.apply(w);
  rows_ -= removed;
  // Nothing at or below the cutoff is stored any more (late records are
  // not stored), so the next purge can start there.
  if (complete) purged_below_ = now_ms - win.kept().count();
  return removed;
}

void dedup_table::restore(const std::vector<change>& batch) {
  std::vector<std::string> keys;
  keys.reserve(batch.size());
  for (auto& c : batch)
    keys.push_back(row_key(c.key));
  auto stored = table_.get(keys);
  // Later changes of a key in the same batch see the earlier ones.
  std::unordered_map<std::string_view, std::optional<sighting>> latest;
  state::partition_table::writes w(table_);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto& c = batch[i];
    auto it = latest.find(c.key);
    auto before = it != latest.end() ? it->second : from_row(stored[i]);
    if (before == c.now) continue;
    if (before) {
      w.remove(expiry_key(before->event_time_ms, c.key));
      --rows_;
    }
    if (c.now) {
      w.put(keys[i], row_value(*c.now));
      w.put(expiry_key(c.now->event_time_ms, c.key), {});
      ++rows_;
      // The changelog does not carry the event-time progress: the latest
      // sighting is the best lower bound of it (as long as its time is
      // believable: the same rule as for records). Every record up to the
      // sighting's was decided by whoever wrote it: a replay there.
      advance(c.now->event_time_ms);
      decided_until_ = std::max(decided_until_.value_or(0), c.now->offset + 1);
    } else {
      w.remove(keys[i]);
    }
    latest[c.key] = c.now;
  }
  put_progress(w);
  table_.apply(w);
}

void dedup_table::put_progress(state::partition_table::writes& w) const {
  std::string v;
  if (stream_time_) {
    put_ordered(v, *stream_time_);
    w.put(stream_time_key, v);
  }
  if (decided_until_) {
    v.clear();
    put_ordered(v, *decided_until_);
    w.put(decided_key, v);
  }
}

bool dedup_table::set_progress_ceiling(std::int64_t ms) noexcept {
  progress_ceiling_ = ms;
  if (!stream_time_ || *stream_time_ <= ms) return false;
  // Not clamped to the ceiling: a progress at now + within would make every
  // record older than the clock late. Unknown instead: the next records
  // start it again, as in a new table.
  stream_time_.reset();
  return true;
}

void dedup_table::advance(std::int64_t event_time_ms) noexcept {
  // A time beyond the ceiling leaves the progress where it was; the record
  // itself is decided and stored as any other (its own re-sends are caught).
  if (event_time_ms > progress_ceiling_) return;
  stream_time_ = std::max(stream_time_.value_or(event_time_ms), event_time_ms);
}

void dedup_table::clear() {
  table_.clear();
  rows_ = 0;
  stream_time_.reset();
  decided_until_.reset();
  next_begin_.reset();
  exact_ = true;
  purged_below_.reset();
  snapshots_from_ = std::numeric_limits<std::int64_t>::min();
}

std::optional<std::int64_t> dedup_table::changelog_position(std::string_view log) {
  auto v = table_.get(position_key);
  if (!v || v->size() < 8 || std::string_view(*v).substr(8) != log) return std::nullopt;
  return get_ordered(*v);
}

void dedup_table::set_changelog_position(std::int64_t next_offset, std::string_view log) {
  std::string v;
  put_ordered(v, next_offset);
  v.append(log);
  state::partition_table::writes w(table_);
  w.put(position_key, v);
  table_.apply(w);
}

} // namespace sluice::dedup
