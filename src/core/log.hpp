#pragma once

#include <spdlog/spdlog.h>

namespace sluice {

/// Sluice's own logger, `sluice`, on stderr: the library never touches
/// spdlog's default logger, so an app's own logging stays the app's and
/// Sluice's lines never land in its stdout. init_logging() sets its level.
spdlog::logger& logger();

} // namespace sluice
