#pragma once

#include <string>

namespace sluice {

/// Sluice logs to stderr through spdlog's logger named `sluice` (info and up
/// by default); spdlog's default logger is the app's. This sets the `sluice`
/// logger's level and makes it spdlog's default logger as well, so that an
/// app logging through spdlog's free functions writes to the same stream.
/// `level` is trace, debug, info, warn, error or off; config_error otherwise.
void init_logging(const std::string& level);

} // namespace sluice
