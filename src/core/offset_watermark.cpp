#include "core/offset_watermark.hpp"

#include <stdexcept>
#include <string>

namespace sluice {

void offset_watermark::issue(std::int64_t begin, std::int64_t end) {
  if (begin < issued_end_ || end < begin)
    throw std::logic_error("offset range [" + std::to_string(begin) + ", " +
                           std::to_string(end) + ") overlaps what was issued up to " +
                           std::to_string(issued_end_));
  if (ranges_.empty() && watermark_ == issued_end_)
    watermark_ = begin; // offsets skipped before the first range hold no records
  else if (begin != issued_end_)
    ranges_.emplace(issued_end_,
                    range{begin, true}); // a gap between reads: nothing to handle
  ranges_.emplace(begin, range{end, false});
  issued_end_ = end;
}

bool offset_watermark::ack(std::int64_t begin) {
  auto it = ranges_.find(begin);
  if (it == ranges_.end() || it->second.acked) return false;
  it->second.acked = true;
  while (!ranges_.empty() && ranges_.begin()->first == watermark_ &&
         ranges_.begin()->second.acked) {
    watermark_ = ranges_.begin()->second.end;
    ranges_.erase(ranges_.begin());
  }
  return true;
}

} // namespace sluice
