#include "records/record_router.hpp"

#include "core/json_writer.hpp"

#include <boost/json.hpp>

#include <cctype>
#include <exception>
#include <optional>
#include <set>

namespace sluice {

namespace {

/// Why `topic` cannot be a Kafka topic name (empty, too long, a character
/// Kafka refuses), or nothing.
std::optional<std::string> topic_name_problem(const std::string& topic) {
  if (topic.empty()) return std::string("no topic (an empty name)");
  if (topic.size() > 249 || topic == "." || topic == "..")
    return "`" + topic.substr(0, 60) + "`, which is no valid topic name";
  for (char c : topic)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return "`" + topic.substr(0, 60) + "`, which is no valid topic name";
  return std::nullopt;
}

} // namespace

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
    if (auto why = topic_name_problem(topic)) {
      rec.error = record_error{"unroutable", "the route function chose " + *why};
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
