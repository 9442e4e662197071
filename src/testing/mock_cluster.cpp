#include <sluice/testing/mock_cluster.hpp>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <stdexcept>

namespace sluice::testing {

/// The mock cluster needs a client handle to live in; a bare producer does.
struct mock_cluster::host {
  rd_kafka_t* rk = nullptr;
  ~host() {
    if (rk) rd_kafka_destroy(rk);
  }
};

mock_cluster::mock_cluster(int brokers)
    : host_(std::make_unique<host>()), brokers_(brokers) {
  char err[512];
  auto* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  host_->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!host_->rk)
    throw std::runtime_error(std::string("cannot create the mock cluster's host: ") +
                             err);
  cluster_ = rd_kafka_mock_cluster_new(host_->rk, brokers);
  if (!cluster_) throw std::runtime_error("cannot create the mock cluster");
}

mock_cluster::~mock_cluster() {
  if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
}

std::string mock_cluster::bootstrap_servers() const {
  return rd_kafka_mock_cluster_bootstraps(cluster_);
}

void mock_cluster::create_topic(const std::string& name, int partitions) {
  auto err = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
  if (err)
    throw std::runtime_error("cannot create topic " + name + ": " +
                             rd_kafka_err2str(err));
}

void mock_cluster::set_broker_rtt(int broker_id, int rtt_ms) {
  rd_kafka_mock_broker_set_rtt(cluster_, broker_id, rtt_ms);
}

} // namespace sluice::testing
