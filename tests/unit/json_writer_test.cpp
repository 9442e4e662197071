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

BOOST_AUTO_TEST_SUITE_END()
