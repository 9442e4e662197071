#include "records/record_parser.hpp"

#include <sluice/testing/order_events.hpp>

#include <boost/test/unit_test.hpp>

#include <map>

using namespace sluice;

namespace {

/// The schema the demo, tests and benchmarks use, read like any pipeline.
pipeline_config order_pipeline() {
  return parse_pipeline_config(
      R"({"source": {"kafka.bootstrap.servers": "b", "subscribe": "orders"},
        "route": {"topic": "out"}, "sink": {"kafka.bootstrap.servers": "b"},
        "parse": )" +
      testing::order_parse_section() + "}");
}

} // namespace

BOOST_AUTO_TEST_SUITE(order_events)

BOOST_AUTO_TEST_CASE(malformed_events_are_invalid_for_the_reason_their_kind_says) {
  auto cfg = order_pipeline();
  BOOST_TEST(cfg.parse.fields.size() == 7u);
  record_parser parser(cfg.parse);
  testing::order_generator gen(7, 0.5);
  std::map<std::string, int> kinds;
  for (std::int64_t i = 0; i < 20000; ++i) {
    auto e = gen.make(i);
    record r;
    r.value = e.value;
    parser.parse(r);
    BOOST_TEST_CONTEXT("event " << i << ": " << e.value) {
      if (e.malformation.empty()) {
        BOOST_TEST(!r.error.has_value());
        BOOST_TEST(r.fields.at<std::string_view>("priority") == e.priority);
        BOOST_TEST(r.fields.at<std::string>("customer_id") == e.key);
      } else {
        BOOST_REQUIRE(r.error.has_value());
        BOOST_TEST(r.error->type == testing::expected_error_type(e.malformation));
        ++kinds[e.malformation];
      }
    }
  }
  BOOST_TEST(kinds.size() == 5u); // every kind of breakage occurs
}

BOOST_AUTO_TEST_CASE(the_same_seed_gives_the_same_events) {
  testing::order_generator a(3, 0.1), b(3, 0.1), c(4, 0.1);
  BOOST_TEST(a.make(123).value == b.make(123).value);
  BOOST_TEST(a.make(123).value != c.make(123).value);
  BOOST_TEST(a.make(5).correlation_id == "corr-3-5");
}

BOOST_AUTO_TEST_CASE(fitted_events_have_the_size_asked_and_the_same_meaning) {
  auto cfg = order_pipeline();
  record_parser parser(cfg.parse);
  // The bench's seed over the sequence numbers of a 1M fill: the longest ids too.
  testing::order_generator gen(1, 0.2);
  for (std::size_t bytes : {100u, 1024u, 10240u}) {
    for (std::int64_t first : {std::int64_t{0}, std::int64_t{998000}}) {
      for (std::int64_t i = first; i < first + 2000; ++i) {
        auto e = gen.make(i);
        auto before = e.value;
        testing::fit_value(e, bytes);
        record r;
        r.value = e.value;
        parser.parse(r);
        BOOST_TEST_CONTEXT(bytes << " bytes, event " << i << ": " << e.value) {
          if (!e.malformation.empty()) {
            BOOST_TEST(e.value == before); // broken events stay broken the same way
            BOOST_TEST(r.error.has_value());
            continue;
          }
          BOOST_REQUIRE(!r.error.has_value());
          // Longer only when nothing optional is left to drop (at most 102 bytes).
          bool minimal =
              !r.fields.contains("product_id") && !r.fields.contains("order_time");
          BOOST_TEST((e.value.size() == bytes || (minimal && e.value.size() <= 102u)));
          BOOST_TEST(r.fields.at<std::string_view>("priority") == e.priority);
          BOOST_TEST(r.fields.at<std::string>("customer_id") == e.key);
          BOOST_TEST(r.fields.at<std::string>("order_id") == e.order_id);
          BOOST_TEST((bytes > 200) == r.fields.contains("product_id"));
        }
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
