#include "actors/messages.hpp"
#include "actors/stages.hpp"
#include "core/batch_bookkeeping.hpp"
#include "core/log.hpp"
#include "format/format.hpp"

#include <sluice/errors.hpp>

#include <caf/all.hpp>

#include <deque>

namespace sluice::actors {

namespace {

/// A batch waiting to be written. `base` is set for the records of a batch
/// that the broker refused, re-sent to the DLQ: their delivery acknowledges
/// the original batch, with its counts corrected.
struct pending_batch {
  batch_ptr batch;
  std::optional<batch_ack> base;
};

struct sink_state {
  std::deque<pending_batch> pending; ///< in arrival order; the front is being sent
  std::size_t next_record = 0;       ///< position in the front batch
  kafka::delivery_group* group = nullptr;
  std::shared_ptr<batch_ack> outcome;
  bool retry_scheduled = false;
  std::string output_buffer;
  std::unique_ptr<encoder> enc; ///< writes records from their fields (with a schema)
  std::vector<header> dlq_headers;
  /// The producer instance the front batch goes to, held while sending: a
  /// replacement (after a fatal error) is picked up at the next batch.
  kafka::producer::lease client;
  /// Which instance this sink's batches went to, and how many of its
  /// delivery groups are not reported yet.
  std::uint64_t producer_generation = 0;
  std::shared_ptr<std::atomic<std::int64_t>> open =
      std::make_shared<std::atomic<std::int64_t>>(0);
  /// Since when the next batch waits for those of a replaced instance.
  std::optional<std::chrono::steady_clock::time_point> waiting_since;
  /// Topic handles of that instance, so that no message names its topic (a
  /// lock and a scan).
  std::map<std::string, kafka::producer::topic_handle, std::less<>> topics;
  std::string source_topic;
  std::int32_t source_partition = 0;

  ~sink_state() {
    if (group) group->abandon();
  }
};

/// What a message of a batch is: its slot index holds the kind in the low
/// bits, and the source offset (or the change's position) above them.
enum slot_kind : std::size_t { output_slot = 0, dlq_slot = 1, change_slot = 2 };

std::size_t slot_index(std::int64_t offset, slot_kind kind) {
  return (static_cast<std::size_t>(offset) << 2) | kind;
}

kafka::producer::topic_handle topic_handle(run_context* ctx, sink_state& st,
                                           const std::string& name) {
  auto it = st.topics.find(name);
  if (it == st.topics.end())
    it = st.topics.emplace(name, ctx->producer.topic(st.client, name)).first;
  return it->second;
}

kafka::producer::send_result send_to_dlq(run_context* ctx, sink_state& st,
                                         const record_batch& batch, const record& rec) {
  auto& hs = st.dlq_headers;
  hs = rec.headers; // original headers (when includeHeaders), then ours
  hs.push_back({"sluice.error.type", rec.error->type});
  hs.push_back({"sluice.error.message", rec.error->message});
  hs.push_back({"sluice.source.topic", batch.topic});
  hs.push_back({"sluice.source.partition", std::to_string(batch.partition)});
  hs.push_back({"sluice.source.offset", std::to_string(rec.offset)});
  auto topic = topic_handle(ctx, st, ctx->config.dlq->topic);
  std::string_view value = rec.value ? std::string_view(*rec.value) : std::string_view();
  auto res = ctx->producer.send(st.group, slot_index(rec.offset, dlq_slot), topic,
                                rec.key, value, hs, rec.timestamp_ms);
  if (res == kafka::producer::send_result::too_large) {
    // The value alone is too large for the sink: keep the record's place in
    // the DLQ; its bytes stay readable at the source offset.
    hs.push_back({"sluice.error.value-omitted", std::to_string(value.size()) + " bytes"});
    res = ctx->producer.send(st.group, slot_index(rec.offset, dlq_slot), topic, rec.key,
                             {}, hs, rec.timestamp_ms);
    if (res == kafka::producer::send_result::too_large) {
      // Retrying cannot help: end the run rather than restart the chain.
      ctx->on_fatal("the DLQ refused record " + batch.topic + "/" +
                    std::to_string(batch.partition) + "@" + std::to_string(rec.offset) +
                    " even without its value");
      return kafka::producer::send_result::refused;
    }
  }
  return res;
}

/// Writes outputs and DLQ records; acknowledges each batch to `consumer`
/// once every record of it is delivered. A record the broker refuses for
/// good (too large, invalid) goes to the DLQ with the broker's reason; a
/// write the ACLs deny fails the run; any other delivery failure fails the
/// chain (it is restarted).
caf::behavior sink_stage(caf::stateful_actor<sink_state>* self, run_context* ctx,
                         caf::actor consumer, std::uint32_t generation,
                         std::shared_ptr<chain_deliveries> deliveries,
                         std::shared_ptr<std::string> chain_error) {
  fail_on_exception(self, std::move(chain_error));
  self->state.enc = make_encoder(ctx->config.parse);
  // Sends what is pending, in order, until done or the producer queue is full.
  auto pump = [self, ctx, consumer, generation, deliveries] {
    auto& st = self->state;
    while (!st.pending.empty()) {
      auto& entry = st.pending.front();
      auto& batch = *entry.batch;
      auto& books = bookkeeping_of(batch);
      // A retired chain writes nothing more: its successor may be replaying.
      if (deliveries->retired.load()) {
        if (st.group) st.group->abandon();
        st.group = nullptr;
        st.pending.clear();
        self->quit();
        return;
      }
      if (!st.group) {
        auto current = ctx->producer.current();
        if (auto g = kafka::producer::generation_of(current);
            g != st.producer_generation) {
          // The producer was replaced. Batches still out on the old one may
          // yet fail, and their replay must not come after a newer batch: the
          // next batch waits for their outcome (a failure restarts the chain).
          if (auto waiting = st.open->load(); waiting > 0) {
            // librdkafka reports every message within message.timeout.ms.
            auto now = std::chrono::steady_clock::now();
            if (!st.waiting_since) {
              st.waiting_since = now;
              sluice::logger().info("{}/{}: the sink's producer was replaced; the next "
                                    "batch waits for {} batch(es) out on the old one",
                                    batch.topic, batch.partition, waiting);
            } else if (now - *st.waiting_since >
                       ctx->producer.delivery_timeout() + std::chrono::seconds(5)) {
              throw std::runtime_error("the replaced producer did not report its batches "
                                       "within message.timeout.ms");
            }
            st.client.reset(); // not the old instance's keeper meanwhile
            if (!st.retry_scheduled) {
              st.retry_scheduled = true;
              self->delayed_send(self, std::chrono::milliseconds(10), retry_atom::value);
            }
            return;
          }
          st.waiting_since.reset();
          st.topics.clear();
          st.producer_generation = g;
        }
        st.client = std::move(current);
        st.outcome = std::make_shared<batch_ack>();
        if (entry.base) {
          *st.outcome = *entry.base;
        } else {
          st.outcome->begin = batch.begin_offset;
          st.outcome->generation = generation;
          st.outcome->rows = books.issued_records; // a user stage may add or drop
          st.outcome->bytes = books.bytes;
        }
        auto me = caf::actor_cast<caf::weak_actor_ptr>(self);
        auto outcome = st.outcome;
        auto changes_delivered = books.changes_delivered;
        // The count goes up before the flag is read, and the supervisor sets
        // the flag before it reads the count: one of them sees the other.
        ++deliveries->open;
        if (deliveries->retired.load()) {
          --deliveries->open;
          st.pending.clear();
          self->quit();
          return;
        }
        auto open = st.open;
        ++*open;
        bool transactional = ctx->committer.discards_on_failure() && ctx->config.dlq;
        // Named only where refusals are remembered: not a string copy per batch.
        auto source = transactional ? kafka::topic_partition{batch.topic, batch.partition}
                                    : kafka::topic_partition{};
        st.group = new kafka::delivery_group([=](const kafka::delivery_group& g) {
          // Runs on the producer's poll thread.
          auto& failures = g.failures();
          if (transactional)
            // Exactly-once: the refusal aborts the transaction, whether or not
            // this chain is still there to see it; read again, the records go
            // to the DLQ.
            for (auto& f : failures)
              if (f.permanent && (f.index & 3u) == output_slot)
                ctx->refused.add(source, static_cast<std::int64_t>(f.index >> 2),
                                 "topic `" + f.topic +
                                     "` refused the record: " + f.reason);
          bool handed_over = false;
          auto denied = std::find_if(failures.begin(), failures.end(),
                                     [](auto& f) { return f.denied; });
          if (g.abandoned()) {
            // The chain died: nothing to acknowledge.
          } else if (failures.empty()) {
            if (changes_delivered) // how far the changelog holds this partition
              run_metrics::raise(*changes_delivered, g.highest_tracked_offset());
            caf::anon_send(consumer, ack_atom::value, *outcome);
          } else if (denied != failures.end()) {
            // ACLs do not change by retrying: the run ends now (the batch is
            // never acknowledged), not after the chain's restarts.
            ctx->on_fatal("delivery to Kafka failed: " + denied->reason);
          } else if (auto strong = me.lock()) {
            bool permanent = std::all_of(failures.begin(), failures.end(),
                                         [](auto& f) { return f.permanent; });
            auto sink = caf::actor_cast<caf::actor>(strong);
            if (permanent)
              caf::anon_send(sink, refused_atom::value,
                             refused_records{*outcome, failures});
            else
              caf::anon_send(sink, failed_atom::value, *g.error());
            // Still open for the sink until it takes that message: a batch it
            // sends meanwhile must not count this one as settled.
            handed_over = true;
          }
          if (!handed_over) --*open;
          --deliveries->open;
        });
      }
      for (; st.next_record < batch.records.size(); ++st.next_record) {
        auto& rec = batch.records[st.next_record];
        kafka::producer::send_result res;
        if (rec.dropped && !rec.error) {
          ++st.outcome->counts.dropped; // on purpose: handled, counted, not written
          if (rec.duplicate) ++st.outcome->counts.duplicates;
          if (rec.late) ++st.outcome->counts.late; // dedup.lateRecords: drop
          continue;
        }
        if (rec.delivered && !rec.error && !ctx->config.route.delivered_by.empty()) {
          ++st.outcome->counts.outputs; // written by the delivering stage
          ++st.outcome->rows_by_topic[ctx->config.route.delivered_by];
          continue;
        }
        if (!rec.error)
          if (auto reason = ctx->refused.find(batch.topic, batch.partition, rec.offset))
            rec.error = record_error{"sink-refused", *reason};
        if (!rec.error) {
          // Without a schema the value is written byte for byte; with one, as
          // the schema's fields. A tombstone stays a null value.
          std::string_view value;
          if (rec.value && ctx->config.parse.fields.empty()) {
            value = *rec.value;
          } else if (rec.value) {
            st.output_buffer.clear();
            st.enc->encode(rec.fields, st.output_buffer);
            value = st.output_buffer;
          }
          res = ctx->producer.send(st.group, slot_index(rec.offset, output_slot),
                                   topic_handle(ctx, st, rec.target_topic), rec.key,
                                   value, rec.headers, rec.timestamp_ms);
          if (res == kafka::producer::send_result::queued) {
            ++st.outcome->counts.outputs;
            ++st.outcome->rows_by_topic[rec.target_topic];
            if (rec.late) ++st.outcome->counts.late;
          } else if (res == kafka::producer::send_result::too_large) {
            rec.error =
                record_error{"sink-refused",
                             "the record (" + std::to_string(value.size()) +
                                 " bytes) is larger than the sink's message.max.bytes"};
          }
        }
        if (rec.error) {
          if (!ctx->config.dlq) {
            ctx->on_fatal("record " + batch.topic + "/" +
                          std::to_string(batch.partition) + "@" +
                          std::to_string(rec.offset) + " is invalid (" + rec.error->type +
                          ": " + rec.error->message + ") and no `dlq` is configured");
            self->quit();
            return;
          }
          res = send_to_dlq(ctx, st, batch, rec);
          if (res == kafka::producer::send_result::refused) {
            self->quit();
            return;
          }
          if (res == kafka::producer::send_result::queued) {
            ++st.outcome->counts.dlq;
            ++st.outcome->rows_by_topic[ctx->config.dlq->topic];
            if (rec.late) ++st.outcome->counts.late;
          }
        }
        if (res == kafka::producer::send_result::queue_full) {
          if (!st.retry_scheduled) {
            st.retry_scheduled = true;
            self->delayed_send(self, std::chrono::milliseconds(5), retry_atom::value);
          }
          return;
        }
      }
      // The batch's state changes go in the same group: the batch is
      // acknowledged only once they are delivered too.
      for (; st.next_record < batch.records.size() + books.changes.size();
           ++st.next_record) {
        auto i = st.next_record - batch.records.size();
        auto& c = books.changes[i];
        auto res = ctx->producer.send_to_partition(
            st.group, slot_index(static_cast<std::int64_t>(i), change_slot),
            topic_handle(ctx, st, c.topic), c.partition, c.key, c.value);
        if (res == kafka::producer::send_result::queue_full) {
          if (!st.retry_scheduled) {
            st.retry_scheduled = true;
            self->delayed_send(self, std::chrono::milliseconds(5), retry_atom::value);
          }
          return;
        }
        if (res != kafka::producer::send_result::queued) {
          ctx->on_fatal("the dedup changelog `" + c.topic + "` refused a change of " +
                        batch.topic + "/" + std::to_string(batch.partition) +
                        " (larger than the sink's message.max.bytes)");
          self->quit();
          return;
        }
      }
      st.group->seal();
      st.group = nullptr;
      st.next_record = 0;
      st.pending.pop_front();
    }
    // Idle: an instance replaced meanwhile must not be kept alive by this sink.
    st.client.reset();
  };
  return {
      [=](batch_ptr& batch) {
        self->state.source_topic = batch->topic;
        self->state.source_partition = batch->partition;
        self->state.pending.push_back({std::move(batch), std::nullopt});
        if (!self->state.retry_scheduled) pump();
      },
      [=](retry_atom) {
        self->state.retry_scheduled = false;
        pump();
      },
      [=](refused_atom, refused_records& refused) {
        --*self->state.open; // the refused group is settled now
        if (ctx->committer.discards_on_failure() && ctx->config.dlq) {
          // The refusal aborts the transaction: the records go to the DLQ
          // when the replay reads them (the delivery callback noted them).
          auto outputs =
              std::count_if(refused.failures.begin(), refused.failures.end(),
                            [](auto& f) { return (f.index & 3u) == output_slot; });
          if (static_cast<std::size_t>(outputs) == refused.failures.size())
            throw fatal_error("the sink refused " + std::to_string(outputs) +
                              " record(s) for good (" + refused.failures.front().reason +
                              "); they go to the DLQ when read again");
        }
        // The broker refused these records for good: re-send them to the DLQ
        // with its reason; their delivery acknowledges the original batch.
        auto batch = std::make_shared<record_batch>();
        auto base = refused.ack;
        for (auto& f : refused.failures) {
          auto offset = static_cast<std::int64_t>(f.index >> 2);
          if ((f.index & 3u) == change_slot) {
            ctx->on_fatal("the dedup changelog `" + f.topic + "` refused a change of " +
                          self->state.source_topic + "/" +
                          std::to_string(self->state.source_partition) + " (" + f.reason +
                          ")");
            self->quit();
            return;
          }
          if ((f.index & 3u) == dlq_slot || !ctx->config.dlq) {
            // Retrying cannot help: end the run rather than restart the chain.
            ctx->on_fatal("the broker refused record " + self->state.source_topic + "/" +
                          std::to_string(self->state.source_partition) + "@" +
                          std::to_string(offset) + " for `" + f.topic + "` (" + f.reason +
                          ")" + (ctx->config.dlq ? "" : " and no `dlq` is configured"));
            self->quit();
            return;
          }
          auto& rec = batch->records.emplace_back();
          rec.offset = offset;
          rec.key = std::move(f.key);
          rec.value = std::move(f.value);
          rec.headers = std::move(f.headers);
          rec.timestamp_ms = f.timestamp_ms;
          rec.error = record_error{
              "sink-refused", "topic `" + f.topic + "` refused the record: " + f.reason};
          --base.counts.outputs;
          --base.rows_by_topic[f.topic];
        }
        sluice::logger().warn(
            "the sink refused {} record(s) for good; they go to the DLQ",
            batch->records.size());
        batch->topic = self->state.source_topic;
        batch->partition = self->state.source_partition;
        self->state.pending.push_back({std::move(batch), base});
        if (!self->state.retry_scheduled) pump();
      },
      [=](failed_atom, const std::string& why) {
        throw fatal_error("delivery to Kafka failed: " + why);
      },
  };
}

} // namespace

caf::actor spawn_sink(caf::event_based_actor* owner, run_context* ctx,
                      caf::actor consumer, std::uint32_t generation,
                      std::shared_ptr<chain_deliveries> deliveries,
                      std::shared_ptr<std::string> chain_error) {
  return owner->spawn<caf::linked>(sink_stage, ctx, std::move(consumer), generation,
                                   std::move(deliveries), std::move(chain_error));
}

} // namespace sluice::actors
