#pragma once

#include <string>

namespace sluice::kafka {

/// What an error code from librdkafka or a broker means to a run: the one
/// place that sorts them, so that the consumer, the partition queues and the
/// producer agree on what is retried, what goes to the DLQ and what ends the
/// run.
enum class error_kind {
  none,
  /// No broker answers (all down, a name that does not resolve): the
  /// cluster's health says so until runtime.brokerTimeout fails the run.
  /// (The consumer's error callback marks its cluster down on all brokers
  /// down only: there, one name that does not resolve is one broker.)
  unreachable,
  /// The group is rebalancing: a commit it refuses is made at the next
  /// assignment.
  rebalancing,
  /// The cluster's ACLs refuse (a topic, the group, the cluster, a
  /// transactional id): waiting will not help, the run ends at once.
  denied,
  /// librdkafka ended the client for good (rd_kafka_fatal_error says why).
  fatal,
  /// Behind a fatal producer error: the producer and a broker lost track of
  /// each other's sequence numbers. A new instance (a new producer id) gets
  /// past it.
  sequence_lost,
  /// The broker refuses this record for good (too large, invalid): it goes
  /// to the DLQ with the reason; retrying cannot help.
  record_refused,
  /// Fetched records librdkafka cannot decode (corrupt, an unknown
  /// compression): each offset goes to the DLQ.
  undecodable,
  /// Anything else: transient or unknown; retried, or the chain restarts.
  other,
};

/// Sorts a librdkafka error code (rd_kafka_resp_err_t).
error_kind classify(int err);

/// For an authorization error (topic, group): "not authorized: <operation> on
/// <resource> is denied by the cluster's ACLs (<librdkafka's text>)"; a cluster
/// or transactional id error names what was denied instead (IdempotentWrite on
/// the cluster for a Write, Write on the transactional id); "" for any other
/// error.
std::string denial(int err, const std::string& operation, const std::string& resource);

/// A group or topic the cluster's ACLs deny a consumer (Read), as a fatal
/// error's text; "" for other errors. `topic` names the topic (a resource such
/// as "topic `orders`"); without it, librdkafka's `reason`, which does, is added.
std::string consumer_denial(int err, const std::string& group, const std::string& topic,
                            const char* reason = nullptr);

} // namespace sluice::kafka
