#include "actors/partition_consumer.hpp"

#include "actors/messages.hpp"
#include "actors/stages.hpp"
#include "runtime/offset_watermark.hpp"

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

namespace sluice::actors {

struct consumer_state {
  kafka::topic_partition tp;
  std::shared_ptr<kafka::partition_queue> queue;
  offset_watermark watermark{0};
  std::uint32_t generation = 0;
  caf::actor next;
  caf::actor checkpoint;
  std::int64_t credit = 0;
  std::int64_t batch_records = 0;
  std::int64_t in_flight = 0;
  std::int64_t consumed = 0;
  std::optional<std::int64_t> end_offset; ///< availableNow: stop here
  bool paused = false;
  bool finished = false;
  bool draining = false;
  bool poll_scheduled = false;
  bool tick_scheduled = false;
  std::optional<caf::typed_response_promise<std::int64_t>> drained;
};

namespace {

/// Poll interval when the queue is empty; the queue's wake-up usually comes first.
constexpr auto idle_poll = std::chrono::milliseconds(20);

} // namespace

namespace {

caf::behavior partition_consumer(caf::stateful_actor<consumer_state>* self,
                                 run_context* ctx, kafka::topic_partition tp,
                                 std::int64_t start_offset, std::uint32_t generation,
                                 caf::actor checkpoint) {
  fail_on_exception(self);
  auto& st = self->state;
  st.tp = tp;
  st.watermark = offset_watermark{start_offset};
  st.generation = generation;
  st.checkpoint = checkpoint;
  st.credit = static_cast<std::int64_t>(ctx->config.runtime.max_in_flight_per_partition);
  st.batch_records = static_cast<std::int64_t>(ctx->config.runtime.max_batch_records);
  if (auto it = ctx->end_offsets.find(tp); it != ctx->end_offsets.end())
    st.end_offset = it->second;

  // The chain behind this actor, linked so that any failure ends all of it.
  auto chain_error = std::make_shared<std::string>();
  st.next = spawn_stages(self, ctx, generation, chain_error);
  self->set_exit_handler([self, chain_error](caf::exit_msg& m) {
    if (!m.reason) return;
    if (!chain_error->empty())
      self->quit(caf::make_error(caf::sec::runtime_error, *chain_error));
    else
      self->quit(m.reason);
  });

  st.queue = ctx->consumer.queue(tp);
  st.queue->on_ready([weak = caf::actor_cast<caf::weak_actor_ptr>(self)] {
    if (auto strong = weak.lock())
      caf::anon_send(caf::actor_cast<caf::actor>(strong), wake_atom::value);
  });
  ctx->consumer.resume(tp); // a failed predecessor may have paused it

  auto report = [self, ctx] {
    auto& st = self->state;
    auto latest = ctx->consumer.cached_watermarks(st.tp).second;
    self->send(st.checkpoint, report_atom::value, st.tp.topic, st.tp.partition,
               st.watermark.watermark(), st.consumed, st.in_flight, latest);
  };

  auto check_end = [self, ctx] {
    auto& st = self->state;
    if (st.end_offset && !st.finished && st.watermark.issued_end() >= *st.end_offset) {
      st.finished = true;
      ctx->consumer.pause(st.tp); // nothing more to read in this run
    }
  };

  auto fetch = [self, ctx, check_end] {
    auto& st = self->state;
    check_end();
    if (st.draining || st.finished) return;
    auto room = st.credit - st.in_flight;
    if (room <= 0) {
      if (!st.paused) {
        st.paused = true;
        ++ctx->metrics.pauses;
        ctx->consumer.pause(st.tp);
      }
      return;
    }
    auto want = std::min(room, st.batch_records);
    auto batch = std::make_shared<record_batch>();
    batch->records.reserve(static_cast<std::size_t>(want));
    if (auto err = st.queue->poll(batch->records, static_cast<std::size_t>(want)))
      spdlog::warn("{}: {}", st.tp.str(), *err);
    auto polled = static_cast<std::int64_t>(batch->records.size());
    auto& recs = batch->records;
    // Records before the read position are re-deliveries of issued offsets;
    // records at or past the end offset belong to a later run.
    auto first_new = std::find_if(recs.begin(), recs.end(), [&](const record& r) {
      return r.offset >= st.watermark.issued_end();
    });
    recs.erase(recs.begin(), first_new);
    if (st.end_offset) {
      auto past_end = std::find_if(recs.begin(), recs.end(), [&](const record& r) {
        return r.offset >= *st.end_offset;
      });
      recs.erase(past_end, recs.end());
    }
    if (!recs.empty()) {
      batch->topic = st.tp.topic;
      batch->partition = st.tp.partition;
      batch->generation = st.generation;
      batch->begin_offset = st.watermark.issued_end();
      batch->end_offset = recs.back().offset + 1;
      st.watermark.issue(batch->begin_offset, batch->end_offset);
      auto n = static_cast<std::int64_t>(recs.size());
      st.in_flight += n;
      st.consumed += n;
      ctx->metrics.input_rows += n;
      ctx->metrics.observe_in_flight(st.in_flight);
      self->send(st.next, std::move(batch));
    }
    check_end();
    if (polled == want && !st.finished) {
      if (!st.poll_scheduled) {
        st.poll_scheduled = true;
        self->send(self, poll_atom::value); // more is ready: go on after other messages
      }
    } else if (!st.tick_scheduled) {
      st.tick_scheduled = true;
      self->delayed_send(self, idle_poll, tick_atom::value);
    }
  };

  report();
  check_end();
  self->send(self, poll_atom::value);
  st.poll_scheduled = true;

  return {
      [=](poll_atom) {
        self->state.poll_scheduled = false;
        fetch();
      },
      [=](wake_atom) { fetch(); },
      [=](tick_atom) {
        self->state.tick_scheduled = false;
        fetch();
      },
      [=](ack_atom, std::int64_t begin, std::uint32_t gen, std::int64_t rows) {
        auto& st = self->state;
        if (gen != st.generation || !st.watermark.ack(begin)) return;
        st.in_flight -= rows;
        report();
        if (st.paused && st.in_flight <= st.credit / 2) {
          st.paused = false;
          if (!st.finished) ctx->consumer.resume(st.tp);
          fetch();
        }
        if (st.drained && st.in_flight == 0) {
          st.drained->deliver(st.watermark.watermark());
          st.drained.reset();
        }
      },
      [=](drain_atom) -> caf::result<std::int64_t> {
        auto& st = self->state;
        st.draining = true;
        if (st.in_flight == 0) return st.watermark.watermark();
        st.drained = self->make_response_promise<std::int64_t>();
        return *st.drained;
      },
  };
}

} // namespace

caf::actor spawn_partition_consumer(caf::event_based_actor* owner, run_context* ctx,
                                    kafka::topic_partition tp, std::int64_t start_offset,
                                    std::uint32_t generation, caf::actor checkpoint) {
  return owner->spawn(partition_consumer, ctx, std::move(tp), start_offset, generation,
                      std::move(checkpoint));
}

} // namespace sluice::actors
