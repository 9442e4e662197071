// route_by_function: sends each order to a topic a function chooses (Kafka
// Streams' TopicNameExtractor): high-priority orders and orders of 10 items
// or more to `orders-urgent`, the rest to `orders-normal`.
//
// clang-format off
//   sluice broker --topic orders:4 --topic orders-dlq:1 --topic orders-urgent:4 --topic orders-normal:4 &
//   sluice produce --bootstrap HOST:PORT --topic orders --count 10000
//   route_by_function HOST:PORT
// clang-format on
//
// (`sluice` is PREFIX/bin/sluice of an installed Sluice, or build/apps/sluice;
// HOST:PORT is the bootstrap.servers the broker prints first.)
#include <sluice/sluice.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: route_by_function BOOTSTRAP_SERVERS\n");
    return 2;
  }
  std::string bootstrap = argv[1];

  sluice::source_options source;
  source.bootstrap_servers = bootstrap;
  source.subscribe = {"orders"};
  source.starting = sluice::starting_offsets::earliest;

  sluice::parse_options parse;
  parse.fields = {{"order_id", sluice::field_type::string_t},
                  {"quantity", sluice::field_type::int_t},
                  {"priority", sluice::field_type::string_t}};
  parse.required = {"order_id", "quantity", "priority"};

  sluice::sink_options sink;
  sink.bootstrap_servers = bootstrap;

  sluice::trigger_options trigger;
  trigger.mode = sluice::trigger_options::kind::available_now;

  // Called for every valid record, from several partitions at once: keep it
  // free of shared mutable state.
  auto topic_of = [](const sluice::record& r) -> std::string {
    bool urgent = r.fields.at<std::string_view>("priority") == "high" ||
                  r.fields.at<std::int64_t>("quantity") >= 10;
    return urgent ? "orders-urgent" : "orders-normal";
  };
  try {
    auto pipeline = sluice::pipeline_builder("route-by-function")
                        .source(source)
                        .parse(parse)
                        .route(topic_of)
                        .sink(sink)
                        .dlq("orders-dlq")
                        .trigger(trigger)
                        .build();
    auto summary = pipeline->run();
    for (auto& [topic, rows] : summary.rows_by_topic)
      std::printf("%s: %lld\n", topic.c_str(), static_cast<long long>(rows));
    if (!summary.ok)
      std::fprintf(stderr, "route_by_function: %s\n", summary.error.c_str());
    return summary.ok ? 0 : 1;
  } catch (const sluice::config_error& e) {
    std::fprintf(stderr, "route_by_function: %s\n", e.what());
    return 2;
  }
}
