#include "kafka/errors.hpp"

#include <librdkafka/rdkafka.h>

namespace sluice::kafka {

error_kind classify(int err) {
  switch (static_cast<rd_kafka_resp_err_t>(err)) {
  case RD_KAFKA_RESP_ERR_NO_ERROR:
    return error_kind::none;
  case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
  case RD_KAFKA_RESP_ERR__RESOLVE:
    return error_kind::unreachable;
  case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
  case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
  case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    return error_kind::rebalancing;
  case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    return error_kind::denied;
  case RD_KAFKA_RESP_ERR__FATAL:
    return error_kind::fatal;
  case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
  case RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID:
  case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
  case RD_KAFKA_RESP_ERR__INCONSISTENT:
    return error_kind::sequence_lost;
  case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_INVALID_RECORD:
  case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_INVALID_MSG:
  case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
  case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    return error_kind::record_refused;
  case RD_KAFKA_RESP_ERR__BAD_MSG:
  case RD_KAFKA_RESP_ERR__BAD_COMPRESSION:
  case RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED:
    return error_kind::undecodable;
  default:
    return error_kind::other;
  }
}

std::string denial(int err, const std::string& operation, const std::string& resource) {
  if (classify(err) != error_kind::denied) return "";
  auto code = static_cast<rd_kafka_resp_err_t>(err);
  auto why =
      std::string(" is denied by the cluster's ACLs (") + rd_kafka_err2str(code) + ")";
  switch (code) {
  case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    return "not authorized: " + operation + " on " + resource + why;
  // Not about the resource at hand but the client: an idempotent producer
  // (Sluice's default) asks for a producer id, which brokers before Kafka 2.8
  // grant only with IdempotentWrite on the cluster; a transactional one needs
  // Write on its transactional id.
  case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    if (operation == "Write")
      return "not authorized: IdempotentWrite on the cluster" + why +
             " (the idempotent producer needs it to write to " + resource + ")";
    return "not authorized: an operation on the cluster" + why + " (needed for " +
           operation + " on " + resource + ")";
  case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    return "not authorized: Write on the transactional id (kafka.transactional.id)" + why;
  default:
    return "";
  }
}

std::string consumer_denial(int err, const std::string& group, const std::string& topic,
                            const char* reason) {
  std::string out;
  if (err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED)
    out = denial(err, "Read", "group `" + group + "`");
  else if (err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
    out = denial(err, "Read", topic.empty() ? std::string("a topic") : topic);
  if (!out.empty() && reason && *reason) out += ": " + std::string(reason);
  return out;
}

} // namespace sluice::kafka
