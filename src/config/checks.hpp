#pragma once

// Checks on option values that both the pipeline file reader (options.cpp)
// and validate() (validate.cpp) make. Each throws config_error naming the
// option it is given, in the file's spelling (`source.subscribe`).

#include <sluice/config.hpp>
#include <sluice/topic_partition.hpp>

#include <string>
#include <string_view>

namespace sluice::config {

/// Kafka's topic name rules: [a-zA-Z0-9._-], 1 to 249 characters, not `.`
/// or `..`. Returns `name`; throws config_error naming `option`.
std::string checked_topic(std::string name, const std::string& option);

/// Throws config_error naming `option` unless `pattern` is a POSIX extended
/// regular expression, the grammar librdkafka reads subscription patterns in.
void check_pattern(const std::string& pattern, const std::string& option);

/// Whether `tp` is part of what the source reads, as far as its options tell
/// (a pattern must have passed check_pattern).
bool in_subscription(const source_options& src, const kafka::topic_partition& tp);

/// Whether the pipeline reads `topic`: writing there would read every record
/// again, endlessly.
bool is_source_topic(const source_options& src, const std::string& topic);

/// Nothing but spaces and tabs (or nothing at all).
bool is_blank(std::string_view text);

/// librdkafka properties only a consumer takes: set on a producer, librdkafka
/// ignores them with a warning, so the user's intent would be lost silently.
bool consumer_only(std::string_view name);

/// librdkafka properties only a producer takes (acks, linger.ms, ...).
bool producer_only(std::string_view name);

} // namespace sluice::config
