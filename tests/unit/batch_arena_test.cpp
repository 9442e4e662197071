#include "records/batch_arena.hpp"
#include "records/record_parser.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <optional>

using namespace sluice;
namespace json = boost::json;

namespace {

auto gauge() {
  return std::make_shared<std::atomic<std::int64_t>>(0);
}

parse_options two_fields() {
  parse_options o;
  o.fields = {{"id", field_type::string_t}, {"n", field_type::int_t}};
  o.required = {"id"};
  return o;
}

/// Parses `values` as one batch, its rows in one arena counted by `g`.
std::vector<record> parse_batch(std::vector<std::string> values,
                                std::shared_ptr<std::atomic<std::int64_t>> g) {
  record_parser p(two_fields());
  p.use_storage(batch_arena::make(256, g));
  std::vector<record> out;
  for (auto& v : values) {
    record r;
    r.value = v;
    p.parse(r);
    out.push_back(std::move(r));
  }
  p.use_storage({});
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(batch_arenas)

BOOST_AUTO_TEST_CASE(the_gauge_holds_the_arena_while_a_row_uses_it) {
  auto g = gauge();
  auto batch =
      parse_batch({R"({"id":"a-long-identifier-of-a-record","n":1})",
                   R"({"n":2,"id":"b-long-identifier-of-a-record","x":[1,2,3]})"},
                  g);
  BOOST_REQUIRE(!batch[0].error);
  BOOST_REQUIRE(!batch[1].error);
  BOOST_TEST(batch[1].fields.at<std::string>("id") == "b-long-identifier-of-a-record");
  BOOST_TEST(g->load() >= 4096); // one block at least, counted
  // A row moved out of the batch keeps its memory, and the arena with it.
  row kept = std::move(batch[1].fields);
  batch.clear();
  BOOST_TEST(g->load() > 0);
  BOOST_TEST(kept.at<std::int64_t>("n") == 2);
  // A copy has memory of its own: the arena goes with the last row in it.
  row copy = kept;
  kept = row();
  BOOST_TEST(g->load() == 0);
  BOOST_TEST(copy.at<std::string>("id") == "b-long-identifier-of-a-record");
}

BOOST_AUTO_TEST_CASE(a_parser_that_lives_on_keeps_nothing_of_a_batch_it_parsed) {
  // The parser stays for the next batch; the batch it parsed, ending with a
  // value that is not JSON, must not stay alive in it (nor its credit).
  auto g = gauge();
  record_parser p(two_fields());
  for (auto last : {std::string(R"({"id":"z","n":3})"), std::string(R"({"id": "a",)")}) {
    p.use_storage(batch_arena::make(256, g));
    std::vector<record> batch(2);
    batch[0].value = R"({"id":"a-long-identifier-of-a-record","n":1})";
    batch[1].value = last;
    for (auto& r : batch)
      p.parse(r);
    p.use_storage({});
    BOOST_TEST(!batch[0].error);
    BOOST_TEST(g->load() > 0);
    batch.clear();
    BOOST_TEST(g->load() == 0, "after a batch ending with " << last);
  }
}

BOOST_AUTO_TEST_CASE(a_row_moved_from_lets_the_arena_go) {
  auto g = gauge();
  auto batch = parse_batch({R"({"id":"a","n":1})"}, g);
  row moved = std::move(batch[0].fields);
  moved = row(); // the arena's only holder now is batch[0], moved from
  BOOST_TEST(g->load() == 0);
}

BOOST_AUTO_TEST_CASE(a_rejected_record_keeps_nothing_of_the_arena) {
  auto g = gauge();
  auto batch = parse_batch({R"({"n":1})", R"({"id":"x","n":"one"})"}, g);
  BOOST_TEST(batch[0].error->type == "missing_field");
  BOOST_TEST(batch[1].error->type == "wrong_type");
  BOOST_TEST(batch[0].fields.empty());
  BOOST_TEST(g->load() == 0); // no row uses it: gone with the parser's reference
}

BOOST_AUTO_TEST_CASE(allocations_are_aligned_and_may_exceed_a_block) {
  auto g = gauge();
  {
    batch_arena arena(4096, g);
    for (std::size_t align : {1u, 2u, 8u, 16u, 64u}) {
      auto* p = arena.allocate(3, align);
      BOOST_TEST(reinterpret_cast<std::uintptr_t>(p) % align == 0u);
    }
    auto* before = static_cast<char*>(arena.allocate(8, 8));
    auto* big = static_cast<char*>(arena.allocate(200000, 16));
    big[0] = big[199999] = 'x'; // the whole of it is there
    BOOST_TEST(arena.bytes() >= 200000u);
    // The large one had a block of its own: small ones go on in the current block.
    auto* after = static_cast<char*>(arena.allocate(8, 8));
    // (As addresses: Boost.Test compares char pointers as C strings.)
    BOOST_TEST(static_cast<void*>(after) == static_cast<void*>(before + 8));
    BOOST_TEST(g->load() == static_cast<std::int64_t>(arena.bytes()));
  }
  BOOST_TEST(g->load() == 0);
}

BOOST_AUTO_TEST_CASE(a_row_changed_in_the_arena_reads_back) {
  auto g = gauge();
  auto batch = parse_batch({R"({"id":"a","n":1})"}, g);
  auto& r = batch[0].fields;
  r.set("id", std::string(100, 'z')); // allocated in the arena too
  r.set("added", 5);
  BOOST_TEST(r.at<std::string>("id") == std::string(100, 'z'));
  BOOST_TEST(r.at<std::int64_t>("added") == 5);
  batch.clear();
  BOOST_TEST(g->load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
