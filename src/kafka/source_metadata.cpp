// What the cluster says of the source: watermarks and end offsets, its topics now (a
// pattern matched against the metadata), partition counts, log ranges, offsets by time
// and the group's committed offsets. Each request waits at most `timeout`.
#include "kafka/consumer.hpp"
#include "kafka/partition_lists.hpp"

#include <sluice/errors.hpp>

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <memory>
#include <regex>

namespace sluice::kafka {

std::pair<std::int64_t, std::int64_t>
group_consumer::cached_watermarks(const topic_partition& tp) {
  int64_t lo = -1, hi = -1;
  rd_kafka_get_watermark_offsets(rk_, tp.topic.c_str(), tp.partition, &lo, &hi);
  return {lo, hi};
}

offset_map group_consumer::end_offsets(const std::vector<std::string>& topics,
                                       std::chrono::milliseconds timeout) {
  offset_map out;
  auto ms = static_cast<int>(timeout.count());
  for (auto& name : topics) {
    auto* rkt = rd_kafka_topic_new(rk_, name.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    auto err = rd_kafka_metadata(rk_, 0, rkt, &md, ms);
    rd_kafka_topic_destroy(rkt);
    if (err)
      throw fatal_error("cannot read metadata of topic `" + name +
                        "`: " + rd_kafka_err2str(err) + cause_suffix());
    std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)>
        owned(md, rd_kafka_metadata_destroy);
    for (int t = 0; t < md->topic_cnt; ++t) {
      auto& mt = md->topics[t];
      if (mt.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        throw missing_topic_error(name);
      if (mt.err) throw fatal_error("topic `" + name + "`: " + rd_kafka_err2str(mt.err));
      for (int p = 0; p < mt.partition_cnt; ++p) {
        std::int64_t lo = 0, hi = 0;
        auto id = mt.partitions[p].id;
        if (auto why = query_log_range({name, id}, lo, hi, timeout))
          throw fatal_error("cannot read end offset of " + name + "/" +
                            std::to_string(id) + ": " + *why);
        out[{name, id}] = hi;
      }
    }
  }
  return out;
}

namespace {

/// The partition errors that mean the asked broker does not lead it, or not
/// yet (a leader still taking over answers OFFSET_NOT_AVAILABLE).
bool not_led_there(rd_kafka_resp_err_t err) {
  switch (err) {
  case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
  case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
  case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
  case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
  case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
  case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
    return true;
  default:
    return false;
  }
}

/// Asks for `tp`'s topic metadata and waits for it (the answer updates
/// librdkafka's leader cache); returns the leader it names (-1: none known).
std::int32_t refresh_leader(rd_kafka_t* rk, const topic_partition& tp, int timeout_ms) {
  auto* rkt = rd_kafka_topic_new(rk, tp.topic.c_str(), nullptr);
  if (!rkt) return -1;
  const rd_kafka_metadata_t* md = nullptr;
  std::int32_t leader = -1;
  if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int t = 0; t < md->topic_cnt; ++t)
      for (int p = 0; p < md->topics[t].partition_cnt; ++p)
        if (md->topics[t].partitions[p].id == tp.partition)
          leader = md->topics[t].partitions[p].leader;
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(rkt);
  return leader;
}

/// Milliseconds until `deadline`, at least 1.
int ms_until(std::chrono::steady_clock::time_point deadline) {
  return static_cast<int>(
      std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count()));
}

} // namespace

std::optional<std::string>
group_consumer::query_log_range(const topic_partition& tp, std::int64_t& lo,
                                std::int64_t& hi, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::int64_t l = 0, h = 0;
  auto err = rd_kafka_query_watermark_offsets(rk_, tp.topic.c_str(), tp.partition, &l, &h,
                                              ms_until(deadline));
  std::string why;
  if (not_led_there(err)) {
    auto leader = refresh_leader(rk_, tp, ms_until(deadline));
    why = std::string(rd_kafka_err2str(err)) + " (asked again after ";
    why += leader >= 0
               ? "metadata naming broker " + std::to_string(leader) + " its leader"
               : std::string("a metadata request that named no leader");
    err = rd_kafka_query_watermark_offsets(rk_, tp.topic.c_str(), tp.partition, &l, &h,
                                           ms_until(deadline));
    why += err ? std::string(": ") + rd_kafka_err2str(err) + ")" : ")";
  } else if (err) {
    why = rd_kafka_err2str(err);
  }
  if (err) return why;
  lo = l;
  hi = h;
  return std::nullopt;
}

std::optional<std::pair<std::int64_t, std::int64_t>>
group_consumer::log_range(const topic_partition& tp, std::chrono::milliseconds timeout) {
  std::int64_t lo = 0, hi = 0;
  if (query_log_range(tp, lo, hi, timeout)) return std::nullopt;
  return std::pair<std::int64_t, std::int64_t>{lo, hi};
}

std::vector<std::string> group_consumer::topics_now(std::chrono::milliseconds timeout) {
  switch (opts_.subscription) {
  case subscription_kind::subscribe:
    return opts_.subscribe;
  case subscription_kind::assign: {
    std::vector<std::string> out;
    for (auto& tp : opts_.assign)
      if (std::find(out.begin(), out.end(), tp.topic) == out.end())
        out.push_back(tp.topic);
    return out;
  }
  case subscription_kind::pattern:
    break;
  }
  const rd_kafka_metadata_t* md = nullptr;
  if (auto err =
          rd_kafka_metadata(rk_, 1, nullptr, &md, static_cast<int>(timeout.count())))
    throw fatal_error(std::string("cannot list the cluster's topics: ") +
                      rd_kafka_err2str(err) + cause_suffix());
  std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> owned(
      md, rd_kafka_metadata_destroy);
  std::vector<std::string> out;
  std::regex re(opts_.pattern, std::regex::extended);
  // Kafka's internal topics are never matched, as in Java; other names
  // starting with __ are ordinary topics.
  static const std::regex internal(internal_topics_pattern);
  for (int t = 0; t < md->topic_cnt; ++t)
    if (!md->topics[t].err && !std::regex_match(md->topics[t].topic, internal) &&
        std::regex_match(md->topics[t].topic, re))
      out.push_back(md->topics[t].topic);
  std::sort(out.begin(), out.end());
  return out;
}

std::size_t group_consumer::partition_count(std::chrono::milliseconds timeout) {
  if (opts_.subscription == subscription_kind::assign) return opts_.assign.size();
  std::vector<std::string> topics;
  try {
    topics = topics_now(timeout);
  } catch (const fatal_error&) {
    return 0; // no answer: the caller keeps its default
  }
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk_, 1, nullptr, &md, static_cast<int>(timeout.count())))
    return 0;
  std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> owned(
      md, rd_kafka_metadata_destroy);
  std::size_t n = 0;
  for (int t = 0; t < md->topic_cnt; ++t)
    if (!md->topics[t].err &&
        std::find(topics.begin(), topics.end(), md->topics[t].topic) != topics.end())
      n += static_cast<std::size_t>(md->topics[t].partition_cnt);
  return n;
}

std::optional<std::int64_t>
group_consumer::offset_for_time(const topic_partition& tp, std::int64_t timestamp_ms,
                                std::chrono::milliseconds timeout) {
  auto* list = rd_kafka_topic_partition_list_new(1);
  list_guard guard{list};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto ask = [&] {
    list->elems[0].offset = timestamp_ms;
    list->elems[0].err = RD_KAFKA_RESP_ERR_NO_ERROR;
    return rd_kafka_offsets_for_times(rk_, list, ms_until(deadline));
  };
  rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition);
  auto err = ask();
  if (not_led_there(err) || not_led_there(list->elems[0].err)) { // as query_log_range
    refresh_leader(rk_, tp, ms_until(deadline));
    err = ask();
  }
  if (err)
    throw fatal_error("cannot look up the offset of " + tp.str() + " at timestamp " +
                      std::to_string(timestamp_ms) + ": " + rd_kafka_err2str(err));
  if (list->elems[0].err)
    throw fatal_error("cannot look up the offset of " + tp.str() + " at timestamp " +
                      std::to_string(timestamp_ms) + ": " +
                      rd_kafka_err2str(list->elems[0].err));
  auto offset = list->elems[0].offset;
  if (offset < 0) return std::nullopt; // every record is older
  return offset;
}

offset_map group_consumer::committed(const std::vector<topic_partition>& parts,
                                     std::chrono::milliseconds timeout) {
  auto* list = rd_kafka_topic_partition_list_new(static_cast<int>(parts.size()));
  list_guard guard{list};
  for (auto& tp : parts)
    rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition);
  if (auto e = rd_kafka_committed(rk_, list, static_cast<int>(timeout.count())))
    throw fatal_error(std::string("cannot read committed offsets: ") +
                      rd_kafka_err2str(e));
  offset_map out;
  for (int i = 0; i < list->cnt; ++i) {
    auto& e = list->elems[i];
    if (e.err)
      throw fatal_error("cannot read the committed offset of " + std::string(e.topic) +
                        "/" + std::to_string(e.partition) + ": " +
                        rd_kafka_err2str(e.err));
    out[{e.topic, e.partition}] = e.offset < 0 ? -1 : e.offset;
  }
  return out;
}

} // namespace sluice::kafka
