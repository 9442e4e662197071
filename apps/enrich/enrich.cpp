#include "apps/enrich/enrich.hpp"

#include <caf/all.hpp>

#include <boost/json/parse.hpp>

#include <charconv>
#include <stdexcept>

namespace sluice::enrich {

namespace {

/// The table key a field's value names: a string as is, a whole number as
/// its digits; nullopt for anything else.
std::optional<std::string> key_of(const row& fields, const std::string& name) {
  auto kind = fields.kind(name);
  if (kind == field_kind::string || kind == field_kind::integer) return fields.text(name);
  return std::nullopt;
}

} // namespace

actor_stage table_stage(std::shared_ptr<table_store> table, std::string table_topic) {
  actor_stage s;
  s.make = [table](caf::actor_system& sys, const stage_origin&) -> stage_actor {
    // RocksDB writes may wait on the disk: a thread of its own.
    return sys.spawn<caf::detached>(
        [table](stage_actor::pointer self) -> stage_actor::behavior_type {
          report_exceptions(self);
          return {[table](batch_ptr& batch) {
            std::vector<table_change> changes;
            for (auto& r : batch->records) {
              if (r.error || r.dropped) continue;
              if (!r.key) {
                r.error = record_error{"no_key", "a table record needs a key"};
                continue;
              }
              changes.push_back({*r.key, r.value}); // a null value deletes
            }
            table->apply(batch->partition, changes, batch->end_offset);
            return batch;
          }};
        });
  };
  s.delivers = "table:" + table_topic;
  return s;
}

record_map join_step(std::shared_ptr<const table_store> table, join_options options) {
  return [table, options](record& r) {
    auto key = key_of(r.fields, options.key_field);
    std::optional<std::string> row;
    if (key) row = table->get(*key);
    if (!row) {
      if (options.missing_to_dlq) {
        r.error = record_error{"no_table_row",
                               key ? "no table row for key `" + *key + "` (field `" +
                                         options.key_field + "`)"
                                   : "field `" + options.key_field +
                                         "` is missing or not a string or whole number"};
        return;
      }
      for (auto& f : options.table_fields)
        if (!r.fields.contains(f)) r.fields.set(f, nullptr);
      return;
    }
    boost::json::error_code ec;
    auto parsed = boost::json::parse(*row, ec);
    if (ec || !parsed.is_object()) {
      r.error = record_error{"bad_table_row",
                             "the table row for key `" + *key + "` is not a JSON object"};
      return;
    }
    // The table's values are JSON objects (the table topic's format).
    auto& table_row = parsed.as_object();
    auto& out = r.fields.tree();
    if (options.table_fields.empty()) {
      for (auto& [name, value] : table_row)
        if (!out.contains(name)) out[name] = value;
    } else {
      for (auto& f : options.table_fields) {
        if (out.contains(f)) continue;
        auto* v = table_row.if_contains(f);
        out[f] = v ? *v : boost::json::value(nullptr);
      }
    }
  };
}

} // namespace sluice::enrich
