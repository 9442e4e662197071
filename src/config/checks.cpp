#include "config/checks.hpp"

#include <sluice/errors.hpp>

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>

namespace sluice::config {

std::string checked_topic(std::string name, const std::string& option) {
  auto legal = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
           c == '-';
  };
  if (name.empty())
    throw config_error(option, "expected a topic name, got an empty string");
  if (name.size() > 249 || name == "." || name == ".." ||
      !std::all_of(name.begin(), name.end(), legal))
    throw config_error(option,
                       "`" + name +
                           "` is not a valid Kafka topic name: use letters, digits, "
                           "`.`, `_` and `-`, at most 249 characters");
  return name;
}

void check_pattern(const std::string& pattern, const std::string& option) {
  if (pattern.empty())
    throw config_error(option, "expected a regular expression, got an empty string");
  try {
    std::regex re(pattern, std::regex::extended); // as librdkafka reads it
  } catch (const std::regex_error& e) {
    throw config_error(option, "`" + pattern + "` is not a valid regular expression (" +
                                   e.what() + ")");
  }
}

bool in_subscription(const source_options& src, const kafka::topic_partition& tp) {
  switch (src.subscription) {
  case subscription_kind::subscribe:
    return std::find(src.subscribe.begin(), src.subscribe.end(), tp.topic) !=
           src.subscribe.end();
  case subscription_kind::pattern:
    return std::regex_match(tp.topic, std::regex(src.pattern, std::regex::extended));
  case subscription_kind::assign:
    return std::find(src.assign.begin(), src.assign.end(), tp) != src.assign.end();
  }
  return false;
}

bool is_source_topic(const source_options& src, const std::string& topic) {
  if (src.subscription == subscription_kind::assign)
    return std::any_of(src.assign.begin(), src.assign.end(),
                       [&](auto& tp) { return tp.topic == topic; });
  return in_subscription(src, {topic, 0});
}

bool is_blank(std::string_view text) {
  return text.find_first_not_of(" \t") == std::string_view::npos;
}

bool consumer_only(std::string_view name) {
  static const std::set<std::string_view> names = {"group.id",
                                                   "group.instance.id",
                                                   "group.protocol.type",
                                                   "auto.offset.reset",
                                                   "enable.auto.commit",
                                                   "offset.store.method",
                                                   "consume.callback.max.messages",
                                                   "session.timeout.ms",
                                                   "heartbeat.interval.ms",
                                                   "max.poll.interval.ms",
                                                   "partition.assignment.strategy",
                                                   "isolation.level",
                                                   "fetch.wait.max.ms",
                                                   "fetch.min.bytes",
                                                   "fetch.max.bytes",
                                                   "fetch.message.max.bytes",
                                                   "max.partition.fetch.bytes",
                                                   "queued.min.messages",
                                                   "queued.max.messages.kbytes",
                                                   "check.crcs",
                                                   "enable.partition.eof",
                                                   "auto.commit.interval.ms",
                                                   "enable.auto.offset.store",
                                                   "fetch.error.backoff.ms",
                                                   "coordinator.query.interval.ms"};
  return names.contains(name);
}

bool producer_only(std::string_view name) {
  static const std::set<std::string_view> names = {
      "acks",
      "request.required.acks",
      "linger.ms",
      "queue.buffering.max.ms",
      "queue.buffering.max.messages",
      "queue.buffering.max.kbytes",
      "batch.num.messages",
      "batch.size",
      "enable.idempotence",
      "transactional.id",
      "transaction.timeout.ms",
      "message.timeout.ms",
      "delivery.timeout.ms",
      "max.in.flight.requests.per.connection",
      "max.in.flight",
      "compression.type",
      "compression.codec",
      "compression.level",
      "partitioner",
      "message.send.max.retries",
      "retries",
      "sticky.partitioning.linger.ms",
      "enable.gapless.guarantee",
      "request.timeout.ms"};
  return names.contains(name);
}

} // namespace sluice::config
