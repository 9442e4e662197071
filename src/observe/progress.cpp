#include "core/json_writer.hpp"

#include <sluice/progress.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <random>

namespace json = boost::json;

namespace sluice {

namespace {

std::string format_uuid(std::uint64_t hi, std::uint64_t lo) {
  hi = (hi & ~0xF000ull) | 0x4000ull;                 // version 4
  lo = (lo & ~(0xC000ull << 48)) | (0x8000ull << 48); // RFC 4122 variant
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx",
                static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF),
                static_cast<unsigned>(hi & 0xFFFF), static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
  return buf;
}

double per_second(std::int64_t rows, std::int64_t ms) {
  return ms > 0 ? static_cast<double>(rows) * 1000.0 / static_cast<double>(ms) : 0.0;
}

} // namespace

std::int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string iso8601_utc(std::int64_t epoch_ms) {
  std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(epoch_ms % 1000));
  return buf;
}

std::string random_uuid() {
  static thread_local std::mt19937_64 gen{std::random_device{}()};
  return format_uuid(gen(), gen());
}

std::string stable_uuid(const std::string& seed) {
  std::mt19937_64 gen{std::hash<std::string>{}(seed)};
  return format_uuid(gen(), gen());
}

/// Spark's Kafka source metrics: how far the committed offsets are behind the
/// latest, over the partitions (Spark writes them as strings).
static json::object behind_latest_metrics(const std::vector<partition_progress>& parts) {
  std::int64_t min = 0, max = 0, sum = 0, n = 0;
  for (auto& pp : parts) {
    if (pp.latest_offset < 0 || pp.end_offset < 0) continue;
    auto behind = std::max<std::int64_t>(0, pp.latest_offset - pp.end_offset);
    min = n == 0 ? behind : std::min(min, behind);
    max = std::max(max, behind);
    sum += behind;
    ++n;
  }
  std::string avg;
  write_json(
      json::value(n == 0 ? 0.0 : static_cast<double>(sum) / static_cast<double>(n)), avg);
  return {{"minOffsetsBehindLatest", std::to_string(min)},
          {"maxOffsetsBehindLatest", std::to_string(max)},
          {"avgOffsetsBehindLatest", avg}};
}

std::string to_json(const epoch_progress& p) {
  // Offsets are grouped topic -> partition -> value, as in Spark's Kafka source.
  auto offsets = [&](auto member) {
    json::object out;
    for (auto& pp : p.partitions) {
      auto& topic = out[pp.topic];
      if (!topic.is_object()) topic = json::object();
      topic.get_object()[std::to_string(pp.partition)] = pp.*member;
    }
    return out;
  };
  json::object lag;
  std::int64_t in_flight = 0;
  for (auto& pp : p.partitions) {
    auto& topic = lag[pp.topic];
    if (!topic.is_object()) topic = json::object();
    auto behind = pp.latest_offset >= 0 && pp.end_offset >= 0
                      ? std::max<std::int64_t>(0, pp.latest_offset - pp.end_offset)
                      : 0;
    topic.get_object()[std::to_string(pp.partition)] = behind;
    in_flight += pp.in_flight;
  }
  auto input_rate = per_second(p.num_input_rows, p.duration_ms);
  auto processed_rate = per_second(p.num_processed_rows, p.duration_ms);
  json::object source{
      {"description", p.source_description},
      {"startOffset", offsets(&partition_progress::start_offset)},
      {"endOffset", offsets(&partition_progress::end_offset)},
      {"latestOffset", offsets(&partition_progress::latest_offset)},
      {"numInputRows", p.num_input_rows},
      {"inputRowsPerSecond", input_rate},
      {"processedRowsPerSecond", processed_rate},
      {"numInputRowsByPartition", offsets(&partition_progress::num_input_rows)},
      {"numLostRowsByPartition", offsets(&partition_progress::num_lost_rows)},
      {"metrics", behind_latest_metrics(p.partitions)},
  };
  // A rate-limited epoch: the range it admitted.
  json::object admitted;
  std::int64_t admitted_rows = 0;
  for (auto& pp : p.partitions) {
    if (pp.admitted_offset < 0) continue;
    auto& topic = admitted[pp.topic];
    if (!topic.is_object()) topic = json::object();
    topic.get_object()[std::to_string(pp.partition)] = pp.admitted_offset;
    admitted_rows += pp.admitted_rows;
  }
  if (!admitted.empty()) {
    source["admittedOffset"] = std::move(admitted);
    source["numAdmittedRows"] = admitted_rows;
  }
  json::array state_operators;
  for (auto& so : p.state_operators)
    state_operators.push_back(json::object{
        {"operatorName", so.name},
        {"numRowsTotal", so.rows_total},
        {"numRowsUpdated", so.rows_updated},
        {"numRowsRemoved", so.rows_removed},
        {"memoryUsedBytes", so.memory_used_bytes},
        {"customMetrics", json::object{{"numDroppedDuplicateRows", so.dropped_duplicates},
                                       {"numLateRows", so.late_rows}}},
    });
  json::object out{
      {"id", p.id},
      {"runId", p.run_id},
      {"name", p.name},
      {"timestamp", iso8601_utc(p.timestamp_ms)},
      {"batchId", p.batch_id},
      {"numInputRows", p.num_input_rows},
      {"inputRowsPerSecond", input_rate},
      {"processedRowsPerSecond", processed_rate},
      {"durationMs", json::object{{"triggerExecution", p.duration_ms}}},
      {"stateOperators", std::move(state_operators)},
      {"sources", json::array{source}},
      {"sink", json::object{{"description", p.sink_description},
                            {"numOutputRows", p.num_output_rows}}},
      {"message", p.message},
      {"numDlqRows", p.num_dlq_rows},
      {"numDroppedRows", p.num_dropped_rows},
      {"numLostRows", p.num_lost_rows},
      {"inFlightRows", in_flight},
      {"lag", lag},
      {"guarantee", p.guarantee},
  };
  if (p.transactions_committed >= 0)
    out["transactions"] = json::object{{"committed", p.transactions_committed},
                                       {"aborted", p.transactions_aborted}};
  std::string line;
  write_json(out, line);
  return line;
}

} // namespace sluice
