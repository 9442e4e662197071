#pragma once

#include <string>

namespace sluice {

/// Sends logs to stderr (stdout carries progress lines and command output).
/// `level` is trace, debug, info, warn, error or off; config_error otherwise.
void init_logging(const std::string& level);

} // namespace sluice
