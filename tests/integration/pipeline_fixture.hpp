#pragma once

// A mock cluster with the order topics, the generator that filled it, and
// checks of what a pipeline wrote back.

#include "tests/support/kafka_testing.hpp"

#include <sluice/config.hpp>
#include <sluice/pipeline.hpp>
#include <sluice/testing/mock_cluster.hpp>
#include <sluice/testing/order_events.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <set>

namespace sluice::testing {

struct order_cluster {
  testing::mock_cluster cluster;
  std::string bootstrap = cluster.bootstrap_servers();
  std::uint64_t seed = 11;
  double malformed_fraction = 0.03;
  std::int64_t count = 0;

  explicit order_cluster(int input_partitions = 4, int brokers = 3) : cluster(brokers) {
    cluster.create_topic("orders", input_partitions);
    for (auto t : {"orders-high", "orders-medium", "orders-low"})
      cluster.create_topic(t, 4);
    cluster.create_topic("orders-dlq", 2);
  }

  /// Writes `n` events, lz4-compressed so that 100k fit the mock's 5 MiB per partition.
  void produce(std::int64_t n) {
    count = n;
    testing::produce_orders(bootstrap, "orders", n, std::nullopt, malformed_fraction,
                            seed, {{"compression.type", "lz4"}});
  }

  /// The priority-routing pipeline of the demo, with `overrides` applied.
  pipeline_config config(const std::string& group,
                         std::vector<std::string> overrides = {},
                         const std::string& sink_bootstrap = "") const {
    std::string text = R"({
      "name": "it",
      "source": {"kafka.bootstrap.servers": ")" +
                       bootstrap + R"(", "subscribe": "orders",
                 "startingOffsets": "earliest", "includeHeaders": true,
                 "kafka.group.id": ")" +
                       group + R"(", "kafka.session.timeout.ms": 6000,
                 "kafka.fetch.wait.max.ms": 50},
      "parse": )" + testing::order_parse_section() +
                       R"(,
      "route": {"field": "priority", "topics": {"high": "orders-high", "medium": "orders-medium",
                "low": "orders-low"}},
      "sink": {"kafka.bootstrap.servers": ")" +
                       (sink_bootstrap.empty() ? bootstrap : sink_bootstrap) + R"(",
               "kafka.compression.type": "lz4", "kafka.linger.ms": 5},
      "dlq": {"topic": "orders-dlq"},
      "trigger": {"availableNow": true}
    })";
    return parse_pipeline_config(text, overrides);
  }

  /// Sequence number of an event, from its correlation-id header.
  static std::int64_t sequence_of(const consumed& c) {
    auto id = c.header_value("correlation-id");
    BOOST_REQUIRE_MESSAGE(id, "a record lost its correlation-id header");
    return std::stoll(id->substr(id->rfind('-') + 1));
  }
};

/// How many times each valid event reached its topic, after checking that
/// every output is exactly the parsed event, in its topic, with its key and
/// headers, and that per-key order holds within each output partition.
inline std::map<std::int64_t, int> check_outputs(const order_cluster& oc,
                                                 const std::string& bootstrap) {
  namespace json = boost::json;
  testing::order_generator gen(oc.seed, oc.malformed_fraction);
  std::map<std::int64_t, int> seen;
  for (auto topic : {"orders-high", "orders-medium", "orders-low"}) {
    std::map<std::pair<std::int32_t, std::string>, std::int64_t> last_by_key;
    for (auto& c : read_topic(bootstrap, topic)) {
      auto i = order_cluster::sequence_of(c);
      auto e = gen.make(i);
      BOOST_TEST_CONTEXT("event " << i << " in " << topic) {
        BOOST_TEST(e.malformation.empty());
        BOOST_TEST(topic == "orders-" + e.priority);
        BOOST_TEST(c.key.value_or("") == e.key);
        BOOST_TEST(json::parse(c.value.value_or("")) == json::parse(e.value));
        // Per key, outputs appear in input order (a replay may repeat a tail).
        auto& last = last_by_key.try_emplace({c.partition, e.key}, -1).first->second;
        BOOST_TEST((seen[i] > 0 || i > last), "key " << e.key << " out of order");
        last = std::max(last, i);
      }
      ++seen[i];
    }
  }
  return seen;
}

/// How many times each malformed event reached the DLQ, after checking its
/// bytes and headers against the input record its headers point to.
inline std::map<std::int64_t, int> check_dlq(const order_cluster& oc,
                                             const std::string& bootstrap) {
  testing::order_generator gen(oc.seed, oc.malformed_fraction);
  std::map<std::pair<std::int32_t, std::int64_t>, consumed> input;
  for (auto& c : read_topic(oc.bootstrap, "orders"))
    input[{c.partition, c.offset}] = c;
  std::map<std::int64_t, int> seen;
  for (auto& c : read_topic(bootstrap, "orders-dlq")) {
    auto i = order_cluster::sequence_of(c);
    auto e = gen.make(i);
    BOOST_TEST_CONTEXT("DLQ record of event " << i) {
      BOOST_TEST(!e.malformation.empty());
      BOOST_TEST(c.header_value("sluice.error.type").value_or("") ==
                 testing::expected_error_type(e.malformation));
      BOOST_TEST(!c.header_value("sluice.error.message").value_or("").empty());
      BOOST_TEST(c.header_value("sluice.source.topic").value_or("") == "orders");
      auto part = std::stoi(c.header_value("sluice.source.partition").value_or("-1"));
      auto off = std::stoll(c.header_value("sluice.source.offset").value_or("-1"));
      auto it = input.find({part, off});
      BOOST_REQUIRE(it != input.end());
      BOOST_TEST(it->second.key.value_or("(null)") ==
                 c.key.value_or("(null)")); // key bytes unchanged
      BOOST_TEST(it->second.value.value_or("") ==
                 c.value.value_or("")); // value bytes unchanged
      BOOST_TEST(c.value.value_or("") == e.value);
    }
    ++seen[i];
  }
  return seen;
}

/// The most times any key's outputs go back in the input order, within one
/// output partition. A chain restart replays from its watermark: one step
/// back per restart at most. More means that a failed chain's outputs landed
/// after its replay's (B, A, B).
inline int max_rewinds_per_key(const std::string& bootstrap) {
  int worst = 0;
  for (auto topic : {"orders-high", "orders-medium", "orders-low"}) {
    std::map<std::pair<std::int32_t, std::string>, std::pair<std::int64_t, int>> keys;
    for (auto& c : read_topic(bootstrap, topic)) {
      auto i = order_cluster::sequence_of(c);
      auto& [last, rewinds] =
          keys.try_emplace({c.partition, c.key.value_or("")}, -1, 0).first->second;
      if (i < last) worst = std::max(worst, ++rewinds);
      last = i;
    }
  }
  return worst;
}

/// Splits the generated events into valid and malformed sequence numbers.
inline std::pair<std::set<std::int64_t>, std::set<std::int64_t>>
expected_events(const order_cluster& oc) {
  testing::order_generator gen(oc.seed, oc.malformed_fraction);
  std::set<std::int64_t> valid, malformed;
  for (std::int64_t i = 0; i < oc.count; ++i)
    (gen.make(i).malformation.empty() ? valid : malformed).insert(i);
  return {valid, malformed};
}

/// A finished run and its progress lines, as JSON.
struct observed_run {
  run_summary summary;
  std::vector<boost::json::object> progress;
};

/// Runs a pipeline to its end, collecting its progress lines.
inline observed_run run_to_end(const pipeline_config& cfg) {
  pipeline p(cfg);
  observed_run out;
  std::mutex m;
  p.on_progress([&](const epoch_progress& e) {
    std::lock_guard<std::mutex> guard{m};
    out.progress.push_back(boost::json::parse(to_json(e)).as_object());
  });
  out.summary = p.run();
  return out;
}

/// A user stage that fails partition 1's chain twice, at a batch from offset
/// 1000 on (with records of it in flight); `thrown` counts the failures.
inline void fail_partition_1_twice(pipeline& p, std::atomic<int>& thrown) {
  p.set_stage([&thrown](record_batch& b) {
    if (b.partition == 1 && b.begin_offset >= 1000 && thrown.load() < 2) {
      ++thrown;
      throw std::runtime_error("injected failure");
    }
  });
}

/// Runs a pipeline on a thread of its own.
struct background_run {
  pipeline& p;
  std::future<run_summary> result;
  explicit background_run(pipeline& pl)
      : p(pl), result(std::async(std::launch::async, [&pl] { return pl.run(); })) {}

  /// Stops the run and waits for it at most `bound` (scaled); a run that
  /// does not end is a hang: report it and abort rather than wait forever.
  run_summary stop_within(std::chrono::milliseconds bound, const char* who) {
    p.stop();
    return wait_within(bound, who);
  }
  run_summary wait_within(std::chrono::milliseconds bound, const char* who) {
    if (result.wait_for(scaled(bound)) != std::future_status::ready) {
      BOOST_ERROR(who << " did not end within " << scaled(bound).count() << " ms");
      std::fflush(stdout);
      std::abort();
    }
    return result.get();
  }
};

} // namespace sluice::testing
