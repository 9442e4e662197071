#include "dedup/changelog.hpp"

#include "core/log.hpp"
#include "kafka/cluster_health.hpp"
#include "kafka/config.hpp"
#include "kafka/errors.hpp"

#include <sluice/config.hpp>
#include <sluice/errors.hpp>

#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <memory>
#include <string_view>
#include <thread>

namespace sluice::dedup {

namespace {

using client_ptr = std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)>;
using kafka::cluster_health;

/// As the source's and sink's clients do: a broker's failure (a refused
/// password) and OpenSSL's verdict are noted, to be named when a request
/// of this client fails rather than librdkafka's bare "Local: Timed out".
void on_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
  if (err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && err != RD_KAFKA_RESP_ERR__FATAL)
    static_cast<cluster_health*>(opaque)->note_broker_error(reason);
  sluice::logger().warn("Kafka client of the dedup changelog: {}", reason);
}

int on_certificate(rd_kafka_t*, const char* broker, int32_t, int* x509_error, int depth,
                   const char*, size_t, char* errstr, size_t errstr_size, void* opaque) {
  if (*x509_error == 0) return 1;
  auto why = kafka::describe_certificate_error(*x509_error, depth, broker);
  std::snprintf(errstr, errstr_size, "%s", why.c_str());
  static_cast<cluster_health*>(opaque)->note_certificate_error(why);
  return 0;
}

/// A client of the changelog's own, and what its brokers failed with.
struct own_client {
  cluster_health health; // first: outlives the client, which writes to it
  client_ptr rk;

  own_client(rd_kafka_type_t type, std::map<std::string, std::string> props)
      : rk(nullptr, &rd_kafka_destroy) {
    if (type == RD_KAFKA_PRODUCER) props["allow.auto.create.topics"] = "false";
    if (type == RD_KAFKA_CONSUMER) {
      props["enable.partition.eof"] = "true";
      props["enable.auto.commit"] = "false";
      // A start that is out of range is an error, not a silent jump to the end.
      props["auto.offset.reset"] = "error";
      props["queued.max.messages.kbytes"] = "8192";
    }
    auto* conf = kafka::make_conf(props, "sink");
    rd_kafka_conf_set_error_cb(conf, on_error);
    if (kafka::verifies_certificates(props))
      rd_kafka_conf_set_ssl_cert_verify_cb(conf, on_certificate);
    rd_kafka_conf_set_opaque(conf, &health);
    char err[512];
    rk.reset(rd_kafka_new(type, conf, err, sizeof err));
    if (!rk) {
      rd_kafka_conf_destroy(conf);
      throw fatal_error(std::string("dedup changelog client: ") + err);
    }
  }

  rd_kafka_t* get() const { return rk.get(); }

  /// " (why)": the broker failure or certificate verdict behind a failed
  /// request, or "". Nobody else polls this client: the errors librdkafka
  /// queued are served here first.
  std::string cause() {
    rd_kafka_poll(rk.get(), 0);
    auto why = health.cause();
    return why.empty() ? "" : " (" + why + ")";
  }
};

/// Partition count of `topic` asked through `rk` (the admin client's, or
/// another on the same cluster), 0 when the cluster does not know it.
std::int32_t partitions_of(rd_kafka_t* rk, own_client& admin, const std::string& topic,
                           std::chrono::milliseconds timeout) {
  auto* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  auto err = rd_kafka_metadata(rk, 0, rkt, &md, static_cast<int>(timeout.count()));
  rd_kafka_topic_destroy(rkt);
  if (err)
    throw fatal_error("cannot read the metadata of the dedup changelog `" + topic +
                      "`: " + rd_kafka_err2str(err) + admin.cause());
  std::int32_t n = 0;
  for (int i = 0; i < md->topic_cnt; ++i)
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR && topic == md->topics[i].topic)
      n = md->topics[i].partition_cnt;
  rd_kafka_metadata_destroy(md);
  return n;
}

/// What CreateTopics answered.
struct creation {
  std::optional<std::string> refused; ///< the error text, when the cluster refused
  bool existed = false;               ///< TOPIC_ALREADY_EXISTS: made by someone else
};

/// Creates `topic` compacted.
creation create_compacted(own_client& admin, const std::string& topic,
                          std::int32_t partitions, std::chrono::milliseconds timeout) {
  auto* rk = admin.get();
  creation out;
  char err[512];
  auto* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, -1, err, sizeof err);
  if (!nt) {
    out.refused = err;
    return out;
  }
  rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
  auto* queue = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, nullptr, queue);
  rd_kafka_NewTopic_destroy(nt);
  auto* ev = rd_kafka_queue_poll(queue, static_cast<int>(timeout.count()));
  if (!ev) {
    out.refused = "no answer" + admin.cause();
  } else if (rd_kafka_event_error(ev)) {
    out.refused = rd_kafka_event_error_string(ev) + admin.cause();
  } else if (auto* res = rd_kafka_event_CreateTopics_result(ev)) {
    std::size_t n = 0;
    auto** topics = rd_kafka_CreateTopics_result_topics(res, &n);
    for (std::size_t i = 0; i < n; ++i) {
      auto code = rd_kafka_topic_result_error(topics[i]);
      if (code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        out.existed = true;
      else if (code)
        out.refused = rd_kafka_topic_result_error_string(topics[i])
                          ? rd_kafka_topic_result_error_string(topics[i])
                          : rd_kafka_err2str(code);
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(queue);
  return out;
}

/// The topic's cleanup.policy as the cluster reports it; nothing when the
/// cluster does not support DescribeConfigs. Throws fatal_error when it does
/// not answer within `timeout`, refuses (ACLs) or fails.
std::optional<std::string> cleanup_policy_of(own_client& admin, const std::string& topic,
                                             std::chrono::milliseconds timeout) {
  auto what = "cannot read the cleanup.policy of the dedup changelog `" + topic + "`";
  // Why there is no answer: nullopt for a request the cluster does not support.
  auto refused = [&](rd_kafka_resp_err_t code,
                     const char* text) -> std::optional<std::string> {
    if (code == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
        code == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION)
      return std::nullopt;
    if (auto denied = kafka::denial(code, "DescribeConfigs", "topic `" + topic + "`");
        !denied.empty())
      throw fatal_error(what + ": " + denied +
                        "; a run checks that its changelog is compacted before it trusts "
                        "it: allow DescribeConfigs on the topic");
    throw fatal_error(what + ": " + (text && *text ? text : rd_kafka_err2str(code)) +
                      admin.cause());
  };
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto* resource = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
    auto* queue = rd_kafka_queue_new(admin.get());
    rd_kafka_DescribeConfigs(admin.get(), &resource, 1, nullptr, queue);
    rd_kafka_ConfigResource_destroy(resource);
    std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> ev(
        rd_kafka_queue_poll(queue, static_cast<int>(std::max<long>(left.count(), 1))),
        &rd_kafka_event_destroy);
    rd_kafka_queue_destroy(queue);
    if (!ev)
      throw fatal_error(what + ": no answer to DescribeConfigs within " +
                        std::to_string(timeout.count() / 1000) +
                        " s (runtime.brokerTimeout)" + admin.cause());
    if (auto code = rd_kafka_event_error(ev.get()))
      return refused(code, rd_kafka_event_error_string(ev.get()));
    auto* res = rd_kafka_event_DescribeConfigs_result(ev.get());
    std::size_t n = 0;
    auto** resources = res ? rd_kafka_DescribeConfigs_result_resources(res, &n) : nullptr;
    if (n != 1)
      throw fatal_error(what + ": the cluster's answer to DescribeConfigs has " +
                        std::to_string(n) + " resources, not 1");
    auto code = rd_kafka_ConfigResource_error(resources[0]);
    // Just made by another instance: not every broker may know it yet.
    if (code == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
        std::chrono::steady_clock::now() + std::chrono::milliseconds(200) < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    if (code) return refused(code, rd_kafka_ConfigResource_error_string(resources[0]));
    std::size_t m = 0;
    auto** entries = rd_kafka_ConfigResource_configs(resources[0], &m);
    for (std::size_t j = 0; j < m; ++j)
      if (std::string_view{rd_kafka_ConfigEntry_name(entries[j])} == "cleanup.policy" &&
          rd_kafka_ConfigEntry_value(entries[j]))
        return std::string(rd_kafka_ConfigEntry_value(entries[j]));
    throw fatal_error(what +
                      ": the cluster's answer to DescribeConfigs does not have it");
  }
}

/// Refuses a changelog that retention may delete from: sightings it deleted
/// would be gone from the next restore, and their duplicates would pass. A
/// cluster that cannot say is not trusted, unless it does not support the
/// question at all (then a warning says to check).
void check_compacted(own_client& admin, const std::string& topic,
                     std::chrono::milliseconds timeout) {
  // librdkafka 2.0.2's embedded broker never answers DescribeConfigs (no
  // error either): asking it would hold every start for the whole timeout.
  // Any other cluster without it is told apart by librdkafka's answer.
  bool embedded = false;
  if (char* id = rd_kafka_clusterid(admin.get(), static_cast<int>(timeout.count()))) {
    embedded = std::string_view(id).starts_with("mockCluster");
    rd_kafka_mem_free(admin.get(), id);
  }
  auto policy = embedded ? std::nullopt : cleanup_policy_of(admin, topic, timeout);
  if (!policy) {
    sluice::logger().warn(
        "cannot read the cleanup.policy of the dedup changelog `{}` (the cluster "
        "does not support DescribeConfigs): make sure it is compact",
        topic);
    return;
  }
  if (*policy != "compact")
    throw config_error("dedup.changelog",
                       "topic `" + topic + "` has cleanup.policy=" + *policy +
                           ": retention would delete sightings and their duplicates "
                           "would pass; set its cleanup.policy to compact, or name "
                           "another topic (a missing one is created compacted)");
}

} // namespace

std::string changelog_prefix(const kafka::topic_partition& input) {
  return input.topic + "/" + std::to_string(input.partition) + "/";
}

std::int32_t changelog_partition(std::int32_t input_partition, std::int32_t partitions) {
  return partitions > 0 ? input_partition % partitions : 0;
}

std::map<std::string, std::string>
reader_properties(const std::map<std::string, std::string>& sink) {
  std::map<std::string, std::string> out;
  for (auto& [k, v] : sink)
    if (!is_producer_property(k)) out[k] = v;
  return out;
}

std::int32_t ensure_changelog(const std::map<std::string, std::string>& client,
                              rd_kafka_s* producer, const std::string& topic,
                              std::int32_t partitions,
                              std::chrono::milliseconds timeout) {
  // Asked without auto-creation: a cluster that creates topics on a metadata
  // request would make it with the default (delete) policy.
  own_client admin(RD_KAFKA_PRODUCER, client);
  if (auto n = partitions_of(admin.get(), admin, topic, timeout); n > 0) {
    check_compacted(admin, topic, timeout);
    sluice::logger().info("dedup changelog `{}`: {} partition(s)", topic, n);
    return n;
  }
  auto created = create_compacted(admin, topic, std::max(partitions, 1), timeout);
  if (!created.refused) {
    // Metadata may lag the creation a moment.
    auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
      if (auto n = partitions_of(admin.get(), admin, topic, timeout); n > 0) {
        if (created.existed) { // another instance was first: made as it liked
          check_compacted(admin, topic, timeout);
          sluice::logger().info("dedup changelog `{}`: {} partition(s)", topic, n);
        } else {
          sluice::logger().info(
              "created the dedup changelog `{}` ({} partitions, compacted)", topic, n);
        }
        return n;
      }
    } while (std::chrono::steady_clock::now() < deadline);
    throw fatal_error("created the dedup changelog `" + topic +
                      "`, but the cluster does not list it");
  }
  sluice::logger().warn(
      "cannot create the dedup changelog `{}` ({}); it is created on first use "
      "as the cluster likes: make sure its cleanup.policy is compact",
      topic, *created.refused);
  auto n = partitions_of(producer, admin, topic, timeout);
  if (n <= 0)
    throw fatal_error("the dedup changelog `" + topic +
                      "` does not exist and cannot be "
                      "created (" +
                      *created.refused + "): create it with cleanup.policy=compact");
  check_compacted(admin, topic, timeout);
  return n;
}

restore_outcome restore_from_changelog(const std::map<std::string, std::string>& client,
                                       const changelog_log& log,
                                       const kafka::topic_partition& input,
                                       dedup_table& table,
                                       std::chrono::milliseconds timeout,
                                       const std::function<bool()>& cancelled) {
  const auto& topic = log.topic;
  const auto partition = log.partition;
  const auto identity = log.identity();
  restore_outcome out;
  own_client rk(RD_KAFKA_CONSUMER, client);
  std::int64_t low = 0, high = 0;
  auto err = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), partition, &low,
                                              &high, static_cast<int>(timeout.count()));
  if (err)
    throw fatal_error("cannot read the end of the dedup changelog `" + topic + "` [" +
                      std::to_string(partition) + "]: " + rd_kafka_err2str(err) +
                      rk.cause());
  auto position = table.changelog_position(identity);
  if (position && (*position < low || *position > high)) {
    // Below the start: what came after the table's position was partly
    // deleted, so what replaced it cannot be told apart. Past the end: the
    // topic was made anew. Either way, start again from the log start.
    table.clear();
    out.wiped = true;
    position.reset();
  } else if (!position && table.rows() > 0) {
    // State of unknown provenance (another changelog, or none): the
    // changelog is the truth.
    table.clear();
    out.wiped = true;
  }
  std::int64_t from = position ? *position : low;
  out.end = std::max(from, high);
  if (from >= high) {
    table.set_changelog_position(out.end, identity);
    return out;
  }
  auto* rkt = rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr);
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> topic_handle(
      rkt, &rd_kafka_topic_destroy);
  if (rd_kafka_consume_start(rkt, partition, from) == -1)
    throw fatal_error("cannot read the dedup changelog `" + topic +
                      "`: " + rd_kafka_err2str(rd_kafka_last_error()));
  auto prefix = changelog_prefix(input);
  std::vector<change> pending;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::int64_t next = from;
  std::vector<rd_kafka_message_t*> messages(1000);
  // The end is the position reaching `high`, not a record at high - 1:
  // compaction and transaction markers leave holes.
  while (next < high) {
    auto n =
        rd_kafka_consume_batch(rkt, partition, 200, messages.data(), messages.size());
    if (n < 0) {
      rd_kafka_consume_stop(rkt, partition);
      throw fatal_error("reading the dedup changelog `" + topic +
                        "`: " + rd_kafka_err2str(rd_kafka_last_error()));
    }
    for (ssize_t i = 0; i < n; ++i) {
      auto* m = messages[static_cast<std::size_t>(i)];
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        next = std::max(next, m->offset);
      } else if (m->err) {
        std::string why = rd_kafka_message_errstr(m);
        rd_kafka_message_destroy(m);
        for (auto j = i + 1; j < n; ++j)
          rd_kafka_message_destroy(messages[static_cast<std::size_t>(j)]);
        rd_kafka_consume_stop(rkt, partition);
        throw fatal_error("reading the dedup changelog `" + topic + "`: " + why);
      } else {
        next = m->offset + 1;
        std::string_view key(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
        if (m->offset < high && key.starts_with(prefix)) {
          std::optional<sighting> now;
          if (m->payload)
            now = decode_sighting(
                std::string_view(static_cast<const char*>(m->payload), m->len));
          if (m->payload && !now) {
            ++out.unreadable; // not ours to interpret: skipped, counted
          } else {
            pending.push_back({std::string(key.substr(prefix.size())), now});
            ++out.applied;
          }
        }
      }
      rd_kafka_message_destroy(m);
    }
    if (n > 0) deadline = std::chrono::steady_clock::now() + timeout; // progress
    if (cancelled && cancelled()) {
      rd_kafka_consume_stop(rkt, partition);
      throw fatal_error("restoring " + input.str() + " from the dedup changelog `" +
                        topic + "`: given up, its chain stopped");
    }
    if (pending.size() >= 1000) {
      table.restore(pending);
      pending.clear();
    }
    if (next < high && std::chrono::steady_clock::now() > deadline) {
      rd_kafka_consume_stop(rkt, partition);
      throw fatal_error("restoring from the dedup changelog `" + topic + "` [" +
                        std::to_string(partition) + "] took longer than " +
                        std::to_string(timeout.count() / 1000) + " s (at offset " +
                        std::to_string(next) + " of " + std::to_string(high) + ")" +
                        rk.cause());
    }
  }
  rd_kafka_consume_stop(rkt, partition);
  table.restore(pending);
  table.set_changelog_position(out.end, identity);
  return out;
}

} // namespace sluice::dedup
