// big_orders: keeps the orders worth at least 100 and adds their total.
//
//   sluice broker --topic orders:4 --topic big-orders:4 --topic orders-dlq:1 &
//   sluice produce --bootstrap HOST:PORT --topic orders --count 10000
//   big_orders HOST:PORT
//
// (`sluice` is PREFIX/bin/sluice of an installed Sluice, or build/apps/sluice;
// HOST:PORT is the bootstrap.servers the broker prints first.) Reads `orders`
// from the beginning to its current end (availableNow), then exits: 0 when
// the run succeeded, 1 when it failed, 2 on a bad option.
#include <sluice/sluice.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: big_orders BOOTSTRAP_SERVERS\n");
    return 2;
  }
  std::string bootstrap = argv[1];

  sluice::source_options source;
  source.bootstrap_servers = bootstrap;
  source.subscribe = {"orders"};
  source.starting = sluice::starting_offsets::earliest;

  // The order schema: typed fields, an order id required.
  sluice::parse_options parse;
  parse.fields = {{"order_id", sluice::field_type::string_t},
                  {"customer_id", sluice::field_type::string_t},
                  {"quantity", sluice::field_type::int_t},
                  {"price", sluice::field_type::double_t},
                  {"priority", sluice::field_type::string_t}};
  parse.required = {"order_id", "quantity", "price"};

  sluice::sink_options sink;
  sink.bootstrap_servers = bootstrap;
  sink.kafka["acks"] = "all";

  sluice::trigger_options trigger;
  trigger.mode = sluice::trigger_options::kind::available_now;

  auto total = [](const sluice::record& r) {
    return r.fields.at<double>("quantity") * r.fields.at<double>("price");
  };
  try {
    auto pipeline = sluice::pipeline_builder("big-orders")
                        .source(source)
                        .parse(parse)
                        .filter([&](const sluice::record& r) { return total(r) >= 100; })
                        .map([&](sluice::record& r) { r.fields.set("total", total(r)); })
                        .route("big-orders")
                        .sink(sink)
                        .dlq("orders-dlq")
                        .trigger(trigger)
                        .build();
    auto summary = pipeline->run();
    std::printf("%lld in, %lld written to big-orders, %lld below 100, %lld to the DLQ\n",
                static_cast<long long>(summary.input_rows),
                static_cast<long long>(summary.output_rows),
                static_cast<long long>(summary.dropped_rows),
                static_cast<long long>(summary.dlq_rows));
    if (!summary.ok) std::fprintf(stderr, "big_orders: %s\n", summary.error.c_str());
    return summary.ok ? 0 : 1;
  } catch (const sluice::config_error& e) {
    std::fprintf(stderr, "big_orders: %s\n", e.what());
    return 2;
  }
}
