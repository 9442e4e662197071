#include "apps/sluice/commands.hpp"

#include <sluice/errors.hpp>
#include <sluice/testing/order_events.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>

namespace sluice::app {

int run_produce(const produce_args& args) {
  if (args.count < 0) throw config_error("--count", "expected a number of events >= 0");
  if (args.rate && *args.rate <= 0)
    throw config_error("--rate", "expected events per second > 0");
  auto start = std::chrono::steady_clock::now();
  auto written = testing::produce_orders(
      args.bootstrap, args.topic, args.count, args.rate, args.malformed_fraction,
      args.seed, {}, args.duplicate_fraction, static_cast<std::size_t>(args.value_bytes));
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %lld records (%lld malformed, %lld duplicates) to %s in %.2f s "
              "(%.0f records/s)\n",
              static_cast<long long>(args.count),
              static_cast<long long>(written.malformed),
              static_cast<long long>(written.duplicates), args.topic.c_str(), secs,
              secs > 0 ? static_cast<double>(args.count) / secs : 0.0);
  return 0;
}

} // namespace sluice::app
