#include "kafka/cluster_health.hpp"
#include "kafka/config.hpp"
#include "kafka/errors.hpp"

#include <boost/test/unit_test.hpp>
#include <librdkafka/rdkafka.h>

#include <openssl/x509_vfy.h>

using namespace sluice;

BOOST_AUTO_TEST_SUITE(kafka_errors)

BOOST_AUTO_TEST_CASE(a_broker_error_is_named_until_the_cluster_answers_again) {
  kafka::cluster_health health;
  health.note_broker_error("localhost:9092/1: Connection refused");
  health.note_certificate_error("untrusted certificate");
  BOOST_TEST(
      health.cause() ==
      "localhost:9092/1: Connection refused; certificate check: untrusted certificate");
  // A broker restarted long ago is no cause of a later failure.
  health.mark_up();
  BOOST_TEST(health.cause() == "");
  health.mark_down("1/1 brokers are down");
  BOOST_TEST(health.last_error() == "1/1 brokers are down");
  health.note_broker_error("SASL authentication error: Invalid username or password");
  BOOST_TEST(health.cause() == "SASL authentication error: Invalid username or password");
  BOOST_TEST(health.last_error() == "1/1 brokers are down; last broker error: SASL "
                                    "authentication error: Invalid username or password");
}

BOOST_AUTO_TEST_CASE(one_classifier_sorts_what_is_retried_refused_or_fatal) {
  using kafka::classify;
  using kafka::error_kind;
  auto is = [](int err, error_kind kind) { return classify(err) == kind; };
  BOOST_TEST(is(RD_KAFKA_RESP_ERR_NO_ERROR, error_kind::none));
  BOOST_TEST(is(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, error_kind::unreachable));
  BOOST_TEST(is(RD_KAFKA_RESP_ERR__RESOLVE, error_kind::unreachable));
  // A commit refused by a rebalance is made again at the next assignment.
  for (auto err :
       {RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION,
        RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID})
    BOOST_TEST(is(err, error_kind::rebalancing));
  for (auto err : {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                   RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
                   RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
                   RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED}) {
    BOOST_TEST(is(err, error_kind::denied));
    BOOST_TEST(!kafka::denial(err, "Write", "topic `out`").empty());
  }
  BOOST_TEST(is(RD_KAFKA_RESP_ERR__FATAL, error_kind::fatal));
  // Behind a fatal producer error, these a new producer id gets past.
  for (auto err :
       {RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
        RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
        RD_KAFKA_RESP_ERR__INCONSISTENT})
    BOOST_TEST(is(err, error_kind::sequence_lost));
  // Records the broker refuses for good go to the DLQ.
  for (auto err :
       {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_RECORD,
        RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_MSG,
        RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE, RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP})
    BOOST_TEST(is(err, error_kind::record_refused));
  for (auto err : {RD_KAFKA_RESP_ERR__BAD_MSG, RD_KAFKA_RESP_ERR__BAD_COMPRESSION,
                   RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED})
    BOOST_TEST(is(err, error_kind::undecodable));
  // Transient: retried (a timeout, a leader moving), never sent to the DLQ.
  for (auto err : {RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
                   RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                   RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS})
    BOOST_TEST(is(err, error_kind::other));
}

BOOST_AUTO_TEST_CASE(a_denial_names_the_operation_and_what_was_denied) {
  BOOST_TEST(
      kafka::denial(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, "Write", "topic `out`")
          .starts_with("not authorized: Write on topic `out` is denied by the "
                       "cluster's ACLs ("));
  BOOST_TEST(
      kafka::denial(RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, "Read", "group `g`")
          .starts_with("not authorized: Read on group `g` is denied"));
  // Not the topic's ACLs: the producer's permission on the cluster.
  auto cluster = kafka::denial(RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED, "Write",
                               "topic `out`");
  BOOST_TEST(cluster.starts_with("not authorized: IdempotentWrite on the cluster is "
                                 "denied"));
  BOOST_TEST(cluster.find("to write to topic `out`") != std::string::npos);
  BOOST_TEST(kafka::denial(RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                           "Write", "topic `out`")
                 .starts_with("not authorized: Write on the transactional id"));
  BOOST_TEST(kafka::denial(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, "Write", "topic `out`") ==
             "");
}

BOOST_AUTO_TEST_CASE(a_refused_certificate_says_why) {
  BOOST_TEST(kafka::describe_certificate_error(X509_V_ERR_HOSTNAME_MISMATCH, 0,
                                               "127.0.0.1:9094/1")
                 .starts_with("hostname mismatch: the broker certificate does not name "
                              "127.0.0.1:9094/1"));
  BOOST_TEST(
      kafka::describe_certificate_error(X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, 1,
                                        "localhost:9094/1")
          .starts_with("untrusted certificate: the certificate of localhost:9094/1 "
                       "is not signed by a CA in ssl.ca.location"));
  BOOST_TEST(kafka::describe_certificate_error(X509_V_ERR_CERT_HAS_EXPIRED, 0, nullptr) ==
             "the certificate of the broker has expired");
}

BOOST_AUTO_TEST_SUITE_END()
