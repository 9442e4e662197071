#include "kafka/config.hpp"

#include "core/log.hpp"

#include <sluice/errors.hpp>

#include <librdkafka/rdkafka.h>

#include <cctype>
#include <openssl/x509_vfy.h>

namespace sluice::kafka {

namespace {

/// librdkafka's own log lines go through spdlog, so that `--log-level`
/// applies to them and they look like every other line.
void log_to_spdlog(const rd_kafka_t* rk, int level, const char* facility,
                   const char* line) {
  auto name = rk ? rd_kafka_name(rk) : "rdkafka";
  if (level <= 3)
    sluice::logger().error("{} {}: {}", name, facility, line);
  else if (level == 4)
    sluice::logger().warn("{} {}: {}", name, facility, line);
  else if (level <= 6)
    sluice::logger().info("{} {}: {}", name, facility, line);
  else
    sluice::logger().debug("{} {}: {}", name, facility, line);
}

} // namespace

rd_kafka_conf_s* make_conf(const std::map<std::string, std::string>& props,
                           const std::string& option_prefix) {
  auto* conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(conf, log_to_spdlog);
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

void check_properties(std::map<std::string, std::string> props, client_kind kind,
                      const std::string& option_prefix) {
  props.erase("bootstrap.servers");
  props.erase("metadata.broker.list");
  // Nothing to report: a client without brokers has nobody to log about (a
  // string built from a char: GCC 12 warns wrongly about a literal here).
  props.erase("debug");
  props.insert_or_assign("log_level", std::string(1, '0'));
  auto* conf = make_conf(props, option_prefix);
  // These mechanisms act as the client is created (an OIDC token request, a
  // kinit run): checking them would contact a server. Their values were
  // checked one by one above; the client itself checks the rest.
  auto mechanism = props.contains("sasl.mechanisms") ? props["sasl.mechanisms"]
                                                     : props["sasl.mechanism"];
  if (props["sasl.oauthbearer.method"] == "oidc" || mechanism == "GSSAPI") {
    rd_kafka_conf_destroy(conf);
    return;
  }
  char err[512];
  auto* rk =
      rd_kafka_new(kind == client_kind::consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER,
                   conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    throw config_error(option_prefix + ".kafka",
                       std::string("rejected by librdkafka: ") + err);
  }
  rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

std::string describe_certificate_error(int x509_error, int depth, const char* broker) {
  std::string host = broker ? broker : "the broker";
  std::string what;
  switch (x509_error) {
  case X509_V_ERR_HOSTNAME_MISMATCH:
  case X509_V_ERR_IP_ADDRESS_MISMATCH:
    what = "hostname mismatch: the broker certificate does not name " + host +
           " (connect by a name in its subjectAltName)";
    break;
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
  case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    what = "untrusted certificate: the certificate of " + host +
           " is not signed by a CA in ssl.ca.location (X509 error " +
           std::to_string(x509_error) + ")";
    break;
  case X509_V_ERR_CERT_NOT_YET_VALID:
    what = "the certificate of " + host + " is not valid yet";
    break;
  case X509_V_ERR_CERT_HAS_EXPIRED:
    what = "the certificate of " + host + " has expired";
    break;
  default:
    what = "the certificate of " + host + " was refused (X509 error " +
           std::to_string(x509_error) + ")";
  }
  return what +
         (depth > 0 ? ", at depth " + std::to_string(depth) + " of its chain" : "");
}

bool verifies_certificates(const std::map<std::string, std::string>& props) {
  auto it = props.find("enable.ssl.certificate.verification");
  if (it == props.end()) return true;
  auto v = it->second;
  for (auto& c : v)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v != "false" && v != "0";
}

void set_default(std::map<std::string, std::string>& props, const std::string& name,
                 const std::string& value) {
  props.try_emplace(name, value);
}

} // namespace sluice::kafka
