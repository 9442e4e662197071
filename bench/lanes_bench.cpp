// A CPU-heavy user stage on a one-partition topic, with and without lanes
// (source.minPartitions): one run per process, for bench/run_lanes.sh.
//
//   bench/lanes_bench --bootstrap B --group G --lanes N [--input bench-lanes-in]
//                     [--output bench-lanes-out] [--work 10000]
//
// Reads every record of the input's partition 0 (assign, earliest,
// availableNow), runs the stage -- `--work` rounds of a 64-bit mix over each
// value, about 1 µs per 300 rounds here -- and writes each record to the
// output. Prints one JSON line on stdout:
//   {"lanes":N,"records":R,"seconds":S,"rate":X}
// seconds run from the assignment to the end (the run summary's
// processing_seconds): reading, the stage, writing, the last commit.

#include <sluice/config.hpp>
#include <sluice/pipeline.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace sluice;

namespace {

/// Work the compiler cannot drop: a running mix of the value's bytes.
std::uint64_t burn(const std::string& value, int rounds) {
  std::uint64_t h = 0x9e3779b97f4a7c15ull;
  auto n = std::min<std::size_t>(8, value.size());
  for (int i = 0; i < rounds; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      h ^= static_cast<unsigned char>(value[j]) + (h << 6) + (h >> 2);
      h *= 0xff51afd7ed558ccdull;
    }
  return h;
}

} // namespace

int main(int argc, char** argv) {
  std::string bootstrap, group, input = "bench-lanes-in", output = "bench-lanes-out";
  int lanes = 1, work = 10000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--bootstrap")
      bootstrap = v;
    else if (a == "--group")
      group = v;
    else if (a == "--lanes")
      lanes = std::atoi(v.c_str());
    else if (a == "--input")
      input = v;
    else if (a == "--output")
      output = v;
    else if (a == "--work")
      work = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (bootstrap.empty() || group.empty() || lanes < 1) {
    std::fprintf(stderr, "usage: lanes_bench --bootstrap B --group G --lanes N "
                         "[--input T] [--output T] [--work ROUNDS]\n");
    return 2;
  }
  auto cfg = parse_pipeline_config(R"({
    "name": "lanes-bench",
    "source": {"kafka.bootstrap.servers": ")" +
                                   bootstrap + R"(",
               "kafka.group.id": ")" +
                                   group + R"(",
               "assign": {")" + input +
                                   R"(": [0]}, "startingOffsets": "earliest",
               "minPartitions": )" +
                                   std::to_string(lanes) + R"(},
    "route": {"topic": ")" + output +
                                   R"("},
    "sink": {"kafka.bootstrap.servers": ")" +
                                   bootstrap + R"(", "kafka.linger.ms": 5},
    "trigger": {"availableNow": true}})");
  pipeline p(std::move(cfg));
  std::atomic<std::uint64_t> sink{0};
  p.set_stage([&](record_batch& batch) {
    std::uint64_t h = 0;
    for (auto& r : batch.records)
      if (r.value) h ^= burn(*r.value, work);
    sink += h; // keeps the work observable
  });
  auto s = p.run();
  if (!s.ok) {
    std::fprintf(stderr, "lanes_bench: %s\n", s.error.c_str());
    return 1;
  }
  std::printf("{\"lanes\":%d,\"records\":%lld,\"seconds\":%.3f,\"rate\":%.0f,"
              "\"check\":%llu}\n",
              lanes, static_cast<long long>(s.output_rows), s.processing_seconds,
              static_cast<double>(s.output_rows) / s.processing_seconds,
              static_cast<unsigned long long>(sink.load() & 0xff));
  return 0;
}
