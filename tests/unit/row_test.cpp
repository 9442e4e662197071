#include "format/format.hpp"
#include "records/record_parser.hpp"
#include "records/steps.hpp"

#include <sluice/row.hpp>

#include <boost/test/unit_test.hpp>

#include <string>

using namespace sluice;

namespace {

/// A row decoded from JSON text by the pipeline's decoder.
row decoded(const std::string& text) {
  row out;
  auto failed = make_decoder(parse_options{})->decode(text, out);
  BOOST_REQUIRE(!failed);
  return out;
}

std::string encoded(const row& fields) {
  std::string out;
  make_encoder(parse_options{})->encode(fields, out);
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(rows)

BOOST_AUTO_TEST_CASE(fields_read_as_their_type_and_missing_or_null_read_as_none) {
  auto r = decoded(R"({"id": "o1", "n": 3, "whole": 3.0, "price": 2.5, "ok": true,
                       "none": null, "tags": [1, 2], "at": {"city": "Oslo"}})");
  BOOST_TEST(r.size() == 8u);
  BOOST_TEST(*r.get<std::string>("id") == "o1");
  BOOST_TEST(*r.get<std::string_view>("id") == "o1");
  BOOST_TEST(*r.get<std::int64_t>("n") == 3);
  BOOST_TEST(*r.get<double>("n") == 3.0);         // an integer is a number too
  BOOST_TEST(*r.get<std::int64_t>("whole") == 3); // 3.0 is the integer 3
  BOOST_TEST(*r.get<double>("price") == 2.5);
  BOOST_TEST(*r.get<bool>("ok"));
  BOOST_TEST(!r.get<std::int64_t>("none"));
  BOOST_TEST(!r.get<std::string>("absent"));
  BOOST_TEST(r.contains("none"));
  BOOST_TEST(!r.contains("absent"));
  BOOST_TEST((r.kind("none") == field_kind::null));
  BOOST_TEST((r.kind("absent") == field_kind::missing));
  BOOST_TEST((r.kind("n") == field_kind::integer));
  BOOST_TEST((r.kind("price") == field_kind::number));
  BOOST_TEST((r.kind("tags") == field_kind::list));
  BOOST_TEST((r.kind("at") == field_kind::record));
  BOOST_TEST(r.tree().at("at").at("city").as_string() == "Oslo"); // nested: the tree
}

BOOST_AUTO_TEST_CASE(a_field_of_another_type_or_missing_where_needed_throws_naming_it) {
  auto r =
      decoded(R"({"id": "o1", "price": 2.5, "none": null, "big": 18446744073709551615})");
  auto message = [&](auto read) {
    try {
      read();
    } catch (const field_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  BOOST_TEST(message([&] { r.get<std::int64_t>("price"); }) ==
             "field `price` is a number, not an integer");
  BOOST_TEST(message([&] { r.get<std::string>("price"); }) ==
             "field `price` is a number, not text");
  BOOST_TEST(message([&] { r.get<double>("id"); }) == "field `id` is text, not a number");
  BOOST_TEST(message([&] { r.get<bool>("id"); }) == "field `id` is text, not a boolean");
  BOOST_TEST(message([&] { r.at<double>("absent"); }) == "field `absent` is missing");
  BOOST_TEST(message([&] { r.at<double>("none"); }) == "field `none` is null");
  BOOST_TEST(message([&] { r.get<std::int64_t>("big"); }) ==
             "field `big` is beyond a 64-bit integer");
  BOOST_TEST(*r.get<double>("big") == 18446744073709551615.0);
}

BOOST_AUTO_TEST_CASE(text_gives_names_and_keys_as_written) {
  auto r =
      decoded(R"({"s": "EU", "i": 7, "d": 1.0, "b": false, "l": [1, "x"], "z": null})");
  BOOST_TEST(*r.text("s") == "EU");
  BOOST_TEST(*r.text("i") == "7");
  BOOST_TEST(*r.text("d") == "1.0"); // not 1E0, and not the integer 1
  BOOST_TEST(*r.text("b") == "false");
  BOOST_TEST(*r.text("l") == R"([1,"x"])");
  BOOST_TEST(!r.text("z"));
  BOOST_TEST(!r.text("absent"));
}

BOOST_AUTO_TEST_CASE(set_replaces_in_place_or_adds_at_the_end_and_the_encoder_writes_it) {
  auto r = decoded(R"({"a": 1, "b": "x", "c": 2.5})");
  r.set("b", 42);
  r.set("d", "new");
  r.set("e", 0.1);
  r.set("f", true);
  r.set("a", nullptr);
  BOOST_TEST(r.erase("c"));
  BOOST_TEST(!r.erase("c"));
  std::vector<std::string_view> names = r.names();
  BOOST_TEST((names == std::vector<std::string_view>{"a", "b", "d", "e", "f"}));
  BOOST_TEST(encoded(r) == R"({"a":null,"b":42,"d":"new","e":0.1,"f":true})");
  auto copy = r;
  BOOST_TEST((copy == r));
  copy.set("e", 0.2);
  BOOST_TEST(!(copy == r));
}

BOOST_AUTO_TEST_CASE(the_json_decoder_says_why_a_value_is_not_a_row) {
  auto dec = make_decoder(parse_options{});
  row out;
  auto bad = dec->decode("{\"a\":", out);
  BOOST_REQUIRE(bad);
  BOOST_TEST(bad->type == "malformed_json");
  auto list = dec->decode("[1]", out);
  BOOST_REQUIRE(list);
  BOOST_TEST(list->type == "not_an_object");
  BOOST_TEST(list->message == "expected a JSON object, got a JSON array");
  // Decoded then encoded, a value comes out as it went in (compact).
  BOOST_TEST(
      encoded(decoded(R"({"p": 933.0544305299615, "q": 5.0, "r": [1, {"s": null}]})")) ==
      R"({"p":933.0544305299615,"q":5.0,"r":[1,{"s":null}]})");
}

// A map that reads a field the record lacks sends that record, not the
// batch, to the DLQ, with the field named in the reason.
BOOST_AUTO_TEST_CASE(
    a_field_error_in_a_map_sends_the_record_to_the_dlq_naming_the_field) {
  record_parser parser(parse_options{});
  record_batch b;
  for (std::string v :
       {R"({"price": 2, "qty": 3})", R"({"qty": 3})", R"({"price": "x"})"}) {
    record r;
    r.offset = b.end_offset++;
    r.value = v;
    parser.parse(r);
    b.records.push_back(std::move(r));
  }
  auto enc = make_encoder(parse_options{});
  apply_steps(b, {record_map([](record& r) {
                r.fields.set("total", r.fields.at<double>("price") *
                                          r.fields.get<double>("qty").value_or(1));
              })},
              true, *enc);
  BOOST_TEST(!b.records[0].error);
  BOOST_TEST(*b.records[0].value == R"({"price":2,"qty":3,"total":6.0})");
  BOOST_REQUIRE(b.records[1].error);
  BOOST_TEST(b.records[1].error->type == "map_error");
  BOOST_TEST(b.records[1].error->message == "field `price` is missing");
  BOOST_TEST(*b.records[1].value == R"({"qty": 3})"); // the source bytes
  BOOST_REQUIRE(b.records[2].error);
  BOOST_TEST(b.records[2].error->message == "field `price` is text, not a number");
}

BOOST_AUTO_TEST_SUITE_END()
