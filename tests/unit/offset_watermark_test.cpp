#include "core/offset_watermark.hpp"

#include <boost/test/unit_test.hpp>

using sluice::offset_watermark;

BOOST_AUTO_TEST_SUITE(watermark)

BOOST_AUTO_TEST_CASE(starts_at_the_start_offset) {
  offset_watermark w(42);
  BOOST_TEST(w.watermark() == 42);
  BOOST_TEST(w.issued_end() == 42);
  BOOST_TEST(w.pending() == 0u);
}

BOOST_AUTO_TEST_CASE(moves_only_over_contiguous_acknowledged_ranges) {
  offset_watermark w(0);
  w.issue(0, 10);
  w.issue(10, 20);
  w.issue(20, 30);
  BOOST_TEST(w.ack(10)); // out of order: the range before it is not done
  BOOST_TEST(w.watermark() == 0);
  BOOST_TEST(w.ack(20));
  BOOST_TEST(w.watermark() == 0);
  BOOST_TEST(w.ack(0)); // now all three are done
  BOOST_TEST(w.watermark() == 30);
  BOOST_TEST(w.pending() == 0u);
}

BOOST_AUTO_TEST_CASE(unknown_and_repeated_acknowledgements_change_nothing) {
  offset_watermark w(0);
  w.issue(0, 5);
  w.issue(5, 9);
  BOOST_TEST(!w.ack(3));
  BOOST_TEST(w.ack(5));
  BOOST_TEST(!w.ack(5));
  BOOST_TEST(w.watermark() == 0);
  BOOST_TEST(w.ack(0));
  BOOST_TEST(w.watermark() == 9);
  BOOST_TEST(!w.ack(0));
  BOOST_TEST(w.watermark() == 9);
}

BOOST_AUTO_TEST_CASE(first_range_may_start_after_the_start_offset) {
  // Offsets below the first record hold nothing (compaction, markers, log start).
  offset_watermark w(100);
  w.issue(100,
          120); // the consumer issues from its position; the first record may be later
  BOOST_TEST(w.ack(100));
  BOOST_TEST(w.watermark() == 120);
  offset_watermark fresh(0);
  fresh.issue(7, 9);
  BOOST_TEST(fresh.watermark() == 7);
  BOOST_TEST(fresh.ack(7));
  BOOST_TEST(fresh.watermark() == 9);
}

BOOST_AUTO_TEST_CASE(a_gap_between_ranges_does_not_hold_the_watermark) {
  offset_watermark w(0);
  w.issue(0, 10);
  w.issue(15, 20); // 10..14 had no records
  BOOST_TEST(w.ack(15));
  BOOST_TEST(w.watermark() == 0);
  BOOST_TEST(w.ack(0));
  BOOST_TEST(w.watermark() == 20);
}

BOOST_AUTO_TEST_CASE(overlapping_ranges_are_a_logic_error) {
  offset_watermark w(0);
  w.issue(0, 10);
  BOOST_CHECK_THROW(w.issue(5, 12), std::logic_error);
  BOOST_CHECK_THROW(w.issue(12, 11), std::logic_error);
}

BOOST_AUTO_TEST_CASE(many_ranges_acknowledged_in_reverse_end_at_the_last) {
  offset_watermark w(0);
  for (int i = 0; i < 1000; ++i)
    w.issue(i * 3, i * 3 + 3);
  for (int i = 999; i > 0; --i)
    w.ack(i * 3);
  BOOST_TEST(w.watermark() == 0);
  BOOST_TEST(w.pending() == 1000u);
  w.ack(0);
  BOOST_TEST(w.watermark() == 3000);
  BOOST_TEST(w.pending() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
