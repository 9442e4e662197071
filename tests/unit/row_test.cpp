#include "format/format.hpp"
#include "records/record_parser.hpp"
#include "records/steps.hpp"

#include <sluice/row.hpp>

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <string>
#include <vector>

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
             "field `big` is beyond a signed 64-bit integer");
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

// A view into the row given to set(): inserting may move the row's storage
// (short strings live inside it). Caught by ASan when set() did not copy first.
BOOST_AUTO_TEST_CASE(a_field_copied_into_a_new_field_by_view_survives_the_insert) {
  auto r = decoded(R"({"customer_id": "c-17", "a": 1})");
  for (int i = 0; i < 20; ++i) // each insert may grow the table
    r.set("copy" + std::to_string(i), *r.get<std::string_view>("customer_id"));
  BOOST_TEST(*r.get<std::string>("copy19") == "c-17");
  r.set(r.names()[1], *r.get<std::string_view>("copy0")); // a name that is a view, too
  BOOST_TEST(*r.get<std::string>("a") == "c-17");
  BOOST_TEST(r.size() == 22u);
  // A new field named by a view into a (short, inline) value of the row.
  r.set("name", "fresh");
  for (int i = 0; i < 20; ++i)
    r.set(*r.get<std::string_view>("name"), i);
  BOOST_TEST(*r.get<std::int64_t>("fresh") == 19);
  // Erasing by a view into a value that moves while the row is rebuilt.
  r.set("victim", "copy3");
  BOOST_TEST(r.erase(*r.get<std::string_view>("victim")));
  BOOST_TEST(!r.contains("copy3"));
  BOOST_TEST(r.contains("copy4"));
}

// Compile-time: a character or a pointer is refused ('A' is not 65, and a
// pointer would have been stored as `true`).
template <class T>
concept settable = requires(row r, T v) {
  r.set("x", v);
};
static_assert(settable<std::int64_t> && settable<unsigned char> && settable<signed char>);
static_assert(settable<const char*> && settable<std::string> && settable<float>);
static_assert(!settable<char> && !settable<char8_t> && !settable<wchar_t>);
static_assert(!settable<int*> && !settable<const int*> && !settable<const char8_t*>);

BOOST_AUTO_TEST_CASE(set_takes_any_integer_type_and_keeps_what_json_cannot_hold_as_null) {
  row r;
  std::vector<int> v{1, 2, 3};
  r.set("size", v.size());
  r.set("u", 7u);
  r.set("ll", -5LL);
  r.set("short", static_cast<short>(3));
  r.set("huge", std::uint64_t{18446744073709551615u});
  r.set("f", 0.5f);
  r.set("nan", std::nan(""));
  r.set("flag", true);
  BOOST_TEST(*r.get<std::int64_t>("size") == 3);
  BOOST_TEST(*r.get<std::int64_t>("u") == 7);
  BOOST_TEST(*r.get<std::int64_t>("ll") == -5);
  BOOST_TEST(*r.get<std::int64_t>("short") == 3);
  BOOST_TEST((r.kind("huge") == field_kind::integer));
  BOOST_TEST(*r.get<double>("huge") == 18446744073709551615.0);
  BOOST_TEST(*r.get<double>("f") == 0.5);
  r.set("tenth", 0.1f);
  BOOST_TEST(*r.text("tenth") == "0.1"); // not 0.10000000149011612
  BOOST_TEST((r.kind("nan") == field_kind::null));
  BOOST_TEST((r.kind("flag") == field_kind::boolean));
  BOOST_TEST(
      encoded(r) ==
      R"({"size":3,"u":7,"ll":-5,"short":3,"huge":18446744073709551615,"f":0.5,"nan":null,"flag":true,"tenth":0.1})");
}

// A record that fails parse.required or parse.schema used to keep a half-moved
// row (the fields before the bad one read as null): it keeps none.
BOOST_AUTO_TEST_CASE(a_record_that_fails_the_schema_keeps_no_fields) {
  parse_options o;
  o.fields = {{"id", field_type::string_t}, {"n", field_type::long_t}};
  o.required = {"id"};
  record_parser p(o);
  record wrong;
  wrong.value = R"({"id": "x", "n": "seven"})";
  p.parse(wrong);
  BOOST_REQUIRE(wrong.error);
  BOOST_TEST(wrong.error->type == "wrong_type");
  BOOST_TEST(wrong.fields.empty());
  record missing;
  missing.value = R"({"n": 1, "other": true})";
  p.parse(missing);
  BOOST_REQUIRE(missing.error);
  BOOST_TEST(missing.error->type == "missing_field");
  BOOST_TEST(missing.fields.empty());
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
