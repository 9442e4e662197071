#include "apps/enrich/enrich.hpp"

#include <caf/all.hpp>

#include <boost/json/parse.hpp>

#include <charconv>
#include <stdexcept>

namespace sluice::enrich {

namespace {

/// The table key a field's value names: a string as is, a whole number as
/// its digits; nullopt for anything else.
std::optional<std::string> key_of(const boost::json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_int64()) return std::to_string(v->get_int64());
  if (v->is_uint64()) return std::to_string(v->get_uint64());
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
    auto key = key_of(r.parsed.if_contains(options.key_field));
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
        if (!r.parsed.contains(f)) r.parsed[f] = nullptr;
      return;
    }
    boost::json::error_code ec;
    auto parsed = boost::json::parse(*row, ec);
    if (ec || !parsed.is_object()) {
      r.error = record_error{"bad_table_row",
                             "the table row for key `" + *key + "` is not a JSON object"};
      return;
    }
    auto& fields = parsed.as_object();
    if (options.table_fields.empty()) {
      for (auto& [name, value] : fields)
        if (!r.parsed.contains(name)) r.parsed[name] = value;
    } else {
      for (auto& f : options.table_fields) {
        if (r.parsed.contains(f)) continue;
        auto* v = fields.if_contains(f);
        r.parsed[f] = v ? *v : boost::json::value(nullptr);
      }
    }
  };
}

} // namespace sluice::enrich
