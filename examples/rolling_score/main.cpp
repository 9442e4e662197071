// rolling_score: a custom actor stage with state per key. One actor per
// partition keeps a rolling score per customer (half the previous score plus
// the order's amount) and writes it into each order, to `orders-scored`;
// orders of more than 15 items it marks for review instead (they go to the
// DLQ, `scores-dlq`, with the actor's reason).
//
// clang-format off
//   sluice broker --topic orders:4 --topic orders-scored:4 --topic scores-dlq:1 &
//   sluice produce --bootstrap HOST:PORT --topic orders --count 10000
//   rolling_score HOST:PORT
// clang-format on
//
// (`sluice` is PREFIX/bin/sluice of an installed Sluice, or build/apps/sluice;
// HOST:PORT is the bootstrap.servers the broker prints first.) A customer's
// orders share a key, so one partition, so one actor sees all of them in
// order: the score needs no shared state and no locks.
#include <sluice/actor_stage.hpp>
#include <sluice/sluice.hpp>

#include <caf/all.hpp>

#include <cstdio>
#include <string>
#include <unordered_map>

namespace {

/// The stage actor of one partition: its state is this function's.
sluice::stage_actor::behavior_type scorer(sluice::stage_actor::pointer) {
  auto scores = std::make_shared<std::unordered_map<std::string, double>>();
  return {[scores](sluice::batch_ptr& batch) {
    for (auto& r : batch->records) {
      if (r.error || r.dropped) continue; // invalid: on its way to the DLQ already
      auto quantity = r.fields.at<std::int64_t>("quantity");
      if (quantity > 15) {
        r.error = sluice::record_error{"needs_review", "more than 15 items"};
        continue;
      }
      auto amount = static_cast<double>(quantity) * r.fields.at<double>("price");
      auto& score = (*scores)[r.fields.at<std::string>("customer_id")];
      score = 0.5 * score + amount;
      r.fields.set("rolling_score", score);
    }
    return batch;
  }};
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: rolling_score BOOTSTRAP_SERVERS\n");
    return 2;
  }
  std::string bootstrap = argv[1];

  sluice::source_options source;
  source.bootstrap_servers = bootstrap;
  source.subscribe = {"orders"};
  source.starting = sluice::starting_offsets::earliest;

  sluice::parse_options parse;
  parse.fields = {{"order_id", sluice::field_type::string_t},
                  {"customer_id", sluice::field_type::string_t},
                  {"quantity", sluice::field_type::int_t},
                  {"price", sluice::field_type::double_t}};
  parse.required = {"order_id", "customer_id", "quantity", "price"};

  sluice::sink_options sink;
  sink.bootstrap_servers = bootstrap;

  sluice::trigger_options trigger;
  trigger.mode = sluice::trigger_options::kind::available_now;

  // Sluice calls this for each partition's chain, and again after a restart
  // (a new actor, a new score table: the chain re-reads from its last commit).
  sluice::actor_stage scoring;
  scoring.make = [](caf::actor_system& sys, const sluice::stage_origin&) {
    return sys.spawn(scorer);
  };
  try {
    auto pipeline = sluice::pipeline_builder("rolling-score")
                        .source(source)
                        .parse(parse)
                        .stage(scoring)
                        .route("orders-scored")
                        .sink(sink)
                        .dlq("scores-dlq")
                        .trigger(trigger)
                        .build();
    auto s = pipeline->run();
    std::printf(
        "%lld in, %lld scored, %lld to the DLQ\n", static_cast<long long>(s.input_rows),
        static_cast<long long>(s.output_rows), static_cast<long long>(s.dlq_rows));
    if (!s.ok) std::fprintf(stderr, "rolling_score: %s\n", s.error.c_str());
    return s.ok ? 0 : 1;
  } catch (const sluice::config_error& e) {
    std::fprintf(stderr, "rolling_score: %s\n", e.what());
    return 2;
  }
}
