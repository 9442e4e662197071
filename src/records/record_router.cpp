#include "records/record_router.hpp"

#include "config/checks.hpp"
#include "core/json_writer.hpp"

#include <sluice/errors.hpp>

#include <boost/json.hpp>

#include <exception>
#include <optional>
#include <set>

namespace sluice {

record_router::record_router(route_options opts,
                             std::function<bool(const std::string&)> is_source,
                             std::map<std::string, std::string> reserved)
    : opts_(std::move(opts)), is_source_(std::move(is_source)),
      reserved_(std::move(reserved)) {}

void record_router::route(record& rec) const {
  // Dropped on purpose (a filter, a tombstone): handled, never written.
  if (rec.dropped) return;
  if (opts_.extract) {
    std::string topic;
    try {
      topic = opts_.extract(rec);
    } catch (const std::exception& e) {
      rec.error = record_error{"unroutable",
                               std::string("the route function threw: ") + e.what()};
      return;
    } catch (...) {
      rec.error = record_error{"unroutable", "the route function threw"};
      return;
    }
    try {
      config::checked_topic(topic, "route");
    } catch (const config_error& e) { // rare: the per-record path does not throw
      rec.error = record_error{"unroutable", topic.empty()
                                                 ? "the route function chose no topic"
                                                 : "the route function chose an invalid "
                                                   "topic: " +
                                                       e.reason()};
      return;
    }
    if (auto r = reserved_.find(topic); r != reserved_.end()) {
      rec.error = record_error{"unroutable",
                               "the route function chose `" + topic + "`, " + r->second};
      return;
    }
    if (!opts_.allow_source_topic && is_source_ && is_source_(topic)) {
      rec.error =
          record_error{"unroutable", "the route function chose `" + topic +
                                         "`, a source topic (set route.allowSourceTopic "
                                         "to true if that is meant)"};
      return;
    }
    rec.target_topic = std::move(topic);
    return;
  }
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
