#pragma once

#include <boost/json/memory_resource.hpp>
#include <boost/json/storage_ptr.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace sluice {

/// The memory of one batch's parsed rows: the parser decodes every record of
/// a batch into it, a few large blocks instead of an allocation per field
/// and string, all freed at once when the last row that uses it is gone.
/// What it holds is added to `gauge` while it lives, so that the byte credit
/// counts what records hold once parsed, not only their raw bytes.
///
/// Nothing is freed before the end: a row changed many times keeps its
/// earlier values until its batch goes. A row copied out of its batch
/// (`row`'s copy) leaves the arena; a row moved keeps it alive.
class batch_arena final : public boost::json::memory_resource {
public:
  /// `first_block`: the size of the first block (later ones double).
  batch_arena(std::size_t first_block, std::shared_ptr<std::atomic<std::int64_t>> gauge);
  ~batch_arena() override;
  batch_arena(const batch_arena&) = delete;
  batch_arena& operator=(const batch_arena&) = delete;

  /// Bytes of the blocks it holds.
  std::size_t bytes() const noexcept { return held_; }

  /// A counted pointer to a new arena, for boost::json values to keep it.
  static boost::json::storage_ptr make(std::size_t first_block,
                                       std::shared_ptr<std::atomic<std::int64_t>> gauge);

private:
  void* do_allocate(std::size_t n, std::size_t align) override;
  void do_deallocate(void*, std::size_t, std::size_t) override {}
  bool do_is_equal(const boost::json::memory_resource& other) const noexcept override {
    return this == &other;
  }

  struct block;
  block* head_ = nullptr;
  char* next_ = nullptr;
  std::size_t left_ = 0;
  std::size_t next_size_;
  std::size_t held_ = 0;
  std::shared_ptr<std::atomic<std::int64_t>> gauge_;
};

} // namespace sluice
