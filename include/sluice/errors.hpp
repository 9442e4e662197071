#pragma once

#include <stdexcept>
#include <string>

namespace sluice {

/// A bad configuration or command-line option, found at start. The message
/// names the option and the expected form; the run does not start.
class config_error : public std::runtime_error {
public:
  config_error(const std::string& option, const std::string& what)
      : std::runtime_error("option `" + option + "`: " + what), option_(option),
        reason_(what) {}

  const std::string& option() const noexcept { return option_; }
  /// The message without the option's name.
  const std::string& reason() const noexcept { return reason_; }

private:
  std::string option_;
  std::string reason_;
};

/// A failure that ends the run (for example a restart budget spent, or a Kafka
/// error that retrying cannot fix). The message says what to fix.
class fatal_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A topic the cluster says it does not have (on clusters that do not create
/// topics when they are read). Retrying does not help: the run fails at once.
class missing_topic_error : public fatal_error {
public:
  explicit missing_topic_error(const std::string& topic)
      : fatal_error("topic `" + topic + "` does not exist"), topic_(topic) {}

  const std::string& topic() const noexcept { return topic_; }

private:
  std::string topic_;
};

} // namespace sluice
