#include <sluice/progress.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

using namespace sluice;
namespace json = boost::json;

BOOST_AUTO_TEST_SUITE(progress)

BOOST_AUTO_TEST_CASE(report_uses_spark_field_names_and_adds_lag_and_dlq) {
  epoch_progress p;
  p.id = "id-1";
  p.run_id = "run-1";
  p.name = "orders";
  p.batch_id = 3;
  p.timestamp_ms = 1767225600123;
  p.duration_ms = 2000;
  p.num_input_rows = 400;
  p.num_processed_rows = 300;
  p.num_output_rows = 290;
  p.num_dlq_rows = 10;
  p.source_description = "KafkaV2[Subscribe[orders]]";
  p.sink_description = "KafkaSink[b:9092]";
  p.partitions = {{"orders", 0, 100, 250, 400, 150, 5},
                  {"orders", 1, 0, 250, 250, 250, 0}};
  auto v = json::parse(to_json(p)).as_object();
  BOOST_TEST(v.at("id").as_string() == "id-1");
  BOOST_TEST(v.at("runId").as_string() == "run-1");
  BOOST_TEST(v.at("batchId").as_int64() == 3);
  BOOST_TEST(v.at("timestamp").as_string() == "2026-01-01T00:00:00.123Z");
  BOOST_TEST(v.at("numInputRows").as_int64() == 400);
  BOOST_TEST(v.at("inputRowsPerSecond").as_double() == 200.0);
  BOOST_TEST(v.at("processedRowsPerSecond").as_double() == 150.0);
  BOOST_TEST(v.at("durationMs").at("triggerExecution").as_int64() == 2000);
  auto& src = v.at("sources").as_array().at(0).as_object();
  BOOST_TEST(src.at("description").as_string() == "KafkaV2[Subscribe[orders]]");
  BOOST_TEST(src.at("startOffset").at("orders").at("0").as_int64() == 100);
  BOOST_TEST(src.at("endOffset").at("orders").at("1").as_int64() == 250);
  BOOST_TEST(src.at("latestOffset").at("orders").at("0").as_int64() == 400);
  BOOST_TEST(src.at("numInputRows").as_int64() == 400);
  BOOST_TEST(src.at("numInputRowsByPartition").at("orders").at("1").as_int64() == 250);
  BOOST_TEST(v.at("sink").at("numOutputRows").as_int64() == 290);
  BOOST_TEST(v.at("numDlqRows").as_int64() == 10);
  BOOST_TEST(v.at("lag").at("orders").at("0").as_int64() == 150);
  BOOST_TEST(v.at("lag").at("orders").at("1").as_int64() == 0);
  BOOST_TEST(v.at("inFlightRows").as_int64() == 5);
}

BOOST_AUTO_TEST_CASE(line_is_a_single_line_with_plain_rates) {
  epoch_progress p;
  p.num_input_rows = 41190;
  p.duration_ms = 1000;
  auto line = to_json(p);
  BOOST_TEST(line.find('\n') == std::string::npos);
  BOOST_TEST(line.find(R"("inputRowsPerSecond":41190.0)") != std::string::npos, line);
}

BOOST_AUTO_TEST_CASE(query_id_is_stable_and_run_id_is_not) {
  BOOST_TEST(stable_uuid("a/g") == stable_uuid("a/g"));
  BOOST_TEST(stable_uuid("a/g") != stable_uuid("b/g"));
  BOOST_TEST(random_uuid() != random_uuid());
  auto u = random_uuid();
  BOOST_TEST(u.size() == 36u);
  BOOST_TEST(u[14] == '4');
}

BOOST_AUTO_TEST_SUITE_END()
