#include "core/json_writer.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

using namespace sluice;
namespace json = boost::json;

namespace {

std::string written(const std::string& text) {
  std::string out;
  write_json(json::parse(text), out);
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(json_writing)

BOOST_AUTO_TEST_CASE(doubles_are_written_as_people_write_them) {
  BOOST_TEST(written(R"({"price":67.27})") == R"({"price":67.27})");
  BOOST_TEST(written(R"([5.0, 0.1, -2.5, 1e21, 1.5e-7])") ==
             "[5.0,0.1,-2.5,1e+21,1.5e-07]");
}

BOOST_AUTO_TEST_CASE(every_kind_round_trips) {
  auto text = R"({"s":"a\"b\\c\u0001é","i":-42,"u":18446744073709551615,"d":0.5,)"
              R"("t":true,"f":false,"n":null,"a":[1,[2,{}]],"o":{"x":[]}})";
  auto out = written(text);
  BOOST_TEST(json::parse(out) == json::parse(text));
  BOOST_TEST(out.find(' ') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(keys_keep_their_order) {
  BOOST_TEST(written(R"({"z":1,"a":2,"m":3})") == R"({"z":1,"a":2,"m":3})");
}

std::string canonical(const std::string& text) {
  std::string out;
  write_canonical_json(json::parse(text), out);
  return out;
}

// Dedup keys: a producer that writes 7.0 where another wrote 7, or its members
// in another order, sends the same key.
BOOST_AUTO_TEST_CASE(equal_values_have_one_canonical_text) {
  BOOST_TEST(canonical("7") == "7");
  BOOST_TEST(canonical("7.0") == "7");
  BOOST_TEST(canonical("7e0") == "7");
  BOOST_TEST(canonical("70e-1") == "7");
  BOOST_TEST(canonical("-0.0") == "0");
  BOOST_TEST(canonical("-3.0") == "-3");
  BOOST_TEST(canonical("1e18") == "1000000000000000000");
  BOOST_TEST(canonical("1e19") == "10000000000000000000");
  BOOST_TEST(canonical("18446744073709551615") == "18446744073709551615");
  BOOST_TEST(canonical("1e20") == "1e+20"); // beyond 64 bits: a double
  BOOST_TEST(canonical("7.5") == "7.5");
  BOOST_TEST(canonical(R"({"b":[1.0,{"d":2,"c":3.0}],"a":"x"})") ==
             R"({"a":"x","b":[1,{"c":3,"d":2}]})");
  BOOST_TEST(canonical(R"("7")") == R"("7")"); // a string stays a string
  // Out of a double's range: infinities, still apart from each other and null.
  BOOST_TEST(canonical("1e400") == "1e999");
  BOOST_TEST(canonical("-1e400") == "-1e999");
  BOOST_TEST(canonical("[null]") == "[null]");
}

BOOST_AUTO_TEST_SUITE_END()
