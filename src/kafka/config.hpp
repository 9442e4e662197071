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

enum class client_kind { consumer, producer };

/// Has librdkafka check `props` as a whole, as creating a client would (values,
/// and combinations such as fetch sizes or TLS files), without connecting: the
/// client is created without brokers and destroyed at once. Lets a pipeline
/// refuse a bad property before any of its clients talks to a cluster. Throws
/// config_error naming `<option_prefix>.kafka[.<name>]`.
void check_properties(std::map<std::string, std::string> props, client_kind kind,
                      const std::string& option_prefix);

/// Why OpenSSL refused a broker certificate, in words that name the cause and
/// the property to look at: `x509_error` is OpenSSL's X509_V_ERR_* code,
/// `depth` the certificate's place in the chain (0: the broker's own),
/// `broker` the host:port connected to.
std::string describe_certificate_error(int x509_error, int depth, const char* broker);

/// Whether librdkafka checks broker certificates with these properties (it
/// does unless enable.ssl.certificate.verification is false).
bool verifies_certificates(const std::map<std::string, std::string>& props);

/// Sets a property only when the user did not.
void set_default(std::map<std::string, std::string>& props, const std::string& name,
                 const std::string& value);

} // namespace sluice::kafka
