// User actors as stages: the actor that stands between a chain and one user
// actor (keeping order, bounding what is out, timing answers out), and the
// builder's and pipeline's actor-stage entry points, which need CAF.

#include "actors/messages.hpp"
#include "actors/stages.hpp"
#include "core/log.hpp"
#include "format/format.hpp"
#include "records/steps.hpp"

#include <sluice/actor_stage.hpp>
#include <sluice/errors.hpp>

#include <caf/all.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>

namespace sluice {

pipeline_builder& pipeline_builder::stage(actor_stage stage) {
  auto delivers = stage.delivers;
  actor_step step{std::make_shared<const actor_stage>(std::move(stage)), delivers};
  actors::check_actor_step(step, steps_.size() + 1);
  steps_.emplace_back(std::move(step));
  return *this;
}

pipeline_builder& pipeline_builder::actor_system(caf::actor_system& system) {
  system_ = &system;
  return *this;
}

} // namespace sluice

namespace sluice::actors {

void check_actor_step(const actor_step& step, std::size_t place) {
  auto where = "step " + std::to_string(place) + " (an actor stage)";
  if (!step.stage) throw config_error("steps", where + ": no actor_stage");
  auto& s = *step.stage;
  if (!s.make) throw config_error("steps", where + ": `make` is an empty function");
  if (s.max_in_flight == 0)
    throw config_error("steps", where + ": max_in_flight must be at least 1, got 0");
  if (s.timeout <= std::chrono::milliseconds::zero())
    throw config_error("steps", where + ": timeout must be positive, got " +
                                    std::to_string(s.timeout.count()) + " ms");
}

void check_delivering_steps(const std::vector<processing_step>& steps,
                            const std::string& delivered_by) {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    auto* a = std::get_if<actor_step>(&steps[i]);
    if (!a || !a->stage || a->stage->delivers.empty()) continue;
    if (i + 1 != steps.size())
      throw config_error("steps", "step " + std::to_string(i + 1) + " (the stage `" +
                                      a->stage->delivers +
                                      "`) writes the records: it must be the last step");
    if (a->stage->delivers != delivered_by)
      throw config_error("route",
                         "the stage `" + a->stage->delivers +
                             "` writes the records, but route.delivered_by is `" +
                             delivered_by + "`: set it to the stage's name");
    return;
  }
  if (!delivered_by.empty())
    throw config_error("route", "route.delivered_by names `" + delivered_by +
                                    "`, but no last actor stage delivers records");
}

namespace {

/// A batch sent to the user's actor, with what its answer is checked against.
struct out_batch {
  std::uint64_t id = 0;
  batch_guard guard;
  batch_ptr answer; // set when answered; passed on in order
};

struct actor_stage_state {
  std::shared_ptr<const actor_stage> stage;
  kafka::topic_partition tp;
  caf::actor next;
  std::shared_ptr<std::string> chain_error;
  stage_actor worker;
  std::deque<batch_ptr> waiting; // not sent yet: max_in_flight are out
  std::deque<out_batch> out;     // sent, in offset order
  std::uint64_t next_id = 0;
  bool schemaless = false;      // no parse.schema: values are written byte for byte
  std::unique_ptr<encoder> enc; // writes the values of changed fields
};

using runner = caf::stateful_actor<actor_stage_state>;

void fail(runner* self, const std::string& why) {
  auto& st = self->state;
  auto what = "the actor stage of " + st.tp.str() + " " + why;
  if (st.chain_error->empty()) *st.chain_error = what;
  self->quit(caf::make_error(caf::sec::runtime_error, what));
}

void pump(runner* self);

void take_answer(runner* self, std::uint64_t id, batch_ptr& answer) {
  auto& out = self->state.out;
  auto at = std::find_if(out.begin(), out.end(),
                         [id](const out_batch& b) { return b.id == id; });
  if (at == out.end()) return;
  if (!answer) return fail(self, "answered a batch with a null batch_ptr");
  at->answer = std::move(answer);
  pump(self);
}

/// Passes answered batches on in offset order, then sends what fits.
void pump(runner* self) {
  auto& st = self->state;
  while (!st.out.empty() && st.out.front().answer) {
    auto answer = std::move(st.out.front().answer);
    st.out.front().guard.settle(*answer, *st.enc);
    st.out.pop_front();
    if (!st.stage->delivers.empty())
      for (auto& r : answer->records)
        r.delivered = !r.error && !r.dropped;
    self->send(st.next, std::move(answer));
  }
  while (!st.waiting.empty() && st.out.size() < st.stage->max_in_flight) {
    auto batch = std::move(st.waiting.front());
    st.waiting.pop_front();
    auto id = st.next_id++;
    st.out.push_back(out_batch{id, batch_guard(*batch, st.schemaless), nullptr});
    auto timeout = st.stage->timeout;
    self->request(st.worker, timeout, std::move(batch))
        .then([self, id](batch_ptr& answer) { take_answer(self, id, answer); },
              [self, timeout](caf::error& err) {
                if (err == caf::sec::request_receiver_down)
                  fail(self, "stopped before it answered a batch");
                else if (err == caf::sec::request_timeout)
                  fail(self, "did not answer a batch within " +
                                 std::to_string(timeout.count()) + " ms");
                else
                  fail(self, "failed on a batch: " + self->system().render(err));
              });
  }
}

caf::behavior actor_stage_runner(runner* self, std::shared_ptr<const actor_stage> stage,
                                 kafka::topic_partition tp, int lane, parse_options parse,
                                 caf::actor next,
                                 std::shared_ptr<std::string> chain_error) {
  fail_on_exception(self, chain_error);
  auto& st = self->state;
  st.stage = std::move(stage);
  st.tp = std::move(tp);
  st.next = std::move(next);
  st.chain_error = std::move(chain_error);
  st.schemaless = parse.fields.empty();
  st.enc = make_encoder(parse);
  try {
    st.worker =
        st.stage->make(self->system(), stage_origin{st.tp.topic, st.tp.partition, lane});
  } catch (const std::exception& e) {
    fail(self, std::string("was not made: `make` threw: ") + e.what());
    return {};
  }
  if (!st.worker) {
    fail(self, "was not made: `make` returned an invalid actor");
    return {};
  }
  // The worker is the chain's: it ends with the chain, however the chain ends.
  self->attach_functor([worker = st.worker](const caf::error&) {
    caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
  });
  // A worker that ends on its own (an exception) fails the chain.
  self->monitor(st.worker);
  self->set_down_handler([self](caf::down_msg& msg) {
    if (msg.source == self->state.worker.address())
      fail(self, "stopped: " + self->system().render(msg.reason));
  });
  return {[self](batch_ptr& batch) {
    self->state.waiting.push_back(std::move(batch));
    pump(self);
  }};
}

} // namespace

caf::actor spawn_actor_stage(caf::event_based_actor* owner,
                             std::shared_ptr<const actor_stage> stage,
                             const kafka::topic_partition& tp, int lane,
                             const parse_options& parse, caf::actor next,
                             std::shared_ptr<std::string> chain_error) {
  return owner->spawn<caf::linked>(actor_stage_runner, std::move(stage), tp, lane, parse,
                                   std::move(next), std::move(chain_error));
}

} // namespace sluice::actors
