// User actors as stages (<sluice/actor_stage.hpp>): per-partition state,
// records marked bad, answers out of order, failures and silence.
#include "core/log.hpp"
#include "tests/integration/pipeline_fixture.hpp"

#include <sluice/actor_stage.hpp>
#include <sluice/builder.hpp>

#include <caf/all.hpp>

#include <spdlog/sinks/base_sink.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <thread>

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

/// The builder of the order pipeline (`oc.config`) with `stage` as its step.
std::unique_ptr<pipeline> with_stage(const order_cluster& oc, const std::string& group,
                                     actor_stage stage,
                                     std::vector<std::string> overrides = {},
                                     caf::actor_system* system = nullptr) {
  auto b = pipeline_builder::from_config(oc.config(group, std::move(overrides)));
  b.stage(std::move(stage));
  if (system) b.actor_system(*system);
  return b.build();
}

using open_atom = caf::atom_constant<caf::atom("open")>;

/// The lines Sluice logs while it lives.
class captured_log : public spdlog::sinks::base_sink<std::mutex> {
public:
  captured_log() { sluice::logger().sinks().push_back(self()); }
  ~captured_log() override {
    auto& sinks = sluice::logger().sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), self_), sinks.end());
  }
  /// The lines so far that contain `what`.
  std::vector<std::string> with(const std::string& what) {
    std::lock_guard<std::mutex> guard{mutex_};
    std::vector<std::string> out;
    for (auto& l : lines_)
      if (l.find(what) != std::string::npos) out.push_back(l);
    return out;
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(),
                        msg.payload.size()); // under base_sink's mutex
  }
  void flush_() override {}

private:
  std::shared_ptr<spdlog::sinks::sink> self() {
    self_ = std::shared_ptr<spdlog::sinks::sink>(this, [](auto*) {});
    return self_;
  }
  std::shared_ptr<spdlog::sinks::sink> self_;
  std::vector<std::string> lines_;
};

/// Every valid event written (each once, when `once`), in per-key order, every
/// malformed one in the DLQ, and the group committed to the end.
void check_everything_arrived(const order_cluster& oc, const std::string& group,
                              bool once) {
  auto [valid, malformed] = expected_events(oc);
  auto outputs = check_outputs(oc, oc.bootstrap); // checks per-key order
  BOOST_TEST(outputs.size() == valid.size());
  if (once)
    for (auto& [i, n] : outputs)
      BOOST_TEST(n == 1, "event " << i << " written " << n << " times");
  BOOST_TEST(check_dlq(oc, oc.bootstrap).size() == malformed.size());
  BOOST_TEST(committed_offsets(oc.bootstrap, group, "orders") ==
             end_offsets(oc.bootstrap, "orders"));
}

/// Answers every batch as it came.
stage_actor::behavior_type identity(stage_actor::pointer) {
  return {[](batch_ptr& b) { return b; }};
}

} // namespace

BOOST_AUTO_TEST_SUITE(actor_stages)

// The actor of each partition counts the orders of each customer it has seen
// and writes the running count into every order; orders of 9 items or more
// it marks bad. Each output must carry the count of its partition's earlier
// orders of that customer, in offset order; each marked order must be in the
// DLQ with the actor's reason. The actors run on the app's actor system.
BOOST_AUTO_TEST_CASE(an_actor_per_partition_keeps_state_per_key_and_marks_records_bad) {
  order_cluster oc;
  oc.produce(20000);
  caf::actor_system_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  std::mutex m;
  std::set<std::int32_t> made_for;
  std::atomic<bool> on_app_system{true};
  actor_stage counting;
  counting.make = [&](caf::actor_system& s, const stage_origin& origin) {
    if (&s != &sys) on_app_system = false;
    {
      std::lock_guard<std::mutex> guard{m};
      made_for.insert(origin.partition);
    }
    return s.spawn([](stage_actor::pointer) -> stage_actor::behavior_type {
      auto counts = std::make_shared<std::map<std::string, std::int64_t>>();
      return {[counts](batch_ptr& b) {
        for (auto& r : b->records) {
          if (r.error || r.dropped) continue;
          if (r.fields.at<std::int64_t>("quantity") >= 9) {
            r.error = record_error{"too_many_items", "9 items or more"};
            continue;
          }
          r.fields.set("orders_so_far", ++(*counts)[r.key.value_or("")]);
        }
        return b;
      }};
    });
  };
  auto p = with_stage(oc, "it-actor-state", counting, {}, &sys);
  auto summary = p->run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(summary.restarts == 0);
  BOOST_TEST(on_app_system.load());
  BOOST_TEST(made_for == (std::set<std::int32_t>{0, 1, 2, 3}),
             boost::test_tools::per_element());

  // What each order should have become, from the input in offset order.
  order_generator gen(oc.seed, oc.malformed_fraction);
  std::map<std::int64_t, std::int64_t> expected_count; // by sequence number
  std::set<std::int64_t> expected_marked;
  std::map<std::pair<std::int32_t, std::string>, std::int64_t> counts;
  for (auto& c : read_topic(oc.bootstrap, "orders")) {
    auto i = order_cluster::sequence_of(c);
    auto e = gen.make(i);
    if (!e.malformation.empty()) continue;
    if (json::parse(e.value).at("quantity").to_number<std::int64_t>() >= 9)
      expected_marked.insert(i);
    else
      expected_count[i] = ++counts[{c.partition, c.key.value_or("")}];
  }
  BOOST_REQUIRE(!expected_marked.empty());
  std::map<std::int64_t, std::int64_t> written;
  for (auto topic : {"orders-high", "orders-medium", "orders-low"})
    for (auto& c : read_topic(oc.bootstrap, topic)) {
      auto v = json::parse(c.value.value_or("")).as_object();
      BOOST_REQUIRE(v.contains("orders_so_far"));
      auto [_, fresh] = written.emplace(order_cluster::sequence_of(c),
                                        v.at("orders_so_far").to_number<std::int64_t>());
      BOOST_TEST(fresh);
    }
  BOOST_TEST(written == expected_count);
  std::set<std::int64_t> marked;
  for (auto& c : read_topic(oc.bootstrap, "orders-dlq"))
    if (c.header_value("sluice.error.type") ==
        std::optional<std::string>("too_many_items")) {
      BOOST_TEST(c.header_value("sluice.error.message").value_or("") ==
                 "9 items or more");
      marked.insert(order_cluster::sequence_of(c));
    }
  BOOST_TEST(marked == expected_marked);
  BOOST_TEST(summary.output_rows == static_cast<std::int64_t>(expected_count.size()));
}

// An actor calling a slow service answers with response promises, several
// batches of its partition out at once; the answers come back out of order
// (four sleepers, the later a batch the shorter its wait). Outputs must keep
// offset order and each event be written once.
BOOST_AUTO_TEST_CASE(answers_out_of_order_are_passed_on_in_offset_order) {
  order_cluster oc;
  oc.produce(20000);
  std::atomic<int> most_out{0};
  actor_stage async_stage;
  async_stage.max_in_flight = 4;
  async_stage.make = [&](caf::actor_system& sys, const stage_origin&) {
    std::vector<caf::actor> sleepers;
    for (int i = 0; i < 4; ++i)
      sleepers.push_back(sys.spawn<caf::detached>([]() -> caf::behavior {
        return {[](int ms) {
          std::this_thread::sleep_for(std::chrono::milliseconds(ms));
          return ms;
        }};
      }));
    return sys.spawn(
        [sleepers, &most_out](stage_actor::pointer self) -> stage_actor::behavior_type {
          auto sent = std::make_shared<int>(0);
          auto out = std::make_shared<int>(0);
          self->attach_functor([sleepers](const caf::error&) {
            for (auto& s : sleepers)
              caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
          });
          return {[=, &most_out](batch_ptr& b) -> caf::result<batch_ptr> {
            auto rp = self->make_response_promise<batch_ptr>();
            int k = (*sent)++ % 4;
            int now = ++*out;
            for (int seen = most_out.load(); now > seen;)
              if (most_out.compare_exchange_weak(seen, now)) break;
            self->request(sleepers[k], std::chrono::seconds(30), 4 * (4 - k))
                .then([rp, b, out](int) mutable {
                  --*out;
                  rp.deliver(std::move(b));
                });
            return rp;
          }};
        });
  };
  auto p = with_stage(oc, "it-actor-async", async_stage, {"runtime.maxBatchRecords=50"});
  auto summary = p->run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(most_out.load() > 1, "at most " << most_out.load() << " batch out at once");
  BOOST_TEST(summary.restarts == 0);
  check_everything_arrived(oc, "it-actor-async", true);
}

// An actor that throws ends; its chain restarts with a new actor from the
// last handled offset, and nothing is lost.
BOOST_AUTO_TEST_CASE(an_actor_that_throws_is_replaced_and_nothing_is_lost) {
  order_cluster oc;
  oc.produce(20000);
  std::atomic<bool> thrown{false};
  std::atomic<int> made{0};
  captured_log log;
  actor_stage flaky;
  flaky.make = [&](caf::actor_system& sys, const stage_origin&) {
    ++made;
    return sys.spawn([&thrown](stage_actor::pointer self) -> stage_actor::behavior_type {
      report_exceptions(self); // the exception's text in the chain's error
      return {[&thrown](batch_ptr& b) {
        bool holds = b->partition == 1 && b->begin_offset <= 2000 && 2000 < b->end_offset;
        if (holds && !thrown.exchange(true))
          throw std::runtime_error("injected failure at orders/1@2000");
        return b;
      }};
    });
  };
  auto p = with_stage(oc, "it-actor-throws", flaky, {"runtime.restartBackoff=20ms"});
  auto summary = p->run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(thrown.load());
  BOOST_TEST(summary.restarts == 1);
  BOOST_TEST(made.load() == 5); // four chains, and the restarted one
  auto failed = log.with("orders/1: chain failed");
  BOOST_REQUIRE(failed.size() == 1u);
  BOOST_TEST(failed[0].find("the actor stage of orders/1 failed on a batch") !=
                 std::string::npos,
             failed[0]);
  BOOST_TEST(failed[0].find("injected failure at orders/1@2000") != std::string::npos,
             failed[0]);
  check_everything_arrived(oc, "it-actor-throws", false); // a replay may repeat
}

// An actor that answers with an error fails its chain every time: the
// restart budget runs out and the run fails with the actor's reason, without
// committing that partition past what it handled.
BOOST_AUTO_TEST_CASE(an_actor_that_answers_errors_spends_the_budget_and_fails_the_run) {
  order_cluster oc;
  oc.produce(4000);
  actor_stage refusing;
  refusing.make = [](caf::actor_system& sys, const stage_origin& origin) {
    return sys.spawn([origin](stage_actor::pointer) -> stage_actor::behavior_type {
      return {[origin](batch_ptr& b) -> caf::result<batch_ptr> {
        if (origin.partition == 0)
          return caf::make_error(caf::sec::runtime_error, "the scoring service said no");
        return b;
      }};
    });
  };
  auto p = with_stage(oc, "it-actor-error", refusing,
                      {"runtime.restartBudget=2", "runtime.restartBackoff=10ms"});
  auto summary = p->run();
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("partition orders/0 failed 3 times") != std::string::npos,
             summary.error);
  BOOST_TEST(summary.error.find("the scoring service said no") != std::string::npos,
             summary.error);
  BOOST_TEST(summary.restarts == 2);
  auto committed = committed_offsets(oc.bootstrap, "it-actor-error", "orders");
  BOOST_TEST(committed[0] <= 0); // nothing of partition 0 was handled
}

// An actor that never answers: the chain fails after the stage's timeout
// instead of holding its partition for ever, and the run ends.
BOOST_AUTO_TEST_CASE(an_actor_that_does_not_answer_fails_its_chain_after_the_timeout) {
  order_cluster oc;
  oc.produce(4000);
  actor_stage silent;
  silent.timeout = 300ms;
  silent.make = [](caf::actor_system& sys, const stage_origin& origin) {
    return sys.spawn([origin](stage_actor::pointer self) -> stage_actor::behavior_type {
      return {[origin, self](batch_ptr& b) -> caf::result<batch_ptr> {
        if (origin.partition == 2) return self->make_response_promise<batch_ptr>();
        return b;
      }};
    });
  };
  auto started = std::chrono::steady_clock::now();
  auto p = with_stage(oc, "it-actor-silent", silent,
                      {"runtime.restartBudget=1", "runtime.restartBackoff=10ms"});
  auto summary = p->run();
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("the actor stage of orders/2 did not answer a batch "
                                "within 300 ms") != std::string::npos,
             summary.error);
  auto took = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::steady_clock::now() - started);
  BOOST_TEST(took.count() < 60);
}

// With lanes (source.minPartitions), an actor per lane: told its lane, and
// every key's records kept in order.
BOOST_AUTO_TEST_CASE(with_lanes_each_lane_has_its_actor) {
  order_cluster oc;
  oc.produce(8000);
  std::mutex m;
  std::set<std::pair<std::int32_t, int>> made_for;
  actor_stage per_lane;
  per_lane.make = [&](caf::actor_system& sys, const stage_origin& origin) {
    {
      std::lock_guard<std::mutex> guard{m};
      made_for.emplace(origin.partition, origin.lane);
    }
    return sys.spawn(identity);
  };
  auto p = with_stage(oc, "it-actor-lanes", per_lane, {"source.minPartitions=8"});
  auto summary = p->run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  std::set<std::pair<std::int32_t, int>> expected;
  for (std::int32_t part = 0; part < 4; ++part)
    for (int lane = 0; lane < 2; ++lane)
      expected.emplace(part, lane);
  BOOST_TEST((made_for == expected));
  check_everything_arrived(oc, "it-actor-lanes", true);
}

// Two actor stages around a map: each runs in order, on what the one
// before it gave.
BOOST_AUTO_TEST_CASE(actor_stages_and_record_steps_run_in_the_order_given) {
  order_cluster oc(2);
  oc.produce(2000);
  auto [valid, malformed] = expected_events(oc);
  auto tagger = [](std::string tag) {
    actor_stage s;
    s.make = [tag](caf::actor_system& sys, const stage_origin&) {
      return sys.spawn([tag](stage_actor::pointer) -> stage_actor::behavior_type {
        return {[tag](batch_ptr& b) {
          for (auto& r : b->records)
            if (!r.error && !r.dropped) {
              auto& path = r.fields.tree()["path"];
              std::string was = path.is_string() ? std::string(path.as_string()) : "";
              path = was + tag;
            }
          return b;
        }};
      });
    };
    return s;
  };
  auto b = pipeline_builder::from_config(oc.config("it-actor-order"));
  b.stage(tagger("a")).map([](record& r) {
    r.fields.set("path", r.fields.at<std::string>("path") + "m");
  });
  b.stage(tagger("b"));
  auto summary = b.build()->run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  std::size_t n = 0;
  for (auto topic : {"orders-high", "orders-medium", "orders-low"})
    for (auto& c : read_topic(oc.bootstrap, topic)) {
      ++n;
      BOOST_TEST(json::parse(c.value.value_or("")).at("path") == "amb");
    }
  BOOST_TEST(n == valid.size());
}

// With a schema records are written from their fields. A map that broke the
// schema (an int field set to text, a required field erased) had its record
// written as broken; now the record goes to the DLQ with its source bytes.
// Fields outside the schema stay free.
BOOST_AUTO_TEST_CASE(a_step_that_breaks_the_schema_sends_the_record_to_the_dlq) {
  order_cluster oc(2);
  oc.produce(1500);
  auto b = pipeline_builder::from_config(oc.config("it-schema-after-steps"));
  b.map([](record& r) {
    auto priority = r.fields.at<std::string>("priority");
    if (priority == "high")
      r.fields.set("quantity", "many");
    else if (priority == "medium")
      r.fields.erase("order_id");
    r.fields.set("note", "free");
  });
  auto summary = b.build()->run();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  testing::order_generator gen(oc.seed, oc.malformed_fraction);
  std::map<std::string, std::int64_t> want; // what each event should become
  for (std::int64_t i = 0; i < oc.count; ++i) {
    auto e = gen.make(i);
    if (!e.malformation.empty())
      ++want["dlq:" + testing::expected_error_type(e.malformation)];
    else if (e.priority == "high")
      ++want["dlq:wrong_type after the steps"];
    else if (e.priority == "medium")
      ++want["dlq:missing_field after the steps"];
    else
      ++want["written"];
  }
  std::map<std::string, std::int64_t> got;
  for (auto& c : read_topic(oc.bootstrap, "orders-low")) {
    auto v = json::parse(c.value.value_or("")).as_object();
    BOOST_TEST(v.at("note") == "free");
    ++got["written"];
  }
  for (auto topic : {"orders-high", "orders-medium"})
    BOOST_TEST(read_topic(oc.bootstrap, topic).empty(), topic);
  for (auto& c : read_topic(oc.bootstrap, "orders-dlq")) {
    auto type = c.header_value("sluice.error.type").value_or("");
    auto message = c.header_value("sluice.error.message").value_or("");
    if (message.starts_with("after the steps")) {
      type += " after the steps";
      // The source bytes, not the broken fields.
      BOOST_TEST(c.value.value_or("").find("\"note\"") == std::string::npos);
    }
    ++got["dlq:" + type];
  }
  BOOST_TEST(want["dlq:wrong_type after the steps"] > 0);
  BOOST_TEST(want["dlq:missing_field after the steps"] > 0);
  for (auto& [what, n] : want)
    BOOST_TEST(got[what] == n, what);
  BOOST_TEST(got.size() == want.size());
}

// A partition held back by its stage: after 30 s without progress the run
// names the partitions behind and their consumers log where they wait; once
// the stage answers, the run ends with every record written.
BOOST_AUTO_TEST_CASE(a_run_that_stops_moving_says_where_it_waits) {
  order_cluster oc(2);
  oc.produce(2000);
  auto [valid, malformed] = expected_events(oc);
  captured_log log;
  caf::actor_system_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  // Holds every question until it is opened.
  auto gate = sys.spawn([](caf::event_based_actor* self) -> caf::behavior {
    auto open = std::make_shared<bool>(false);
    auto waiting = std::make_shared<std::vector<caf::response_promise>>();
    return {[=](int n) -> caf::result<int> {
              if (*open) return n;
              waiting->push_back(self->make_response_promise());
              return waiting->back();
            },
            [=](open_atom) {
              *open = true;
              for (auto& rp : *waiting)
                rp.deliver(0);
            }};
  });
  actor_stage held;
  held.timeout = 120s;
  held.make = [gate](caf::actor_system& s, const stage_origin& origin) {
    return s.spawn(
        [gate, origin](stage_actor::pointer self) -> stage_actor::behavior_type {
          return {[=](batch_ptr& b) -> caf::result<batch_ptr> {
            if (origin.partition != 1) return b;
            auto rp = self->make_response_promise<batch_ptr>();
            self->request(gate, 120s, 0).then([rp, b](int) mutable { rp.deliver(b); });
            return rp;
          }};
        });
  };
  auto p = with_stage(oc, "it-actor-stall", held, {}, &sys);
  auto run = std::async(std::launch::async, [&] { return p->run(); });
  BOOST_REQUIRE_MESSAGE(
      eventually([&] { return !log.with("no partition has moved").empty(); }, 90s),
      "no stall was reported");
  BOOST_REQUIRE(eventually([&] { return !log.with("orders/1: read to").empty(); }, 10s));
  auto stall = log.with("no partition has moved").front();
  BOOST_TEST(stall.find("orders/1 handled to 0 of ") != std::string::npos, stall);
  BOOST_TEST(stall.find("orders/0") == std::string::npos, stall); // it is done
  auto state = log.with("orders/1: read to").front();
  BOOST_TEST(state.find("handled to 0") != std::string::npos, state);
  BOOST_TEST(state.find("in flight of a credit of") != std::string::npos, state);
  caf::anon_send(gate, open_atom::value);
  BOOST_REQUIRE(run.wait_for(60s) == std::future_status::ready);
  auto summary = run.get();
  BOOST_REQUIRE_MESSAGE(summary.ok, summary.error);
  BOOST_TEST(check_outputs(oc, oc.bootstrap).size() == valid.size());
  caf::anon_send_exit(gate, caf::exit_reason::user_shutdown);
}

// A `make` that throws fails its chain with a reason that names `make`.
BOOST_AUTO_TEST_CASE(a_make_that_throws_fails_the_run_naming_make) {
  order_cluster oc(1);
  oc.produce(100);
  actor_stage unmade;
  unmade.make = [](caf::actor_system&, const stage_origin&) -> stage_actor {
    throw std::runtime_error("cannot connect to the scoring service");
  };
  auto p = with_stage(oc, "it-actor-unmade", unmade,
                      {"runtime.restartBudget=1", "runtime.restartBackoff=10ms"});
  auto summary = p->run();
  BOOST_TEST(!summary.ok);
  BOOST_TEST(summary.error.find("the actor stage of orders/0 was not made: `make` threw: "
                                "cannot connect to the scoring service") !=
                 std::string::npos,
             summary.error);
}

// A stage that cannot work is refused when it is added, naming the step.
BOOST_AUTO_TEST_CASE(an_actor_stage_without_a_maker_is_refused_when_added) {
  order_cluster oc(1);
  auto b = pipeline_builder::from_config(oc.config("it-actor-refused"));
  b.map([](record&) {});
  try {
    b.stage(actor_stage{});
    BOOST_FAIL("an actor stage without `make` was accepted");
  } catch (const config_error& e) {
    BOOST_TEST(std::string(e.what()) ==
               "option `steps`: step 2 (an actor stage): `make` is an empty function");
  }
  actor_stage zero;
  zero.make = [](caf::actor_system& sys, const stage_origin&) {
    return sys.spawn(identity);
  };
  zero.max_in_flight = 0;
  BOOST_CHECK_THROW(b.stage(zero), config_error);
}

BOOST_AUTO_TEST_SUITE_END()
