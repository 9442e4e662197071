#include "records/steps.hpp"

#include "format/format.hpp"

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

namespace {

std::string what_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

bool pending(const record& r) {
  return !r.error && !r.dropped;
}

std::string fields_of(const record& r, encoder& enc) {
  std::string out;
  enc.encode(r.fields, out);
  return out;
}

const char* schema_rule = "with a parse.schema, records are written from their fields: "
                          "change `fields`, not `value`";

/// What a record step may change, kept so that a failed step sends the
/// source bytes to the DLQ, and so that a change can be told.
struct before_step {
  std::optional<std::string> key, value;
  std::vector<header> headers;
  std::optional<row> fields; // without a schema only

  before_step(const record& r, bool schemaless)
      : key(r.key), value(r.value), headers(r.headers) {
    if (schemaless) fields = r.fields;
  }
  void restore(record& r) {
    r.key = std::move(key);
    r.value = std::move(value);
    r.headers = std::move(headers);
  }
};

void run_map(record_batch& batch, const record_map& fn, bool schemaless, encoder& enc) {
  for (auto& r : batch.records) {
    if (!pending(r)) continue;
    before_step before(r, schemaless);
    try {
      fn(r);
    } catch (...) {
      before.restore(r);
      r.error = record_error{"map_error", what_of(std::current_exception())};
      continue;
    }
    if (r.value == before.value) {
      // Without a schema the value is written byte for byte: a change of the
      // fields is written by writing the value from them again.
      if (schemaless && r.value && r.fields != *before.fields)
        r.value = fields_of(r, enc);
    } else if (!schemaless) {
      before.restore(r);
      r.error = record_error{"map_error", schema_rule};
    }
  }
}

void run_filter(record_batch& batch, const record_filter& fn) {
  for (auto& r : batch.records) {
    if (!pending(r)) continue;
    try {
      if (!fn(r)) r.dropped = true;
    } catch (...) {
      r.error = record_error{"filter_error", what_of(std::current_exception())};
    }
  }
}

void run_flat_map(record_batch& batch, const record_flat_map& fn, bool schemaless,
                  encoder& enc) {
  std::vector<record> out;
  out.reserve(batch.records.size());
  for (auto& r : batch.records) {
    if (!pending(r)) {
      out.push_back(std::move(r));
      continue;
    }
    std::vector<record> made;
    try {
      made = fn(r);
    } catch (...) {
      r.error = record_error{"flat_map_error", what_of(std::current_exception())};
      out.push_back(std::move(r));
      continue;
    }
    if (made.empty()) { // handled: a counted drop, so that its offset ends somewhere
      r.dropped = true;
      out.push_back(std::move(r));
      continue;
    }
    for (auto& m : made) {
      // Outputs keep their input's place: offset order and acknowledgement.
      m.offset = r.offset;
      if (!m.value && !m.fields.empty()) {
        m.value = fields_of(m, enc); // made from fields alone
      } else if (schemaless) {
        if (m.value && m.value == r.value && m.fields != r.fields)
          m.value = fields_of(m, enc);
      } else if (m.value && m.fields.empty()) {
        m.error = record_error{"flat_map_error", schema_rule};
      }
      out.push_back(std::move(m));
    }
  }
  batch.records = std::move(out);
}

} // namespace

batch_guard::batch_guard(record_batch& batch, bool schemaless) {
  offsets_.reserve(batch.records.size());
  for (auto& r : batch.records) {
    offsets_.push_back(r.offset);
    if (schemaless && pending(r) && r.value)
      before_.emplace(r.offset, std::pair(r.value, r.fields));
  }
  std::sort(offsets_.begin(), offsets_.end());
  offsets_.erase(std::unique(offsets_.begin(), offsets_.end()), offsets_.end());
  auto records = std::move(batch.records);
  batch.records.clear();
  kept_ = batch; // coordinates and bookkeeping, without the records
  batch.records = std::move(records);
}

void batch_guard::settle(record_batch& out, encoder& enc) const {
  auto records = std::move(out.records);
  out = kept_;
  out.records = std::move(records);
  std::vector<bool> seen(offsets_.size());
  for (auto& r : out.records) {
    if (pending(r) && !r.value && !r.fields.empty()) {
      r.value = fields_of(r, enc); // made from fields alone, as by a flat_map
    } else if (!before_.empty() && pending(r) && r.value) {
      // Its value as it was (the stage did not set it): before the stage that
      // value and its fields went together, so changed fields are written.
      auto [first, last] = before_.equal_range(r.offset);
      for (auto it = first; it != last; ++it)
        if (it->second.first == r.value) {
          if (r.fields != it->second.second) r.value = fields_of(r, enc);
          break;
        }
    }
    if (r.offset >= out.begin_offset && r.offset < out.end_offset) {
      auto at = std::lower_bound(offsets_.begin(), offsets_.end(), r.offset);
      if (at != offsets_.end() && *at == r.offset) seen[at - offsets_.begin()] = true;
      continue;
    }
    r.error = record_error{
        "stage_error", "the stage gave the record offset " + std::to_string(r.offset) +
                           ", outside its batch [" + std::to_string(out.begin_offset) +
                           ", " + std::to_string(out.end_offset) + ")"};
    r.offset = out.begin_offset;
  }
  // Records the stage removed: handled on purpose, counted as drops.
  for (std::size_t i = 0; i < offsets_.size(); ++i) {
    if (seen[i]) continue;
    auto& gone = out.records.emplace_back();
    gone.offset = offsets_[i];
    gone.dropped = true;
  }
}

void apply_steps(record_batch& batch, const std::vector<processing_step>& steps,
                 bool schemaless, encoder& enc) {
  for (auto& step : steps) {
    if (auto* fn = std::get_if<batch_stage>(&step)) {
      batch_guard guard(batch, schemaless);
      (*fn)(batch);
      guard.settle(batch, enc);
    } else if (auto* fn = std::get_if<record_map>(&step)) {
      run_map(batch, *fn, schemaless, enc);
    } else if (auto* fn = std::get_if<record_filter>(&step)) {
      run_filter(batch, *fn);
    } else if (auto* fn = std::get_if<record_flat_map>(&step)) {
      run_flat_map(batch, *fn, schemaless, enc);
    } // an actor_step is the chain's actor stage's to run
  }
}

} // namespace sluice
