#pragma once

#include <compare>
#include <cstdint>
#include <string>

namespace sluice::kafka {

/// A partition of a topic: the unit of assignment, ordering and commit.
struct topic_partition {
  std::string topic;
  std::int32_t partition = 0;

  auto operator<=>(const topic_partition&) const = default;

  std::string str() const { return topic + "/" + std::to_string(partition); }
};

} // namespace sluice::kafka
