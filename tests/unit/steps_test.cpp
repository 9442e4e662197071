#include "core/batch_bookkeeping.hpp"
#include "format/format.hpp"
#include "records/record_parser.hpp"
#include "records/record_router.hpp"
#include "records/steps.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <stdexcept>

using namespace sluice;
namespace json = boost::json;

namespace {

/// A batch of records parsed without a schema (the whole object kept).
record_batch batch_of(std::initializer_list<std::string> values) {
  record_parser parser(parse_options{});
  record_batch b;
  b.topic = "orders";
  std::int64_t offset = 10;
  for (auto& v : values) {
    record r;
    r.offset = offset++;
    r.value = v;
    parser.parse(r);
    b.records.push_back(std::move(r));
  }
  b.begin_offset = 10;
  b.end_offset = offset;
  return b;
}

std::int64_t n_of(const record& r) {
  return r.fields.at<std::int64_t>("n");
}

/// The steps with the pipeline's (JSON) encoder.
void apply_steps(record_batch& b, const std::vector<processing_step>& steps,
                 bool schemaless) {
  auto enc = make_encoder(parse_options{});
  sluice::apply_steps(b, steps, schemaless, *enc);
}

} // namespace

BOOST_AUTO_TEST_SUITE(steps)

BOOST_AUTO_TEST_CASE(steps_run_in_order_on_valid_records_only) {
  auto b = batch_of({R"({"n": 1})", R"({"n": 2})", "not json", R"({"n": 3})"});
  BOOST_REQUIRE(b.records[2].error);
  std::vector<processing_step> steps{
      record_filter([](const record& r) { return n_of(r) != 2; }),
      record_map([](record& r) { r.fields.set("n", n_of(r) * 10); }),
      record_map([](record& r) { r.fields.set("m", n_of(r) + 1); })};
  apply_steps(b, steps, true);
  BOOST_TEST(n_of(b.records[0]) == 10);
  BOOST_TEST(b.records[0].fields.at<std::int64_t>("m") ==
             11);                      // the second map saw the first
  BOOST_TEST(b.records[1].dropped);    // filtered: a counted drop
  BOOST_TEST(n_of(b.records[1]) == 2); // later steps skip it
  BOOST_TEST(b.records[2].error->type == "malformed_json"); // untouched
  BOOST_TEST(n_of(b.records[3]) == 30);
}

BOOST_AUTO_TEST_CASE(without_a_schema_a_changed_record_is_written_from_its_fields) {
  auto b = batch_of({R"({"n": 1,  "s": "x"})", R"({"n": 2})", R"({"n": 3})"});
  apply_steps(b, {record_map([](record& r) {
                if (n_of(r) == 1) r.fields.set("n", 5);
                if (n_of(r) == 3) r.value = "raw bytes"; // a map that writes the value
              })},
              true);
  BOOST_TEST(*b.records[0].value == R"({"n":5,"s":"x"})");
  BOOST_TEST(*b.records[1].value == R"({"n": 2})"); // unchanged: byte for byte
  BOOST_TEST(*b.records[2].value == "raw bytes");
}

BOOST_AUTO_TEST_CASE(with_a_schema_a_map_that_writes_the_value_is_refused) {
  auto b = batch_of({R"({"n": 1})", R"({"n": 2})"});
  apply_steps(b, {record_map([](record& r) {
                if (n_of(r) == 1)
                  r.value = "other bytes";
                else
                  r.fields.set("n", 20);
              })},
              false);
  BOOST_TEST(b.records[0].error->type == "map_error");
  BOOST_TEST(*b.records[0].value == R"({"n": 1})"); // the DLQ gets the source bytes
  BOOST_TEST(!b.records[1].error);
  BOOST_TEST(*b.records[1].value == R"({"n": 2})"); // the sink writes parsed
  BOOST_TEST(n_of(b.records[1]) == 20);
}

BOOST_AUTO_TEST_CASE(an_exception_sends_the_record_to_the_dlq_with_its_text) {
  auto b = batch_of({R"({"n": 1})", R"({"n": 2})", R"({"n": 3})"});
  apply_steps(b,
              {record_map([](record& r) {
                 if (n_of(r) != 2) return;
                 r.key = "changed";
                 r.value = "changed";
                 r.headers.push_back({"h", "v"});
                 throw std::runtime_error("no price for 2");
               }),
               record_filter([](const record& r) -> bool {
                 if (n_of(r) == 3) throw std::out_of_range("3 is out of range");
                 return true;
               })},
              true);
  BOOST_TEST(!b.records[0].error);
  BOOST_TEST(b.records[1].error->type == "map_error");
  BOOST_TEST(b.records[1].error->message == "no price for 2");
  BOOST_TEST(*b.records[1].value == R"({"n": 2})"); // as it came, for the DLQ
  BOOST_TEST(!b.records[1].key);
  BOOST_TEST(b.records[1].headers.empty());
  BOOST_TEST(b.records[2].error->type == "filter_error");
  BOOST_TEST(b.records[2].error->message == "3 is out of range");
}

BOOST_AUTO_TEST_CASE(flat_map_keeps_offsets_and_turns_nothing_into_a_drop) {
  auto b = batch_of({R"({"n": 2})", R"({"n": 0})", "{", R"({"n": 1})"});
  apply_steps(b, {record_flat_map([](const record& r) {
                std::vector<record> out;
                for (std::int64_t i = 0; i < n_of(r); ++i) {
                  record copy;
                  copy.key = "k" + std::to_string(i);
                  copy.fields.set("n", n_of(r));
                  copy.fields.set("i", i);
                  out.push_back(std::move(copy));
                }
                return out;
              })},
              true);
  BOOST_REQUIRE_EQUAL(b.records.size(), 5u);
  BOOST_TEST(b.records[0].offset == 10);
  BOOST_TEST(b.records[1].offset == 10);
  BOOST_TEST(*b.records[1].value == R"({"n":2,"i":1})"); // made from fields alone
  BOOST_TEST(b.records[2].offset == 11);
  BOOST_TEST(b.records[2].dropped); // no output: handled
  BOOST_TEST(b.records[3].offset == 12);
  BOOST_TEST(b.records[3].error.has_value()); // invalid: passed on to the DLQ
  BOOST_TEST(b.records[4].offset == 13);
}

BOOST_AUTO_TEST_CASE(a_batch_stage_sees_the_batch_and_its_exception_propagates) {
  auto b = batch_of({R"({"n": 1})", R"({"n": 2})"});
  apply_steps(b, {batch_stage([](record_batch& batch) {
                batch.records.pop_back();            // removed: a counted drop
                batch.begin_offset = 99;             // coordinates stay Sluice's
                batch.records[0].fields.set("n", 7); // changes stay
              })},
              true);
  BOOST_REQUIRE_EQUAL(b.records.size(), 2u);
  BOOST_TEST(b.begin_offset == 10);
  BOOST_TEST(n_of(b.records[0]) == 7);
  BOOST_TEST(b.records[1].offset == 11);
  BOOST_TEST(b.records[1].dropped);
  apply_steps(
      b, {batch_stage([](record_batch& batch) { batch.records[0].offset = 500; })}, true);
  BOOST_TEST(b.records[0].error->type == "stage_error");
  BOOST_TEST(b.records[0].offset == 10);
  BOOST_CHECK_THROW(apply_steps(b, {batch_stage([](record_batch&) {
                                  throw std::runtime_error("restart me");
                                })},
                                true),
                    std::runtime_error);
}

// The batch's bookkeeping (its credit, dedup's changes) is Sluice's: a stage
// that replaces the whole batch gives it back with the coordinates.
BOOST_AUTO_TEST_CASE(a_batch_stage_that_replaces_the_batch_keeps_its_bookkeeping) {
  auto b = batch_of({R"({"n": 1})", R"({"n": 2})"});
  bookkeeping_of(b).issued_records = 2;
  bookkeeping_of(b).bytes = 40;
  auto books = b.bookkeeping;
  apply_steps(b, {batch_stage([](record_batch& batch) {
                record_batch fresh;
                fresh.records.push_back(batch.records[1]);
                batch = std::move(fresh);
              })},
              true);
  BOOST_TEST(b.bookkeeping == books);
  BOOST_TEST(b.bookkeeping->issued_records == 2);
  BOOST_TEST(b.bookkeeping->bytes == 40);
  BOOST_TEST(b.topic == "orders");
  BOOST_TEST(b.begin_offset == 10);
  BOOST_REQUIRE_EQUAL(b.records.size(), 2u);
  BOOST_TEST(b.records[0].offset == 11);
  BOOST_TEST(b.records[1].offset == 10);
  BOOST_TEST(b.records[1].dropped);
}

// Without a schema a batch stage's changes to fields were not written: the
// value went out as it came. Now they are, as after a map; a value the stage
// set itself stays, and a record it added keeps what it was given.
BOOST_AUTO_TEST_CASE(without_a_schema_a_batch_stage_s_field_changes_are_written) {
  auto b = batch_of({R"({"n":1})", R"({"n":2})", R"({"n":3})"});
  std::vector<processing_step> steps{batch_stage([](record_batch& batch) {
    batch.records[0].fields.set("n", 10); // fields changed
    batch.records[1].fields.set("n", 20); // fields and value changed
    batch.records[1].value = R"({"n":"twenty"})";
    auto extra = batch.records[2]; // a copy of offset 12, added
    extra.fields.set("copy", true);
    batch.records.push_back(extra);
  })};
  apply_steps(b, steps, true);
  BOOST_REQUIRE(b.records.size() == 4u);
  BOOST_TEST(*b.records[0].value == R"({"n":10})");
  BOOST_TEST(*b.records[1].value == R"({"n":"twenty"})");
  BOOST_TEST(*b.records[2].value == R"({"n":3})"); // unchanged: its bytes as they came
  BOOST_TEST(*b.records[3].value == R"({"n":3,"copy":true})");
  // With a schema records are written from their fields anyway: values stay.
  auto typed = batch_of({R"({"n":1})"});
  apply_steps(
      typed,
      {batch_stage([](record_batch& batch) { batch.records[0].fields.set("n", 10); })},
      false);
  BOOST_TEST(*typed.records[0].value == R"({"n":1})");
}

// Two records at one offset (a flat_map's): the stage marks the first bad and
// changes the second's fields; the second must be written from its fields
// (it was compared with its sibling's value, and its change lost). A record
// the stage adds with fields and no value is written from its fields, not as
// a tombstone.
BOOST_AUTO_TEST_CASE(a_stage_s_changes_are_matched_by_value_and_added_records_get_one) {
  auto b = batch_of({R"({"n":1})"});
  std::vector<processing_step> steps{
      record_flat_map([](const record& r) {
        auto a = r, c = r;
        a.fields.set("part", "a");
        c.fields.set("part", "b");
        return std::vector<record>{a, c};
      }),
      batch_stage([](record_batch& batch) {
        batch.records[0].error = record_error{"bad", "the first part"};
        batch.records[1].fields.set("n", 2);
        record made;
        made.offset = 10;
        made.fields.set("made", true);
        batch.records.push_back(made);
      })};
  apply_steps(b, steps, true);
  BOOST_REQUIRE(b.records.size() == 3u);
  BOOST_TEST(b.records[0].error.has_value());
  BOOST_TEST(*b.records[1].value == R"({"n":2,"part":"b"})");
  BOOST_REQUIRE(b.records[2].value.has_value());
  BOOST_TEST(*b.records[2].value == R"({"made":true})");
}

BOOST_AUTO_TEST_CASE(a_route_function_chooses_the_topic_or_the_dlq) {
  route_options opts;
  opts.extract = [](const record& r) -> std::string {
    auto n = n_of(r);
    if (n == 1) return "out-one";
    if (n == 2) return "";
    if (n == 3) return "orders"; // a source topic
    if (n == 4) return "bad topic!";
    throw std::runtime_error("no topic for " + std::to_string(n));
  };
  record_router router(opts, [](const std::string& t) { return t == "orders"; });
  auto b = batch_of(
      {R"({"n": 1})", R"({"n": 2})", R"({"n": 3})", R"({"n": 4})", R"({"n": 5})"});
  for (auto& r : b.records)
    router.route(r);
  BOOST_TEST(b.records[0].target_topic == "out-one");
  for (std::size_t i = 1; i < 5; ++i)
    BOOST_TEST(b.records[i].error->type == "unroutable");
  BOOST_TEST(b.records[2].error->message.find("a source topic") != std::string::npos);
  BOOST_TEST(b.records[4].error->message == "the route function threw: no topic for 5");
  // A filtered record is never routed (it would fail routing: no field).
  auto dropped = batch_of({R"({"m": 1})"});
  dropped.records[0].dropped = true;
  router.route(dropped.records[0]);
  BOOST_TEST(!dropped.records[0].error);
  // Never into the DLQ or the changelog.
  record_router guarded(opts, {}, {{"out-one", "the pipeline's DLQ"}});
  auto one = batch_of({R"({"n": 1})"});
  guarded.route(one.records[0]);
  BOOST_TEST(one.records[0].error->message ==
             "the route function chose `out-one`, the pipeline's DLQ");
  opts.allow_source_topic = true;
  record_router allowed(opts, [](const std::string& t) { return t == "orders"; });
  auto again = batch_of({R"({"n": 3})"});
  allowed.route(again.records[0]);
  BOOST_TEST(again.records[0].target_topic == "orders");
}

BOOST_AUTO_TEST_SUITE_END()
