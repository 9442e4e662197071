#include "actors/checkpoint.hpp"

#include "actors/messages.hpp"

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

#include <chrono>

namespace sluice::actors {

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct partition_state {
  std::int64_t epoch_start = -1; ///< watermark when the epoch began
  std::int64_t watermark = -1;
  std::int64_t latest = -1;
  std::int64_t consumed = 0;
  std::int64_t consumed_at_epoch_start = 0;
  std::int64_t in_flight = 0;
};

/// Print an idle epoch at least this often, as a heartbeat.
constexpr std::int64_t idle_report_ms = 10000;

} // namespace

struct checkpoint_state {
  std::map<kafka::topic_partition, partition_state> parts;
  std::int64_t batch_id = 0;
  std::int64_t epoch_start_ms = wall_ms();
  std::int64_t last_report_ms = 0;
  std::int64_t outputs_at_epoch_start = 0;
  std::int64_t dlq_at_epoch_start = 0;
  bool complete = false;
};

namespace {

caf::behavior checkpoint(caf::stateful_actor<checkpoint_state>* self, run_context* ctx) {
  // Commits what changed, reports the epoch, starts the next one.
  auto close_epoch = [self, ctx](bool force_report) {
    auto& st = self->state;
    // Every known watermark, every epoch: an async commit that failed is
    // simply retried by the next one.
    std::map<kafka::topic_partition, std::int64_t> to_commit;
    for (auto& [tp, p] : st.parts)
      if (p.watermark >= 0) to_commit[tp] = p.watermark;
    if (auto err = ctx->consumer.commit(to_commit, false))
      spdlog::warn("offset commit failed: {} (retried at the next epoch)", *err);

    auto now = wall_ms();
    epoch_progress p;
    p.id = ctx->query_id;
    p.run_id = ctx->run_id;
    p.name = ctx->config.name;
    p.batch_id = st.batch_id;
    p.timestamp_ms = st.epoch_start_ms;
    p.duration_ms = now - st.epoch_start_ms;
    std::string topics;
    for (auto& t : ctx->config.source.subscribe)
      topics += (topics.empty() ? "" : ",") + t;
    p.source_description = "KafkaV2[Subscribe[" + topics + "]]";
    p.sink_description = "KafkaSink[" + ctx->config.sink.bootstrap_servers + "]";
    auto outputs = ctx->metrics.output_rows.load();
    auto dlq = ctx->metrics.dlq_rows.load();
    p.num_output_rows = outputs - st.outputs_at_epoch_start;
    p.num_dlq_rows = dlq - st.dlq_at_epoch_start;
    p.num_processed_rows = p.num_output_rows + p.num_dlq_rows;
    std::int64_t in_flight = 0;
    for (auto& [tp, ps] : st.parts) {
      partition_progress pp;
      pp.topic = tp.topic;
      pp.partition = tp.partition;
      pp.start_offset = ps.epoch_start;
      pp.end_offset = ps.watermark;
      pp.latest_offset = ps.latest;
      pp.num_input_rows = ps.consumed - ps.consumed_at_epoch_start;
      pp.in_flight = ps.in_flight;
      in_flight += ps.in_flight;
      p.num_input_rows += pp.num_input_rows;
      p.partitions.push_back(pp);
      ps.epoch_start = ps.watermark;
      ps.consumed_at_epoch_start = ps.consumed;
    }
    bool active = p.num_input_rows > 0 || p.num_processed_rows > 0 || in_flight > 0;
    if (force_report || active || now - st.last_report_ms >= idle_report_ms) {
      st.last_report_ms = now;
      ++st.batch_id;
      if (ctx->on_progress) ctx->on_progress(p);
    }
    st.epoch_start_ms = now;
    st.outputs_at_epoch_start = outputs;
    st.dlq_at_epoch_start = dlq;
  };

  auto check_complete = [self, ctx] {
    auto& st = self->state;
    if (st.complete || ctx->end_offsets.empty()) return;
    for (auto& [tp, end] : ctx->end_offsets) {
      auto it = st.parts.find(tp);
      if (it == st.parts.end() || it->second.watermark < end) return;
    }
    st.complete = true;
    if (ctx->on_complete) ctx->on_complete();
  };

  self->delayed_send(self, ctx->config.trigger.interval, epoch_atom::value);
  return {
      [=](report_atom, const std::string& topic, std::int32_t partition,
          std::int64_t watermark, std::int64_t consumed, std::int64_t in_flight,
          std::int64_t latest) {
        auto& p = self->state.parts[{topic, partition}];
        if (p.epoch_start < 0) p.epoch_start = watermark;
        p.watermark = watermark;
        p.consumed = consumed;
        p.in_flight = in_flight;
        if (latest >= 0) p.latest = latest;
        check_complete();
      },
      [=](epoch_atom) {
        close_epoch(false);
        self->delayed_send(self, ctx->config.trigger.interval, epoch_atom::value);
      },
      [=](watermark_atom, const std::string& topic,
          std::int32_t partition) -> std::int64_t {
        auto it = self->state.parts.find({topic, partition});
        return it == self->state.parts.end() ? -1 : it->second.watermark;
      },
      [=](take_atom, const partition_list& which) -> offset_map {
        close_epoch(!self->state.parts.empty());
        offset_map out;
        auto& parts = self->state.parts;
        for (auto it = parts.begin(); it != parts.end();) {
          bool wanted = which.empty() ||
                        std::find(which.begin(), which.end(), it->first) != which.end();
          if (!wanted) {
            ++it;
            continue;
          }
          if (it->second.watermark >= 0) out[it->first] = it->second.watermark;
          it = parts.erase(it);
        }
        return out;
      },
  };
}

} // namespace

caf::actor spawn_checkpoint(caf::actor_system& system, run_context* ctx) {
  return system.spawn(checkpoint, ctx);
}

} // namespace sluice::actors
