#include "kafka/prefetch_policy.hpp"

#include <boost/test/unit_test.hpp>

using namespace sluice;

BOOST_AUTO_TEST_SUITE(prefetch_policy)

BOOST_AUTO_TEST_CASE(each_of_64_partitions_prefetches_a_64th_of_the_byte_credit) {
  pipeline_config cfg; // 32 MiB and 10,000 records of credit
  auto src = kafka::with_prefetch_limits(cfg, 64);
  BOOST_TEST(src.kafka.at("queued.max.messages.kbytes") == "512");
  BOOST_TEST(src.kafka.at("queued.min.messages") == "10000");
  BOOST_TEST(src.kafka.at("fetch.message.max.bytes") == "524288");
  BOOST_TEST(src.kafka.at("fetch.max.bytes") == "16777216");
  // More partitions share alike: the limit is per partition.
  BOOST_TEST(kafka::with_prefetch_limits(cfg, 1000).kafka.at(
                 "queued.max.messages.kbytes") == "512");
}

BOOST_AUTO_TEST_CASE(fewer_partitions_get_a_larger_share) {
  pipeline_config cfg;
  auto one = kafka::with_prefetch_limits(cfg, 1);
  BOOST_TEST(one.kafka.at("queued.max.messages.kbytes") == "32768");
  BOOST_TEST(one.kafka.at("queued.min.messages") == "640000");
  BOOST_TEST(one.kafka.at("fetch.message.max.bytes") == "1048576"); // at most 1 MiB
  auto four = kafka::with_prefetch_limits(cfg, 4);
  BOOST_TEST(four.kafka.at("queued.max.messages.kbytes") == "8192");
}

BOOST_AUTO_TEST_CASE(limits_stay_within_what_librdkafka_accepts) {
  pipeline_config cfg;
  cfg.runtime.max_in_flight_bytes = 1024; // 1 KiB: at least 64 KiB prefetched
  cfg.runtime.max_in_flight_per_partition = 1'000'000;
  auto small = kafka::with_prefetch_limits(cfg, 1);
  BOOST_TEST(small.kafka.at("queued.max.messages.kbytes") == "64");
  BOOST_TEST(small.kafka.at("queued.min.messages") == "10000000"); // its maximum
  BOOST_TEST(small.kafka.at("fetch.max.bytes") == "1048576");
  cfg.runtime.max_in_flight_bytes = std::size_t{1} << 40;
  auto huge = kafka::with_prefetch_limits(cfg, 1);
  BOOST_TEST(huge.kafka.at("queued.max.messages.kbytes") == "65536");
  BOOST_TEST(huge.kafka.at("fetch.max.bytes") == "52428800");
}

BOOST_AUTO_TEST_CASE(what_the_user_set_is_kept) {
  pipeline_config cfg;
  cfg.source.kafka["queued.max.messages.kbytes"] = "2048";
  cfg.source.kafka["fetch.max.bytes"] = "1000000";
  auto src = kafka::with_prefetch_limits(cfg, 64);
  BOOST_TEST(src.kafka.at("queued.max.messages.kbytes") == "2048");
  BOOST_TEST(src.kafka.at("fetch.max.bytes") == "1000000");
  BOOST_TEST(src.kafka.at("queued.min.messages") == "10000");
}

BOOST_AUTO_TEST_SUITE_END()
