// `sluice ingest`: files or stdin -> Kafka, on the public API (topic_writer).
// One JSON object per line; invalid lines go to a reject file with their
// line number; records are written idempotently with acks from all replicas.

#include "apps/ingest/ingest_lines.hpp"
#include "apps/sluice/commands.hpp"

#include <sluice/errors.hpp>
#include <sluice/writer.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>
#include <unistd.h>

namespace sluice::app {

namespace {

/// A failed record's tag: which input (from 0) and which line (from 1).
constexpr int line_bits = 40;
std::uint64_t tag_of(std::size_t input, std::uint64_t line) {
  return (static_cast<std::uint64_t>(input) << line_bits) | line;
}

/// Lines between two reports from the cluster: failures are learnt at least this often.
constexpr std::int64_t lines_per_flush = 50000;

struct totals {
  std::int64_t lines = 0, written = 0, rejected = 0, refused = 0, blank = 0;
  std::vector<std::string> not_written; // transient failures: "file:line: why"
};

} // namespace

int run_ingest(const ingest_args& args) {
  block_stop_signals();
  if (args.topic.size() > 249 || args.topic == "." || args.topic == ".." ||
      args.topic.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789._-") != std::string::npos)
    throw config_error("--topic", "expected a Kafka topic name (letters, digits, . _ -; "
                                  "at most 249), got `" +
                                      args.topic + "`");
  sink_options sink;
  sink.bootstrap_servers = args.bootstrap;
  // The seed's producer: compressed, small batches; acks=all and idempotence
  // are the writer's own.
  sink.kafka["compression.type"] = "lz4";
  sink.kafka["linger.ms"] = "5";
  // A minute, not librdkafka's five, before a record the cluster does not
  // take counts as not written (a wrong --bootstrap says so after a minute).
  sink.kafka["message.timeout.ms"] = "60000";
  for (auto& property : args.kafka) {
    auto eq = property.find('=');
    if (eq == std::string::npos || eq == 0)
      throw config_error("--kafka", "expected NAME=VALUE, got `" + property + "`");
    sink.kafka[property.substr(0, eq)] = property.substr(eq + 1);
  }
  ingest::line_rules rules;
  rules.key_field = args.key_field;
  for (auto& h : args.headers) {
    auto eq = h.find('=');
    if (eq == std::string::npos || eq == 0)
      throw config_error("--header", "expected NAME=VALUE, got `" + h + "`");
    rules.headers.push_back({h.substr(0, eq), h.substr(eq + 1)});
  }
  auto inputs = args.inputs.empty() ? std::vector<std::string>{"-"} : args.inputs;
  std::vector<int> fds;
  for (auto& path : inputs) {
    int fd = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw config_error("FILE", "cannot read `" + path + "`: " + std::strerror(errno));
    fds.push_back(fd);
  }
  std::ofstream rejects;
  if (!args.reject_file.empty()) {
    std::error_code ec;
    for (auto& path : inputs)
      if (path != "-" && std::filesystem::equivalent(path, args.reject_file, ec))
        throw config_error("--reject-file", "`" + args.reject_file +
                                                "` is also an input: it would be emptied "
                                                "before it is read");
    rejects.open(args.reject_file, std::ios::binary | std::ios::trunc);
    if (!rejects)
      throw config_error("--reject-file", "cannot write `" + args.reject_file +
                                              "`: " + std::strerror(errno));
  }
  auto writer = [&] {
    try {
      return std::make_unique<topic_writer>(sink);
    } catch (const config_error& e) {
      throw as_flag_error(e);
    }
  }();

  std::atomic<bool> stop{false};
  signal_watcher watcher("stopping after the current line, then waiting for what was "
                         "written",
                         "records written since the last summary may or may not be in "
                         "Kafka",
                         [&stop] { stop = true; });

  auto name_of = [&](std::size_t input) {
    return inputs[input] == "-" ? std::string("stdin") : inputs[input];
  };
  totals t;
  auto where = [&](std::size_t input, std::uint64_t line) {
    return name_of(input) + ":" + std::to_string(line);
  };
  auto reject = [&](std::size_t input, std::uint64_t line, const std::string& why,
                    std::string_view text) {
    rejects << name_of(input) << '\t' << line << '\t' << why << '\t' << text << '\n';
    rejects.flush();
    if (!rejects)
      throw fatal_error("cannot write --reject-file `" + args.reject_file + "` (at " +
                        where(input, line) + "): " + std::strerror(errno));
  };
  // What the cluster did with the records: every line not written is named
  // (in the reject file when there is one), none is skipped silently.
  auto take = [&](write_summary s) {
    t.written += s.written;
    for (auto& f : s.failures) {
      auto input = static_cast<std::size_t>(f.tag >> line_bits);
      auto line = f.tag & ((std::uint64_t{1} << line_bits) - 1);
      if (f.permanent) ++t.refused;
      if (!f.permanent || !rejects.is_open())
        t.not_written.push_back(where(input, line) + ": " + f.reason);
      if (rejects.is_open())
        reject(input, line, "not written: " + f.reason, f.value.value_or(""));
    }
  };
  auto started = std::chrono::steady_clock::now();
  std::string line, stopped_by; // why reading stopped early, if it did
  std::size_t last_input = 0;
  std::uint64_t last_line = 0;
  try {
    for (std::size_t i = 0; i < fds.size() && !stop; ++i) {
      ingest::line_reader reader(fds[i], stop);
      for (std::uint64_t n = 1; reader.next(line); ++n) {
        ++t.lines;
        last_input = i;
        last_line = n;
        auto outcome = ingest::read_line(line, rules);
        if (outcome.blank) {
          ++t.blank;
        } else if (!outcome.rec) {
          ++t.rejected;
          if (!rejects.is_open())
            throw fatal_error(where(i, n) + ": " + outcome.reject_reason +
                              " (no --reject-file: the ingest stops at this line)");
          reject(i, n, outcome.reject_reason, line);
        } else {
          writer->write(args.topic, *outcome.rec, tag_of(i, n));
        }
        if (t.lines % lines_per_flush == 0) take(writer->flush());
      }
      if (fds[i] != STDIN_FILENO) ::close(fds[i]);
    }
  } catch (const std::exception& e) {
    stopped_by = e.what();
  }
  // Whatever stopped the reading, what was written is waited for and counted.
  try {
    take(writer->flush());
  } catch (const std::exception& e) {
    if (stopped_by.empty()) stopped_by = e.what();
  }
  auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  boost::json::object summary{
      {"topic", args.topic},
      {"lines", t.lines},
      {"written", t.written},
      {"rejected", t.rejected},
      {"refused", t.refused},
      {"blank", t.blank},
      {"notWritten", static_cast<std::int64_t>(t.not_written.size())},
      {"stopped", stop.load() || !stopped_by.empty()},
      // Where reading ended: to go on from after a stop.
      {"lastRead", last_line ? where(last_input, last_line) : ""},
      {"durationMs", static_cast<std::int64_t>(seconds * 1000)}};
  std::cout << boost::json::serialize(summary) << std::endl;
  spdlog::info("ingest: {} line(s), {} written to {}, {} rejected, {} refused by the "
               "cluster, {} blank, {:.2f} s",
               t.lines, t.written, args.topic, t.rejected, t.refused, t.blank, seconds);
  if (!stopped_by.empty()) std::cerr << "sluice: ingest failed: " << stopped_by << "\n";
  if (!t.not_written.empty())
    std::cerr << "sluice: ingest failed: " << t.not_written.size()
              << " record(s) were not written, e.g. " << t.not_written.front()
              << (t.not_written.front().find("timed out") != std::string::npos
                      ? " (the cluster at " + args.bootstrap +
                            " did not take them within message.timeout.ms: is it "
                            "reachable?)"
                      : std::string())
              << "\n";
  return stopped_by.empty() && t.not_written.empty() ? 0 : 1;
}

} // namespace sluice::app
