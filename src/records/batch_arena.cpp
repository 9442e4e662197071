#include "records/batch_arena.hpp"

#include <algorithm>
#include <new>

namespace sluice {

struct batch_arena::block {
  block* next;
  std::size_t size; // the whole allocation, this header included
};

namespace {

constexpr std::size_t min_block = 4096;
// Blocks stay below glibc's mmap threshold: a block freed and taken again
// comes from the heap, not from fresh pages the kernel zeroes.
constexpr std::size_t max_block = std::size_t{64} << 10;

} // namespace

batch_arena::batch_arena(std::size_t first_block,
                         std::shared_ptr<std::atomic<std::int64_t>> gauge)
    : next_size_(std::clamp(first_block, min_block, max_block)),
      gauge_(std::move(gauge)) {}

batch_arena::~batch_arena() {
  while (head_) {
    auto* b = head_;
    head_ = b->next;
    ::operator delete(static_cast<void*>(b));
  }
  if (gauge_) *gauge_ -= static_cast<std::int64_t>(held_);
}

void* batch_arena::do_allocate(std::size_t n, std::size_t align) {
  auto fits = [&] {
    auto at = reinterpret_cast<std::uintptr_t>(next_);
    auto pad = (0 - at) & (align - 1); // align is a power of two
    if (left_ < pad || left_ - pad < n) return static_cast<char*>(nullptr);
    next_ += pad + n;
    left_ -= pad + n;
    return reinterpret_cast<char*>(at + pad);
  };
  if (auto* p = fits()) return p;
  auto take = [&](std::size_t size) {
    auto* b = static_cast<block*>(::operator new(size));
    b->next = head_;
    b->size = size;
    head_ = b;
    held_ += size;
    if (gauge_) *gauge_ += static_cast<std::int64_t>(size);
    return b;
  };
  if (sizeof(block) + n + align > next_size_) {
    // Larger than a block: one of its own, and the current block stays the
    // one later allocations come from.
    auto* b = take(sizeof(block) + n + align);
    auto at = reinterpret_cast<std::uintptr_t>(b + 1);
    return reinterpret_cast<char*>(at + ((0 - at) & (align - 1)));
  }
  auto* b = take(next_size_);
  next_ = reinterpret_cast<char*>(b + 1);
  left_ = next_size_ - sizeof(block);
  next_size_ = std::min(next_size_ * 2, max_block);
  return fits();
}

boost::json::storage_ptr
batch_arena::make(std::size_t first_block,
                  std::shared_ptr<std::atomic<std::int64_t>> gauge) {
  return boost::json::make_shared_resource<batch_arena>(first_block, std::move(gauge));
}

} // namespace sluice
