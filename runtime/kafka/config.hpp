#pragma once

#include <map>
#include <string>

struct rd_kafka_conf_s;

namespace sluice::kafka {

/// Builds a librdkafka configuration from properties. A property librdkafka
/// does not know or rejects throws config_error naming `<prefix>.kafka.<name>`
/// with librdkafka's own explanation. The caller owns the returned object.
rd_kafka_conf_s* make_conf(const std::map<std::string, std::string>& props,
                           const std::string& option_prefix);

/// Sets a property only when the user did not.
void set_default(std::map<std::string, std::string>& props, const std::string& name,
                 const std::string& value);

} // namespace sluice::kafka
