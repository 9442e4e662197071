// The runner between a chain and a user's stage actor (src/actors/actor_stage.cpp),
// on the deterministic scheduler: a scripted user actor answers when the test
// says, a collector stands for the next stage.

#include "actors/stages.hpp"
#include "core/batch_bookkeeping.hpp"
#include "deterministic_system.hpp"

#include <sluice/actor_stage.hpp>

#include <boost/test/unit_test.hpp>

#include <string>
#include <utility>
#include <vector>

using namespace sluice;
using namespace sluice::testing;

namespace {

/// The batches a scripted stage holds, unanswered, in the order it got them.
struct held_batches {
  std::vector<std::pair<caf::response_promise, batch_ptr>> held;
  int made = 0;
  caf::actor stage;
};

/// A user stage that answers nothing until the test tells it to: a
/// `std::size_t i` message answers the i-th batch it got with `held[i].second`
/// (which the test may replace). Promises are delivered from inside the
/// actor, as CAF requires.
actor_stage scripted_stage(std::shared_ptr<held_batches> h, std::size_t max_in_flight,
                           std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  actor_stage s;
  s.max_in_flight = max_in_flight;
  s.timeout = timeout;
  s.make = [h](caf::actor_system& sys, const stage_origin&) -> stage_actor {
    ++h->made;
    h->stage = sys.spawn([h](caf::event_based_actor* self) -> caf::behavior {
      return {[self, h](batch_ptr& b) {
                auto rp = self->make_response_promise();
                h->held.emplace_back(rp, b);
                return rp;
              },
              [h](std::size_t i) { h->held.at(i).first.deliver(h->held.at(i).second); }};
    });
    // The runner speaks the typed interface; this actor answers it.
    return caf::actor_cast<stage_actor>(h->stage);
  };
  return s;
}

/// A chain's owner with the runner linked to it, as a partition consumer has.
struct runner_fixture {
  deterministic_system ds;
  std::shared_ptr<collected_batches> out = std::make_shared<collected_batches>();
  std::shared_ptr<std::string> chain_error = std::make_shared<std::string>();
  std::shared_ptr<bool> owner_down = std::make_shared<bool>(false);
  caf::actor owner; // held: an actor nobody holds ends (CAF's `unreachable`)
  caf::actor runner;

  void start(actor_stage stage) {
    auto next = spawn_collector(ds.sys(), out);
    auto shared = std::make_shared<const actor_stage>(std::move(stage));
    caf::actor* made = &runner;
    auto down = owner_down;
    owner = ds.sys().spawn([=, this](caf::event_based_actor* self) -> caf::behavior {
      // The runner's failure reaches its owner through the link.
      self->set_exit_handler([self, down](caf::exit_msg& m) {
        *down = true;
        self->quit(m.reason);
      });
      *made = actors::spawn_actor_stage(self, shared, kafka::topic_partition{"orders", 0},
                                        0, parse_options{}, next, chain_error);
      return {[](const std::string&) {}};
    });
    ds.run();
    BOOST_REQUIRE(runner);
  }

  void send(batch_ptr b) {
    caf::anon_send(runner, std::move(b));
    ds.run();
  }

  ~runner_fixture() {
    caf::anon_send_exit(owner, caf::exit_reason::user_shutdown);
    ds.run();
  }

  std::vector<std::int64_t> begins() const {
    std::vector<std::int64_t> v;
    for (auto& b : out->batches)
      v.push_back(b->begin_offset);
    return v;
  }
};

/// A stage whose actor runs `fn` (a typed behavior function).
template <class F>
actor_stage stage_from(F fn) {
  actor_stage s;
  s.make = [fn](caf::actor_system& sys, const stage_origin&) -> stage_actor {
    return sys.spawn(fn);
  };
  return s;
}

/// Starts `s`, sends it a batch, and checks that the chain failed with an
/// error starting with `starts` and naming `reason`, and passed nothing on.
void expect_failed_chain(actor_stage s, const std::string& starts,
                         const std::string& reason) {
  runner_fixture f;
  f.start(std::move(s));
  f.send(batch_of(0, 3));
  BOOST_TEST(f.chain_error->find(starts) == 0u, *f.chain_error);
  BOOST_TEST(f.chain_error->find(reason) != std::string::npos, *f.chain_error);
  BOOST_TEST(*f.owner_down);
  BOOST_TEST(f.out->batches.empty());
}

} // namespace

BOOST_AUTO_TEST_SUITE(actor_stage_runner)

BOOST_AUTO_TEST_CASE(answers_out_of_order_are_passed_on_in_offset_order_with_a_bound) {
  runner_fixture f;
  auto h = std::make_shared<held_batches>();
  f.start(scripted_stage(h, 3));
  BOOST_TEST(h->made == 1);
  for (std::int64_t i = 0; i < 5; ++i)
    f.send(batch_of(i * 10, i * 10 + 10));
  // max_in_flight: three batches out, two waiting in the runner.
  BOOST_REQUIRE(h->held.size() == 3u);
  caf::anon_send(h->stage, std::size_t{2});
  caf::anon_send(h->stage, std::size_t{1});
  f.ds.run();
  BOOST_TEST(f.out->batches.empty()); // the first is not answered yet
  BOOST_TEST(h->held.size() == 3u);   // answered, but not passed on: still out
  caf::anon_send(h->stage, std::size_t{0});
  f.ds.run();
  BOOST_TEST((f.begins() == std::vector<std::int64_t>{0, 10, 20}));
  BOOST_REQUIRE(h->held.size() == 5u); // the two waiting went out
  caf::anon_send(h->stage, std::size_t{4});
  caf::anon_send(h->stage, std::size_t{3});
  f.ds.run();
  BOOST_TEST((f.begins() == std::vector<std::int64_t>{0, 10, 20, 30, 40}));
  BOOST_TEST(f.chain_error->empty());
  BOOST_TEST(!*f.owner_down);
}

BOOST_AUTO_TEST_CASE(
    a_new_batch_as_the_answer_gets_the_coordinates_and_bookkeeping_back) {
  runner_fixture f;
  auto h = std::make_shared<held_batches>();
  f.start(scripted_stage(h, 1));
  auto in = batch_of(100, 104);
  bookkeeping_of(*in).issued_records = 4;
  auto books = in->bookkeeping;
  f.send(in);
  BOOST_REQUIRE(h->held.size() == 1u);
  // The stage answers with a batch of its own: two records kept, one changed
  // offset outside the batch, one gone.
  auto answer = std::make_shared<record_batch>();
  answer->records.push_back(h->held[0].second->records[0]);
  answer->records.push_back(h->held[0].second->records[2]);
  auto& stray = answer->records.emplace_back(h->held[0].second->records[3]);
  stray.offset = 7;
  h->held[0].second = answer;
  caf::anon_send(h->stage, std::size_t{0});
  f.ds.run();
  BOOST_REQUIRE(f.out->batches.size() == 1u);
  auto& got = *f.out->batches[0];
  BOOST_TEST(got.topic == "orders");
  BOOST_TEST(got.begin_offset == 100);
  BOOST_TEST(got.end_offset == 104);
  BOOST_TEST(got.bookkeeping == books); // the credit comes back with it
  BOOST_TEST(got.bookkeeping->issued_records == 4);
  // 100 and 102 kept; the stray goes to the DLQ; 101 and 103 are counted drops.
  BOOST_REQUIRE(got.records.size() == 5u);
  BOOST_TEST(!got.records[0].error);
  BOOST_TEST(!got.records[1].error);
  BOOST_REQUIRE(got.records[2].error);
  BOOST_TEST(got.records[2].error->type == "stage_error");
  BOOST_TEST(got.records[3].offset == 101);
  BOOST_TEST(got.records[3].dropped);
  BOOST_TEST(got.records[4].offset == 103);
  BOOST_TEST(got.records[4].dropped);
}

BOOST_AUTO_TEST_CASE(
    a_stage_that_does_not_answer_in_time_fails_the_chain_and_passes_nothing) {
  runner_fixture f;
  auto h = std::make_shared<held_batches>();
  f.start(scripted_stage(h, 2, std::chrono::milliseconds(50)));
  f.send(batch_of(0, 10));
  f.send(batch_of(10, 20));
  BOOST_REQUIRE(h->held.size() == 2u);
  caf::anon_send(h->stage, std::size_t{1}); // the second answers, the first never
  f.ds.run();
  BOOST_TEST(f.out->batches.empty());
  BOOST_TEST(f.chain_error->empty());
  BOOST_TEST(f.ds.advance_time(std::chrono::milliseconds(49)) == 0u);
  f.ds.run();
  BOOST_TEST(f.chain_error->empty()); // 49 ms: not yet
  BOOST_TEST(f.ds.advance_time(std::chrono::milliseconds(1)) >= 1u);
  f.ds.run();
  BOOST_TEST(*f.chain_error ==
             "the actor stage of orders/0 did not answer a batch within 50 ms");
  BOOST_TEST(*f.owner_down); // linked: the chain ends, and the supervisor restarts it
  BOOST_TEST(
      f.out->batches.empty()); // the answered second is not passed before the first
}

BOOST_AUTO_TEST_CASE(
    an_error_answer_or_a_stage_that_stops_fails_the_chain_with_the_reason) {
  expect_failed_chain(
      stage_from([](stage_actor::pointer) -> stage_actor::behavior_type {
        return {[](batch_ptr&) -> caf::result<batch_ptr> {
          return caf::make_error(caf::sec::runtime_error, "the scoring service said no");
        }};
      }),
      "the actor stage of orders/0 failed on a batch", "the scoring service said no");
  expect_failed_chain(
      stage_from([](stage_actor::pointer self) -> stage_actor::behavior_type {
        report_exceptions(self);
        return {[](batch_ptr&) -> batch_ptr { throw std::runtime_error("bad state"); }};
      }),
      "the actor stage of orders/0", "bad state");
  // A stage that quits without answering: its `down` fails the chain.
  expect_failed_chain(
      stage_from([](stage_actor::pointer self) -> stage_actor::behavior_type {
        return {[self](batch_ptr&) -> caf::result<batch_ptr> {
          self->quit(caf::make_error(caf::sec::runtime_error, "out of memory budget"));
          return caf::delegated<batch_ptr>();
        }};
      }),
      "the actor stage of orders/0 stopped: ", "out of memory budget");
}

BOOST_AUTO_TEST_CASE(make_that_throws_or_returns_no_actor_fails_the_chain_at_once) {
  runner_fixture f;
  actor_stage s;
  s.make = [](caf::actor_system&, const stage_origin&) -> stage_actor {
    throw std::runtime_error("no model file");
  };
  f.start(std::move(s));
  BOOST_TEST(*f.chain_error ==
             "the actor stage of orders/0 was not made: `make` threw: no model file");
  BOOST_TEST(*f.owner_down);
  runner_fixture g;
  actor_stage none;
  none.make = [](caf::actor_system&, const stage_origin&) { return stage_actor{}; };
  g.start(std::move(none));
  BOOST_TEST(
      *g.chain_error ==
      "the actor stage of orders/0 was not made: `make` returned an invalid actor");
  BOOST_TEST(*g.owner_down);
}

BOOST_AUTO_TEST_CASE(a_null_batch_as_the_answer_fails_the_chain) {
  runner_fixture f;
  auto h = std::make_shared<held_batches>();
  f.start(scripted_stage(h, 1));
  f.send(batch_of(0, 3));
  BOOST_REQUIRE(h->held.size() == 1u);
  h->held[0].second = nullptr;
  caf::anon_send(h->stage, std::size_t{0});
  f.ds.run();
  BOOST_TEST(*f.chain_error ==
             "the actor stage of orders/0 answered a batch with a null batch_ptr");
  BOOST_TEST(*f.owner_down);
  BOOST_TEST(f.out->batches.empty());
}

BOOST_AUTO_TEST_SUITE_END()
