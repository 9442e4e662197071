#include "actors/partition_consumer.hpp"

#include "actors/messages.hpp"
#include "actors/stages.hpp"
#include "core/batch_bookkeeping.hpp"
#include "core/credit_ledger.hpp"
#include "core/log.hpp"
#include "core/offset_watermark.hpp"
#include "source/read_window.hpp"

#include <sluice/errors.hpp>

#include <caf/all.hpp>

#include <algorithm>
#include <functional>
#include <iterator>
#include <limits>
#include <optional>
#include <string_view>

namespace sluice::actors {

struct consumer_state {
  kafka::topic_partition tp;
  std::shared_ptr<kafka::partition_queue> queue;
  std::shared_ptr<partition_shared> shared;
  offset_watermark watermark{0};
  std::uint32_t generation = 0;
  /// The stages behind this actor: one lane, or several (source.minPartitions)
  /// that the records of each batch are split over by key.
  std::vector<caf::actor> lanes;
  /// Batches split over several lanes: acknowledgements still to come, and
  /// what the lanes acknowledged so far, merged.
  struct split {
    std::size_t left = 0;
    batch_ack merged;
  };
  std::map<std::int64_t, split> splits;
  caf::actor checkpoint;
  /// Records in flight for this partition, bytes for all (set at start).
  std::optional<credit_ledger> credit;
  /// Acknowledged batches the watermark has not passed yet: their outputs
  /// count once it does, so a replay after a restart counts nothing twice.
  std::map<std::int64_t, batch_ack> acked;
  /// Records are polled into this; a batch is allocated only when it has some.
  std::vector<record> scratch;
  /// What of the polled records is issued; holds the records polled past the
  /// open epoch's admission limit, and the last end of log.
  read_window window;
  read_window::loss_rules loss;
  std::optional<std::int64_t> end_offset; ///< bounded run: stop here
  std::int64_t stable_end_reported = -1;
  bool finished = false;
  bool draining = false;
  /// Exactly-once: held for the epoch's commit (see hold_atom).
  bool holding = false;
  std::vector<caf::typed_response_promise<std::int64_t>> held;
  bool poll_scheduled = false;
  bool tick_scheduled = false;
  /// Drain requests waiting for in-flight records (a revoke and a stop may
  /// both ask); each gets the answer.
  std::vector<caf::typed_response_promise<std::int64_t>> drained;
};

namespace {

/// Poll interval when the queue is empty; the queue's wake-up usually comes first.
constexpr auto idle_poll = std::chrono::milliseconds(20);

/// Retry interval while the run-wide byte credit is spent.
constexpr auto byte_credit_poll = std::chrono::milliseconds(5);

caf::behavior partition_consumer(caf::stateful_actor<consumer_state>* self,
                                 run_context* ctx, kafka::topic_partition tp,
                                 std::int64_t start_offset, std::uint32_t generation,
                                 std::shared_ptr<partition_shared> shared,
                                 std::shared_ptr<chain_deliveries> deliveries,
                                 caf::actor checkpoint) {
  fail_on_exception(self);
  auto& st = self->state;
  st.tp = tp;
  st.shared = shared;
  st.watermark = offset_watermark{start_offset};
  st.shared->watermark = start_offset;
  if (st.shared->counted_until < 0) st.shared->counted_until = start_offset;
  st.generation = generation;
  st.checkpoint = checkpoint;
  auto& rt = ctx->config.runtime;
  st.credit.emplace(static_cast<std::int64_t>(rt.max_in_flight_per_partition),
                    static_cast<std::int64_t>(rt.max_batch_records),
                    static_cast<std::int64_t>(rt.max_in_flight_bytes),
                    ctx->metrics.bytes_in_flight, ctx->metrics.max_bytes_in_flight,
                    ctx->metrics.parsed_bytes.get());
  if (auto it = ctx->end_offsets.find(tp); it != ctx->end_offsets.end()) {
    st.end_offset = it->second;
  } else if (!ctx->end_offsets.empty()) {
    // A bounded run stops where its ends were fixed at start; a partition
    // found later (a new topic, more partitions) is left for the next run.
    st.end_offset = start_offset;
    sluice::logger().info(
        "{}: appeared after the bounded run fixed its ends; left for the next run",
        tp.str());
  }

  // The chain behind this actor, linked so that any failure ends all of it.
  auto lanes = std::max(1, ctx->lanes_per_partition.load());
  std::vector<std::shared_ptr<std::string>> chain_errors;
  for (int i = 0; i < lanes; ++i) {
    chain_errors.push_back(std::make_shared<std::string>());
    st.lanes.push_back(
        spawn_stages(self, ctx, tp, i, generation, deliveries, chain_errors.back()));
  }
  if (lanes > 1)
    sluice::logger().info(
        "{}: {} lanes (source.minPartitions {} over the partitions assigned; "
        "at most 64 per partition)",
        tp.str(), lanes, *ctx->config.source.min_partitions);
  self->set_exit_handler([self, chain_errors](caf::exit_msg& m) {
    if (!m.reason) return;
    for (auto& e : chain_errors)
      if (!e->empty()) {
        self->quit(caf::make_error(caf::sec::runtime_error, *e));
        return;
      }
    self->quit(m.reason);
  });

  st.loss.fail_on_data_loss = ctx->config.source.fail_on_data_loss;
  st.loss.partition = tp.str();
  st.loss.log_start = [self, ctx] {
    auto& tp = self->state.tp;
    auto start = ctx->consumer.cached_watermarks(tp).first;
    if (start < 0)
      if (auto range = ctx->consumer.log_range(tp, std::chrono::seconds(2)))
        start = range->first;
    return start;
  };
  st.queue = ctx->consumer.queue(tp);
  st.queue->on_ready([weak = caf::actor_cast<caf::weak_actor_ptr>(self)] {
    if (auto strong = weak.lock())
      caf::anon_send(caf::actor_cast<caf::actor>(strong), wake_atom::value);
  });
  ctx->consumer.resume(tp); // a finished predecessor may have paused it

  // Where the partition can be read to now, when that is below what the open
  // epoch admitted (an open transaction: the epoch admits up to the high
  // watermark, read_committed stops at the last stable offset); else -1.
  // Without a rate limit: the end of log once read to it, so that the
  // checkpoint's stall report tells a partition waiting at an open
  // transaction from a stuck one.
  auto stable_end = [self, ctx]() -> std::int64_t {
    auto& st = self->state;
    auto end_of_log = st.window.end_of_log();
    if (end_of_log < 0) return -1;
    if (st.watermark.issued_end() < end_of_log || st.window.holds()) return -1;
    if (!ctx->admission.enabled()) return end_of_log;
    return ctx->admission.limit(st.tp) > end_of_log ? end_of_log : -1;
  };

  auto report = [self, ctx, stable_end] {
    auto& st = self->state;
    auto latest =
        std::max(ctx->consumer.cached_watermarks(st.tp).second, st.shared->latest.load());
    st.stable_end_reported = stable_end();
    self->send(st.checkpoint,
               partition_report{st.tp, st.watermark.watermark(),
                                st.shared->consumed.load(), st.credit->in_flight(),
                                latest, st.stable_end_reported});
  };

  auto check_end = [self, ctx] {
    auto& st = self->state;
    if (st.end_offset && !st.finished && st.watermark.issued_end() >= *st.end_offset) {
      st.finished = true;
      ctx->consumer.pause(st.tp); // nothing more to read in this run
    }
  };

  auto schedule_tick = [self](std::chrono::milliseconds after) {
    auto& st = self->state;
    if (st.tick_scheduled) return;
    st.tick_scheduled = true;
    self->delayed_send(self, after, tick_atom::value);
  };

  // Splits a batch over the lanes by a hash of the key, so that each key's
  // records stay in order in one lane; records without a key are spread by
  // offset. Each part keeps the batch's offset range, and the batch is
  // acknowledged once every part is.
  auto send_to_lanes = [self](batch_ptr batch) {
    auto& st = self->state;
    auto n = st.lanes.size();
    std::vector<batch_ptr> parts(n);
    std::hash<std::string_view> hash;
    for (auto& r : batch->records) {
      auto lane = r.key ? hash(*r.key) % n : static_cast<std::size_t>(r.offset) % n;
      auto& part = parts[lane];
      if (!part) {
        part = std::make_shared<record_batch>();
        part->topic = batch->topic;
        part->partition = batch->partition;
        part->begin_offset = batch->begin_offset;
        part->end_offset = batch->end_offset;
      }
      ++bookkeeping_of(*part).issued_records;
      part->records.push_back(std::move(r));
    }
    auto& pending = st.splits[batch->begin_offset];
    pending = {};
    // The byte credit comes back with the merged acknowledgement, once every
    // part is done: the whole batch's bytes can ride on any one part.
    for (auto& part : parts)
      if (part) {
        bookkeeping_of(*part).bytes = bookkeeping_of(*batch).bytes;
        break;
      }
    for (std::size_t i = 0; i < n; ++i)
      if (parts[i]) {
        ++pending.left;
        self->send(st.lanes[i], std::move(parts[i]));
      }
  };

  auto fetch = [self, ctx, check_end, schedule_tick, report, send_to_lanes, stable_end] {
    auto& st = self->state;
    check_end();
    if (st.draining || st.finished || st.holding) return;
    if (ctx->quiesced.load()) {
      schedule_tick(idle_poll);
      return;
    }
    auto& credit = *st.credit;
    auto room = credit.room();
    if (room <= 0 || credit.bytes_spent()) {
      // Out of credit: stop reading, but keep librdkafka's prefetch (pausing
      // the partition would discard it). Acks wake us; the byte credit is
      // shared by every partition, so it is polled for.
      if (credit.stall()) ++ctx->metrics.pauses;
      if (room > 0) schedule_tick(byte_credit_poll);
      return;
    }
    credit.unstall();
    // A rate limit: read only what the open epoch admitted.
    auto limit = std::numeric_limits<std::int64_t>::max();
    if (ctx->admission.enabled()) {
      limit = ctx->admission.limit(st.tp);
      if (limit <= st.watermark.issued_end()) {
        schedule_tick(idle_poll); // until the next epoch admits more
        return;
      }
    }
    auto want =
        std::min({room, credit.batch_records(), limit - st.watermark.issued_end()});
    auto& recs = st.scratch;
    recs.clear();
    kafka::poll_result polled;
    if (st.window.holds()) {
      polled.bytes = st.window.take_held(recs, static_cast<std::size_t>(want));
      polled.events = recs.size();
    } else {
      polled = st.queue->poll(recs, static_cast<std::size_t>(want));
      st.window.note_poll(polled.end_of_log, recs);
    }
    if (polled.error) sluice::logger().warn("{}: {}", st.tp.str(), *polled.error);
    if (polled.denied) {
      // ACLs do not change by retrying: the run ends, as on data loss, rather
      // than the chain being restarted up to runtime.restartBudget times.
      ctx->on_fatal(st.tp.str() + ": " + *polled.denied);
      st.finished = true;
      ctx->consumer.pause(st.tp);
      return;
    }
    st.loss.lost_until = st.shared->lost_until.load();
    auto cut =
        st.window.trim(recs, {st.watermark.issued_end(), limit, st.end_offset}, st.loss);
    polled.bytes -= cut.bytes_held_back;
    if (cut.seek_to) ctx->consumer.seek(st.tp, *cut.seek_to);
    for (auto& lost : cut.lost) {
      sluice::logger().warn("{}; skipping them (source.failOnDataLoss is false)",
                            lost.what);
      ctx->metrics.add_lost(st.tp, lost.to - lost.from);
      st.shared->lost_until = lost.to;
    }
    if (!recs.empty()) {
      auto batch = std::make_shared<record_batch>();
      batch->topic = st.tp.topic;
      batch->partition = st.tp.partition;
      batch->begin_offset = st.watermark.issued_end();
      batch->end_offset = recs.back().offset + 1;
      auto& books = bookkeeping_of(*batch);
      books.bytes = static_cast<std::int64_t>(polled.bytes);
      // Input counts each offset once: not again when a restart replays it.
      auto counted_until = st.shared->counted_until.load();
      auto fresh = std::count_if(recs.begin(), recs.end(), [&](const record& r) {
        return r.offset >= counted_until;
      });
      st.shared->counted_until = std::max(counted_until, batch->end_offset);
      st.shared->consumed += fresh;
      ctx->metrics.input_rows += fresh;
      batch->records = std::move(recs);
      books.issued_records = static_cast<std::int64_t>(batch->records.size());
      recs = {};
      st.watermark.issue(batch->begin_offset, batch->end_offset);
      auto n = static_cast<std::int64_t>(batch->records.size());
      credit.issue(n, books.bytes);
      ctx->metrics.observe_in_flight(credit.in_flight());
      if (st.lanes.size() == 1)
        self->send(st.lanes.front(), std::move(batch));
      else
        send_to_lanes(std::move(batch));
    }
    if (cut.loss_failure) {
      ctx->on_fatal(*cut.loss_failure);
      st.finished = true;
      ctx->consumer.pause(st.tp);
      return;
    }
    if (cut.handled) {
      // Offsets that hold no record: handled without a batch.
      auto [begin, end] = *cut.handled;
      st.watermark.issue(begin, end);
      st.watermark.ack(begin);
      st.shared->watermark = st.watermark.watermark();
      report();
    }
    // The checkpoint learns that this partition can go no further in the
    // open epoch for now (and when that is over).
    if (stable_end() != st.stable_end_reported) report();
    check_end();
    if (polled.events == static_cast<std::size_t>(want) && !st.finished) {
      if (!st.poll_scheduled) {
        st.poll_scheduled = true;
        self->send(self, poll_atom::value); // more is ready: go on after other messages
      }
    } else {
      schedule_tick(idle_poll);
    }
  };

  // The watermark, once nothing is in flight (a drain, a hold); until then
  // the request waits in `waiting` (acks answer it).
  auto when_idle = [self](std::vector<caf::typed_response_promise<std::int64_t>>& waiting)
      -> caf::result<std::int64_t> {
    auto& st = self->state;
    if (st.credit->in_flight() == 0) return st.watermark.watermark();
    waiting.push_back(self->make_response_promise<std::int64_t>());
    return waiting.back();
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
      [=](stall_atom) {
        // The checkpoint saw no progress for a while: where this chain waits.
        auto& st = self->state;
        sluice::logger().warn(
            "{}: read to {}, handled to {}, {} in flight of a credit of {}, {} bytes "
            "in flight and {} bytes of parsed rows of {} (all partitions), {} held "
            "back, {} event(s) queued, end of log {}, end {}{}{}{}{}{}{}",
            st.tp.str(), st.watermark.issued_end(), st.watermark.watermark(),
            st.credit->in_flight(), st.credit->records(),
            ctx->metrics.bytes_in_flight.load(), ctx->metrics.parsed_bytes->load(),
            st.credit->bytes(), st.window.held_count(), st.queue->length(),
            st.window.end_of_log(),
            st.end_offset ? std::to_string(*st.end_offset) : std::string("none"),
            st.credit->stalled() ? ", out of credit" : "",
            st.finished ? ", finished" : "", st.draining ? ", draining" : "",
            st.poll_scheduled ? ", poll due" : "", st.tick_scheduled ? ", tick due" : "",
            ctx->quiesced.load() ? ", quiesced (a rebalance)" : "");
        fetch();
      },
      [=](tick_atom) {
        self->state.tick_scheduled = false;
        fetch();
      },
      [=](ack_atom, batch_ack& ack) {
        auto& st = self->state;
        if (ack.generation != st.generation) return;
        if (auto it = st.splits.find(ack.begin); it != st.splits.end()) {
          // One lane's part of a split batch: done when every part is.
          auto& m = it->second.merged;
          m.begin = ack.begin;
          m.generation = ack.generation;
          m.rows += ack.rows;
          m.bytes += ack.bytes;
          m.counts += ack.counts;
          for (auto& [topic, n] : ack.rows_by_topic)
            m.rows_by_topic[topic] += n;
          if (--it->second.left > 0) return;
          ack = std::move(m);
          st.splits.erase(it);
        }
        if (!st.watermark.ack(ack.begin)) return;
        st.credit->settle(ack.rows, ack.bytes);
        st.acked.emplace(ack.begin, std::move(ack));
        auto watermark = st.watermark.watermark();
        while (!st.acked.empty() && st.acked.begin()->first < watermark) {
          auto& done = st.acked.begin()->second;
          ctx->metrics.add(done.counts);
          for (auto& [topic, n] : done.rows_by_topic)
            if (n != 0) ctx->metrics.add_rows_to(topic, n);
          st.acked.erase(st.acked.begin());
        }
        st.shared->watermark = watermark;
        report();
        if (st.credit->resume_due()) fetch();
        if (st.credit->in_flight() == 0)
          for (auto* waiting : {&st.drained, &st.held}) {
            for (auto& rp : *waiting)
              rp.deliver(st.watermark.watermark());
            waiting->clear();
          }
      },
      [=](hold_atom) {
        self->state.holding = true;
        return when_idle(self->state.held);
      },
      [=](release_atom) {
        self->state.holding = false;
        fetch();
      },
      [=](drain_atom) {
        self->state.draining = true;
        return when_idle(self->state.drained);
      },
  };
}

} // namespace

caf::actor spawn_partition_consumer(caf::event_based_actor* owner, run_context* ctx,
                                    kafka::topic_partition tp, std::int64_t start_offset,
                                    std::uint32_t generation,
                                    std::shared_ptr<partition_shared> shared,
                                    std::shared_ptr<chain_deliveries> deliveries,
                                    caf::actor checkpoint) {
  return tracked(ctx, owner->spawn(partition_consumer, ctx, std::move(tp), start_offset,
                                   generation, std::move(shared), std::move(deliveries),
                                   std::move(checkpoint)));
}

} // namespace sluice::actors
