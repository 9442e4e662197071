#include "core/log.hpp"

#include <sluice/errors.hpp>
#include <sluice/logging.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>

#include <memory>

namespace sluice {

namespace {

constexpr const char* pattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v";

std::shared_ptr<spdlog::logger> make_logger() {
  if (auto existing = spdlog::get("sluice")) return existing;
  auto made = spdlog::stderr_color_mt("sluice");
  made->set_pattern(pattern);
  return made;
}

} // namespace

spdlog::logger& logger() {
  static const std::shared_ptr<spdlog::logger> instance = make_logger();
  return *instance;
}

void init_logging(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    throw config_error("--log-level",
                       "expected trace, debug, info, warn, error or off, got `" + level +
                           "`");
  logger().set_level(lvl);
  // One stream for an app that logs through spdlog's default logger too
  // (the `sluice` binary does): the same stderr logger, the same level.
  auto shared = spdlog::get("sluice");
  spdlog::set_default_logger(shared);
}

} // namespace sluice
