#include "records/record_router.hpp"

#include "config/checks.hpp"

#include <sluice/errors.hpp>

#include <exception>
#include <optional>
#include <regex>
#include <set>
#include <shared_mutex>
#include <unordered_map>

namespace sluice {

namespace {

/// Whether a topic is one the source reads: a route function's choice is
/// checked against it for every record (fixed routes were checked at start).
std::function<bool(const std::string&)> source_topic_test(const source_options& src) {
  if (src.subscription == subscription_kind::pattern) {
    // A route function calls this for every record, from every chain: each
    // topic's answer is kept (a std::regex match costs microseconds).
    struct pattern_test {
      std::regex re;
      std::shared_mutex mutex;
      std::unordered_map<std::string, bool> known;
    };
    auto test = std::make_shared<pattern_test>();
    test->re = std::regex(src.pattern, std::regex::extended);
    return [test](const std::string& t) {
      {
        std::shared_lock<std::shared_mutex> read{test->mutex};
        if (auto it = test->known.find(t); it != test->known.end()) return it->second;
      }
      bool matches = std::regex_match(t, test->re);
      std::unique_lock<std::shared_mutex> write{test->mutex};
      if (test->known.size() < 10000) test->known.emplace(t, matches);
      return matches;
    };
  }
  std::set<std::string> topics(src.subscribe.begin(), src.subscribe.end());
  for (auto& tp : src.assign)
    topics.insert(tp.topic);
  return
      [topics = std::move(topics)](const std::string& t) { return topics.contains(t); };
}

/// The topics no routed record may go to, with what they are.
std::map<std::string, std::string> reserved_topics(const pipeline_config& cfg) {
  std::map<std::string, std::string> out;
  if (cfg.dlq) out[cfg.dlq->topic] = "the pipeline's DLQ";
  if (cfg.dedup && !cfg.dedup->changelog_topic().empty())
    out[cfg.dedup->changelog_topic()] = "the dedup changelog";
  return out;
}

} // namespace

record_router record_router::for_pipeline(const pipeline_config& cfg) {
  return record_router(cfg.route, source_topic_test(cfg.source), reserved_topics(cfg));
}

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
  // 1.0 routes as "1.0", not "1E0".
  std::string key = rec.fields.text(opts_.field).value_or(std::string());
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
