#include "actors/stages.hpp"

#include "actors/messages.hpp"
#include "runtime/errors.hpp"
#include "runtime/json_writer.hpp"
#include "runtime/record_parser.hpp"

#include <caf/all.hpp>

#include <spdlog/spdlog.h>

#include <deque>

namespace sluice::actors {

void fail_on_exception(caf::scheduled_actor* self,
                       std::shared_ptr<std::string> chain_error) {
  self->set_exception_handler(
      [chain_error](caf::scheduled_actor*, std::exception_ptr& ptr) -> caf::error {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ptr);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        if (chain_error && chain_error->empty()) *chain_error = what;
        return caf::make_error(caf::sec::runtime_error, what);
      });
}

namespace {

/// Parses every record of a batch (JSON + schema); invalid ones get an error.

caf::behavior parser_stage(caf::event_based_actor* self, parse_options opts,
                           caf::actor next, std::shared_ptr<std::string> chain_error) {
  fail_on_exception(self, std::move(chain_error));
  auto parser = std::make_shared<record_parser>(std::move(opts));
  return {[=](batch_ptr& batch) {
    for (auto& rec : batch->records)
      if (!rec.error) parser->parse(rec);
    self->send(next, std::move(batch));
  }};
}

/// Chooses each valid record's output topic.
caf::behavior router_stage(caf::event_based_actor* self, run_context* ctx,
                           caf::actor next, std::shared_ptr<std::string> chain_error) {
  fail_on_exception(self, std::move(chain_error));
  return {[=](batch_ptr& batch) {
    for (auto& rec : batch->records)
      if (!rec.error) ctx->router.route(rec);
    self->send(next, std::move(batch));
  }};
}

/// Runs the user's batch function.
caf::behavior function_stage(caf::event_based_actor* self, batch_function fn,
                             caf::actor next, std::shared_ptr<std::string> chain_error) {
  fail_on_exception(self, std::move(chain_error));
  return {[=](batch_ptr& batch) {
    fn(*batch);
    self->send(next, std::move(batch));
  }};
}

// -- sink ---------------------------------------------------------------------

/// What one batch wrote, counted while sending, published on delivery.
struct batch_outcome {
  std::map<std::string, std::int64_t> rows_by_topic;
  std::int64_t outputs = 0;
  std::int64_t dlq = 0;
};

struct sink_state {
  std::deque<batch_ptr> pending; ///< batches in arrival order; the front is being sent
  std::size_t next_record = 0;   ///< position in the front batch
  kafka::delivery_group* group = nullptr;
  std::shared_ptr<batch_outcome> outcome;
  bool retry_scheduled = false;
  std::string output_buffer;
  std::vector<header> dlq_headers;

  ~sink_state() {
    if (group) group->abandon();
  }
};

kafka::producer::send_result send_to_dlq(run_context* ctx, sink_state& st,
                                         const record_batch& batch, const record& rec) {
  auto& hs = st.dlq_headers;
  hs = rec.headers; // original headers (when includeHeaders), then ours
  hs.push_back({"sluice.error.type", rec.error->type});
  hs.push_back({"sluice.error.message", rec.error->message});
  hs.push_back({"sluice.source.topic", batch.topic});
  hs.push_back({"sluice.source.partition", std::to_string(batch.partition)});
  hs.push_back({"sluice.source.offset", std::to_string(rec.offset)});
  std::string_view value = rec.value ? std::string_view(*rec.value) : std::string_view();
  return ctx->producer.send(st.group, ctx->config.dlq->topic, rec.key, value, hs,
                            rec.timestamp_ms);
}

/// Writes outputs and DLQ records; acknowledges each batch to `consumer`
/// once every record of it is delivered.
caf::behavior sink_stage(caf::stateful_actor<sink_state>* self, run_context* ctx,
                         caf::actor consumer, std::uint32_t generation,
                         std::shared_ptr<std::string> chain_error) {
  fail_on_exception(self, std::move(chain_error));
  // Sends what is pending, in order, until done or the producer queue is full.
  auto pump = [self, ctx, consumer, generation] {
    auto& st = self->state;
    while (!st.pending.empty()) {
      auto& batch = *st.pending.front();
      if (!st.group) {
        st.outcome = std::make_shared<batch_outcome>();
        auto me = caf::actor_cast<caf::weak_actor_ptr>(self);
        auto begin = batch.begin_offset;
        auto rows = static_cast<std::int64_t>(batch.records.size());
        auto outcome = st.outcome;
        st.group = new kafka::delivery_group([=](const kafka::delivery_group& g) {
          // Runs on the producer's poll thread.
          if (g.error()) {
            if (auto strong = me.lock())
              caf::anon_send(caf::actor_cast<caf::actor>(strong), failed_atom::value,
                             *g.error());
            return;
          }
          ctx->metrics.output_rows += outcome->outputs;
          ctx->metrics.dlq_rows += outcome->dlq;
          for (auto& [topic, n] : outcome->rows_by_topic)
            ctx->metrics.add_rows_to(topic, n);
          caf::anon_send(consumer, ack_atom::value, begin, generation, rows);
        });
      }
      for (; st.next_record < batch.records.size(); ++st.next_record) {
        auto& rec = batch.records[st.next_record];
        kafka::producer::send_result res;
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
          if (res == kafka::producer::send_result::queued) {
            ++st.outcome->dlq;
            ++st.outcome->rows_by_topic[ctx->config.dlq->topic];
          }
        } else {
          st.output_buffer.clear();
          write_json(rec.parsed, st.output_buffer);
          res = ctx->producer.send(st.group, rec.target_topic, rec.key, st.output_buffer,
                                   rec.headers, rec.timestamp_ms);
          if (res == kafka::producer::send_result::queued) {
            ++st.outcome->outputs;
            ++st.outcome->rows_by_topic[rec.target_topic];
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
      st.group->seal();
      st.group = nullptr;
      st.next_record = 0;
      st.pending.pop_front();
    }
  };
  return {
      [=](batch_ptr& batch) {
        self->state.pending.push_back(std::move(batch));
        if (!self->state.retry_scheduled) pump();
      },
      [=](retry_atom) {
        self->state.retry_scheduled = false;
        pump();
      },
      [=](failed_atom, const std::string& why) {
        throw fatal_error("delivery to Kafka failed: " + why);
      },
  };
}

} // namespace

caf::actor spawn_stages(caf::event_based_actor* owner, run_context* ctx,
                        std::uint32_t generation,
                        std::shared_ptr<std::string> chain_error) {
  auto me = caf::actor_cast<caf::actor>(owner);
  caf::actor next =
      owner->spawn<caf::linked>(sink_stage, ctx, me, generation, chain_error);
  if (ctx->user_stage)
    next = owner->spawn<caf::linked>(function_stage, ctx->user_stage, next, chain_error);
  next = owner->spawn<caf::linked>(router_stage, ctx, next, chain_error);
  return owner->spawn<caf::linked>(parser_stage, ctx->config.parse, next, chain_error);
}

} // namespace sluice::actors
