#pragma once

#include <memory>
#include <string>

struct rd_kafka_mock_cluster_s;

namespace sluice::testing {

/// librdkafka's mock cluster: a Kafka-protocol broker set that runs inside
/// this process and listens on loopback with random ports. Clients reach it
/// over TCP like any cluster. It keeps at most 5 MiB or 100,000 message sets
/// per partition (librdkafka 2.0.2 hard-codes that retention).
class mock_cluster {
public:
  explicit mock_cluster(int brokers = 3);
  ~mock_cluster();
  mock_cluster(const mock_cluster&) = delete;
  mock_cluster& operator=(const mock_cluster&) = delete;

  /// The comma-separated `host:port` list clients use as bootstrap.servers.
  std::string bootstrap_servers() const;

  /// Creates a topic (replication factor 1). Throws when the mock refuses.
  void create_topic(const std::string& name, int partitions);

  /// Adds latency to every response of one broker (1-based id), e.g. to slow a sink.
  void set_broker_rtt(int broker_id, int rtt_ms);

  /// The raw handle, for fault injection (`rd_kafka_mock_push_request_errors`...).
  rd_kafka_mock_cluster_s* handle() const noexcept { return cluster_; }

private:
  struct host;
  std::unique_ptr<host> host_;
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
  int brokers_;
};

} // namespace sluice::testing
