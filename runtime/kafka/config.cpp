#include "runtime/kafka/config.hpp"

#include "runtime/errors.hpp"

#include <librdkafka/rdkafka.h>

namespace sluice::kafka {

rd_kafka_conf_s* make_conf(const std::map<std::string, std::string>& props,
                           const std::string& option_prefix) {
  auto* conf = rd_kafka_conf_new();
  char err[512];
  for (auto& [name, value] : props) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err, sizeof err) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw config_error(option_prefix + ".kafka." + name,
                         std::string("rejected by librdkafka: ") + err);
    }
  }
  return conf;
}

void set_default(std::map<std::string, std::string>& props, const std::string& name,
                 const std::string& value) {
  props.try_emplace(name, value);
}

} // namespace sluice::kafka
