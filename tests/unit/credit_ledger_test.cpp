#include "core/credit_ledger.hpp"

#include <boost/test/unit_test.hpp>

#include <optional>

using namespace sluice;

BOOST_AUTO_TEST_SUITE(credit)

BOOST_AUTO_TEST_CASE(records_in_flight_are_bounded_per_partition) {
  std::atomic<std::int64_t> bytes{0}, max_bytes{0};
  credit_ledger ledger{100, 30, 1 << 20, bytes, max_bytes};
  BOOST_TEST(ledger.room() == 100);
  ledger.issue(80, 800);
  BOOST_TEST(ledger.room() == 20);
  ledger.issue(20, 200);
  BOOST_TEST(ledger.room() == 0);
  BOOST_TEST(ledger.stall());  // a pause, counted once
  BOOST_TEST(!ledger.stall()); // still the same one
  ledger.settle(20, 200);
  BOOST_TEST(!ledger.resume_due()); // 80 in flight: no room for a batch of 30
  ledger.settle(10, 100);
  BOOST_TEST(ledger.resume_due()); // 70 <= 100 - 30
  ledger.unstall();
  BOOST_TEST(!ledger.resume_due());
  BOOST_TEST(ledger.in_flight() == 70);
}

BOOST_AUTO_TEST_CASE(parsed_memory_counts_against_the_byte_credit) {
  std::atomic<std::int64_t> bytes{0}, max_bytes{0}, parsed{0};
  credit_ledger ledger{1000, 10, 1000, bytes, max_bytes, &parsed};
  ledger.issue(5, 300);
  BOOST_TEST(!ledger.bytes_spent());
  parsed += 700; // the batch's rows, once parsed
  BOOST_TEST(ledger.bytes_spent());
  ledger.issue(1, 10);
  BOOST_TEST(max_bytes.load() == 1010); // raw and parsed
  parsed -= 700;                        // the batch is gone
  BOOST_TEST(!ledger.bytes_spent());
}

BOOST_AUTO_TEST_CASE(bytes_in_flight_are_bounded_for_all_partitions_together) {
  std::atomic<std::int64_t> bytes{0}, max_bytes{0};
  std::optional<credit_ledger> a{std::in_place, 1000, 10, 1000, bytes, max_bytes};
  credit_ledger b{1000, 10, 1000, bytes, max_bytes};
  a->issue(5, 600);
  BOOST_TEST(!b.bytes_spent());
  b.issue(5, 400);
  BOOST_TEST(a->bytes_spent());
  BOOST_TEST(b.bytes_spent());
  BOOST_TEST(max_bytes.load() == 1000);
  b.settle(5, 400);
  BOOST_TEST(bytes.load() == 600);
  // A chain that dies gives back what it held.
  a.reset();
  BOOST_TEST(bytes.load() == 0);
  BOOST_TEST(max_bytes.load() == 1000);
}

BOOST_AUTO_TEST_SUITE_END()
