#include "records/record_router.hpp"

#include "core/json_writer.hpp"

#include <boost/json.hpp>

#include <set>

namespace sluice {

record_router::record_router(route_options opts) : opts_(std::move(opts)) {}

void record_router::route(record& rec) const {
  if (!opts_.topic.empty()) {
    rec.target_topic = opts_.topic;
    return;
  }
  std::string key;
  if (auto* v = rec.parsed.if_contains(opts_.field); v && !v->is_null()) {
    if (v->is_string())
      key = std::string(v->get_string());
    else
      write_json(*v, key); // 1.0 routes as "1.0", not "1E0"
  }
  if (auto it = opts_.topics.find(key); !key.empty() && it != opts_.topics.end()) {
    rec.target_topic = it->second;
  } else if (!opts_.default_topic.empty()) {
    rec.target_topic = opts_.default_topic;
  } else {
    rec.error =
        record_error{"unroutable", key.empty() ? "field `" + opts_.field + "` is missing"
                                               : "no topic for " + opts_.field + "=`" +
                                                     key + "` and no route.default"};
  }
}

std::vector<std::string> record_router::targets() const {
  std::set<std::string> all;
  if (!opts_.topic.empty()) all.insert(opts_.topic);
  for (auto& [value, topic] : opts_.topics)
    all.insert(topic);
  if (!opts_.default_topic.empty()) all.insert(opts_.default_topic);
  return {all.begin(), all.end()};
}

} // namespace sluice
