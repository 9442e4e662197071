// Files to Kafka (`sluice ingest`): what each line becomes, and lines read
// from a descriptor until its end or a stop.
#include "apps/ingest/ingest_lines.hpp"

#include <boost/test/unit_test.hpp>

#include <thread>
#include <unistd.h>

using namespace sluice;
using namespace sluice::ingest;

BOOST_AUTO_TEST_SUITE(ingest_lines)

BOOST_AUTO_TEST_CASE(a_line_is_one_json_object_written_as_it_came) {
  line_rules rules;
  rules.key_field = "k";
  rules.headers = {{"source", std::string("test")}};
  auto ok = read_line(R"({"k":"a", "n":1.50})", rules);
  BOOST_REQUIRE(ok.rec);
  BOOST_TEST(*ok.rec->value == R"({"k":"a", "n":1.50})"); // bytes, not re-rendered
  BOOST_TEST(*ok.rec->key == "a");
  BOOST_TEST(ok.rec->headers.size() == 1u);
  BOOST_TEST(*ok.rec->headers[0].value == "test");
  // A CRLF file's lines lose the CR.
  BOOST_TEST(*read_line("{\"k\":\"b\"}\r", rules).rec->value == R"({"k":"b"})");
  // Keys of other types, as their JSON text (shortest form for doubles).
  BOOST_TEST(*read_line(R"({"k":7})", rules).rec->key == "7");
  BOOST_TEST(*read_line(R"({"k":1.5})", rules).rec->key == "1.5");
  BOOST_TEST(*read_line(R"({"k":true})", rules).rec->key == "true");
  // Without a key field, no key.
  BOOST_TEST(!read_line(R"({"k":1})", line_rules{}).rec->key);
}

BOOST_AUTO_TEST_CASE(blank_lines_are_skipped_and_bad_ones_say_why) {
  line_rules rules;
  rules.key_field = "k";
  BOOST_TEST(read_line("", rules).blank);
  BOOST_TEST(read_line(" \t\r", rules).blank);
  auto reason = [&](std::string_view line) {
    return read_line(line, rules).reject_reason;
  };
  BOOST_TEST(reason(R"({"k":"a",})") == "not JSON (syntax error) at column 10");
  BOOST_TEST(reason(R"({"k":"a"} {"k":"b"})").starts_with("not JSON"));
  BOOST_TEST(reason(R"({"k":"a)").starts_with("not JSON"));
  BOOST_TEST(reason("{\"k\":\"\xff\"}").starts_with("not JSON")); // not UTF-8
  BOOST_TEST(reason("[1,2]") == "not a JSON object");
  BOOST_TEST(reason(R"({"n":1})") == "no key: field `k` is missing");
  BOOST_TEST(reason(R"({"k":null})") == "no key: field `k` is null");
  BOOST_TEST(reason(R"({"k":{"a":1}})") ==
             "no key: field `k` is not a string, number or boolean");
}

BOOST_AUTO_TEST_CASE(lines_are_read_to_the_end_or_until_a_stop) {
  int fds[2];
  BOOST_REQUIRE(::pipe(fds) == 0);
  std::atomic<bool> stop{false};
  line_reader reader(fds[0], stop);
  std::string text = "a\nbb\n\nlast without a newline";
  BOOST_REQUIRE(::write(fds[1], text.data(), text.size()) ==
                static_cast<ssize_t>(text.size()));
  ::close(fds[1]);
  std::vector<std::string> lines;
  for (std::string l; reader.next(l);)
    lines.push_back(l);
  BOOST_TEST(lines == (std::vector<std::string>{"a", "bb", "", "last without a newline"}),
             boost::test_tools::per_element());
  ::close(fds[0]);

  // An idle input (stdin with nothing coming) ends once stop is set.
  BOOST_REQUIRE(::pipe(fds) == 0);
  line_reader idle(fds[0], stop);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop = true;
  });
  std::string l;
  BOOST_TEST(!idle.next(l));
  stopper.join();
  ::close(fds[0]);
  ::close(fds[1]);
}

BOOST_AUTO_TEST_SUITE_END()
