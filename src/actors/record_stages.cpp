#include "actors/messages.hpp"
#include "actors/stages.hpp"
#include "core/batch_bookkeeping.hpp"
#include "format/format.hpp"
#include "records/batch_arena.hpp"
#include "records/record_parser.hpp"
#include "records/steps.hpp"

#include <caf/all.hpp>

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

/// Parses every record of a batch (decoding + schema); invalid ones get an
/// error. The rows of a batch share one arena, counted by the byte credit.
caf::behavior parser_stage(caf::event_based_actor* self, run_context* ctx,
                           caf::actor next, std::shared_ptr<std::string> chain_error) {
  fail_on_exception(self, std::move(chain_error));
  auto parser = std::make_shared<record_parser>(ctx->config.parse);
  auto gauge = ctx->metrics.parsed_bytes;
  return {[=](batch_ptr& batch) {
    // The consumer counted the batch's raw bytes already (its credit).
    auto raw =
        batch->bookkeeping ? static_cast<std::size_t>(batch->bookkeeping->bytes) : 0;
    // Parsed rows take about three times their JSON text (blocks of at most
    // 64 KiB; a small batch fits the first).
    parser->use_storage(batch_arena::make(3 * raw, gauge));
    for (auto& rec : batch->records)
      if (!rec.error) parser->parse(rec);
    parser->use_storage({}); // the arena goes with the batch's last row
    self->send(next, std::move(batch));
  }};
}

/// Chooses each valid record's output topic.
caf::behavior router_stage(caf::event_based_actor* self, run_context* ctx,
                           caf::actor next, std::shared_ptr<std::string> chain_error) {
  fail_on_exception(self, std::move(chain_error));
  // Only a pipeline whose last stage writes the records has delivered ones.
  bool delivering = !ctx->config.route.delivered_by.empty();
  // With a schema, records are written from their fields: the steps must not
  // have broken it (a map setting `quantity` to "many").
  bool check_schema = !ctx->config.parse.fields.empty() && !ctx->steps.empty();
  return {[=](batch_ptr& batch) {
    for (auto& rec : batch->records) {
      if (rec.error || (rec.delivered && delivering)) continue;
      if (check_schema && !rec.dropped && rec.value)
        if (auto broken = check_after_steps(ctx->config.parse, rec.fields)) {
          rec.error = std::move(*broken);
          continue;
        }
      ctx->router.route(rec);
    }
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

/// Runs a pipeline's processing steps (map, filter, flat_map, batch stages).
/// `steps` are the chain's own copies of the user's functions: state they
/// keep is this partition's (or lane's), never shared with another chain's
/// thread, and starts afresh when the chain restarts.
caf::behavior steps_stage(caf::event_based_actor* self, run_context* ctx,
                          std::vector<processing_step> steps_copy, caf::actor next,
                          std::shared_ptr<std::string> chain_error) {
  fail_on_exception(self, std::move(chain_error));
  bool schemaless = ctx->config.parse.fields.empty();
  auto steps = std::make_shared<std::vector<processing_step>>(std::move(steps_copy));
  std::shared_ptr<encoder> enc = make_encoder(ctx->config.parse);
  return {[=](batch_ptr& batch) {
    apply_steps(*batch, *steps, schemaless, *enc);
    self->send(next, std::move(batch));
  }};
}

} // namespace

caf::actor tracked(run_context* ctx, caf::actor actor) {
  if (!actor) return actor;
  auto live = ctx->live;
  live->enter();
  // Called at once when the actor has exited already.
  actor->attach_functor([live](const caf::error&) { live->leave(); });
  return actor;
}

caf::actor spawn_stages(caf::event_based_actor* owner, run_context* ctx,
                        const kafka::topic_partition& tp, int lane,
                        std::uint32_t generation,
                        std::shared_ptr<chain_deliveries> deliveries,
                        std::shared_ptr<std::string> chain_error) {
  auto me = caf::actor_cast<caf::actor>(owner);
  caf::actor next =
      tracked(ctx, spawn_sink(owner, ctx, me, generation, deliveries, chain_error));
  if (ctx->user_stage)
    next = tracked(ctx, owner->spawn<caf::linked>(function_stage, ctx->user_stage, next,
                                                  chain_error));
  if (ctx->state_store)
    next = tracked(ctx, spawn_dedup_stage(owner, ctx, tp, next, deliveries, chain_error));
  next = tracked(ctx, owner->spawn<caf::linked>(router_stage, ctx, next, chain_error));
  // The steps, last first: each actor step an actor of its own, each run of
  // other steps between them one steps stage.
  auto& steps = ctx->steps;
  for (auto end = steps.size(); end > 0;) {
    if (auto* a = std::get_if<actor_step>(&steps[end - 1])) {
      next = tracked(ctx, spawn_actor_stage(owner, a->stage, tp, lane, ctx->config.parse,
                                            next, chain_error));
      --end;
      continue;
    }
    auto begin = end;
    while (begin > 0 && !std::holds_alternative<actor_step>(steps[begin - 1]))
      --begin;
    next = tracked(
        ctx, owner->spawn<caf::linked>(
                 steps_stage, ctx,
                 std::vector<processing_step>(steps.begin() + begin, steps.begin() + end),
                 next, chain_error));
    end = begin;
  }
  return tracked(ctx, owner->spawn<caf::linked>(parser_stage, ctx, next, chain_error));
}

} // namespace sluice::actors
