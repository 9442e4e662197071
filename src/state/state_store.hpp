#pragma once

// Local state on RocksDB: the only place that includes RocksDB's headers and
// translates its statuses.
//
// One DB per instance (one `stateDir`), one column family per input
// partition. One DB means one LOCK file, so a second process on the same
// directory fails at start, and one place for the memory budget: a block
// cache shared by every column family, with a write-buffer manager charging
// the memtables to it (KAFKA-8215: a store per partition multiplied memory).
// A column family per partition keeps a partition's keys apart and lets it be
// wiped and restored alone. The WAL is off: the changelog topic is the truth,
// and a crash loses at most the newest writes, which the changelog restores.

#include <sluice/errors.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rocksdb {
class ColumnFamilyHandle;
}

namespace sluice::state {

class store;

/// The files of a state directory are damaged: RocksDB finds them corrupt
/// (checksums, a truncated CURRENT or MANIFEST, an SST file cut short), or
/// files its MANIFEST lists are missing. The state cannot be used as it is;
/// it is a cache, so the caller may set it aside and rebuild it.
class damaged_error : public fatal_error {
public:
  damaged_error(std::string dir, std::string detail)
      : fatal_error("the state in `" + dir + "` is damaged: " + detail),
        dir_(std::move(dir)), detail_(std::move(detail)) {}
  const std::string& dir() const noexcept { return dir_; }
  /// RocksDB's words.
  const std::string& detail() const noexcept { return detail_; }

private:
  std::string dir_;
  std::string detail_;
};

/// Moves the directory `dir` to `<dir>.damaged-<UTC time>` beside it (a
/// number added when that exists); returns the new path. Throws fatal_error
/// when it cannot.
std::string set_aside(const std::string& dir);

/// One partition's keys (a column family). One user at a time holds it, by
/// a lease (see acquire): a restarted chain's new stage must not write while
/// the old one, on its own thread, still finishes a batch or a restore.
class partition_table {
public:
  /// Exclusive use of the table until destroyed (released from any thread).
  class lease {
  public:
    lease() = default;
    lease(lease&& o) noexcept : table_(std::exchange(o.table_, nullptr)) {}
    lease& operator=(lease&& o) noexcept {
      if (this != &o) {
        release();
        table_ = std::exchange(o.table_, nullptr);
      }
      return *this;
    }
    ~lease() { release(); }
    partition_table* operator->() const noexcept { return table_; }
    partition_table& operator*() const noexcept { return *table_; }
    explicit operator bool() const noexcept { return table_ != nullptr; }

  private:
    friend class partition_table;
    explicit lease(partition_table* t) : table_(t) {}
    void release();
    partition_table* table_ = nullptr;
  };

  /// Waits until no one else holds the table, at most `timeout`; an empty
  /// lease when that passed.
  lease acquire(std::chrono::milliseconds timeout);

  /// Whether someone waits for the lease: a long task of the holder (a
  /// restore) gives up, so that the waiter does not time out.
  bool wanted() const noexcept { return waiting_.load() > 0; }

  /// Values of `keys`, in order (nullopt when absent).
  std::vector<std::optional<std::string>> get(const std::vector<std::string>& keys);
  std::optional<std::string> get(std::string_view key);

  /// Writes to `table` applied together (one RocksDB write batch).
  class writes {
  public:
    explicit writes(partition_table& table);
    ~writes();
    writes(writes&&) noexcept;
    void put(std::string_view key, std::string_view value);
    void remove(std::string_view key);
    bool empty() const;

  private:
    friend class partition_table;
    struct impl;
    std::unique_ptr<impl> impl_;
  };
  void apply(writes& w);

  /// Calls `fn(key, value)` for the keys starting with `prefix` (not empty),
  /// in order from `from` (default: the prefix itself), until it returns false.
  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& fn,
            std::string_view from = {});

  /// Deletes every key.
  void clear();

  /// Writes the memtable to disk (at a clean stop: WAL is off).
  void flush();

  const std::string& name() const noexcept { return name_; }

private:
  friend class store;
  partition_table(store* owner, rocksdb::ColumnFamilyHandle* handle, std::string name)
      : owner_(owner), handle_(handle), name_(std::move(name)) {}
  store* owner_;
  rocksdb::ColumnFamilyHandle* handle_;
  std::string name_;
  std::mutex lease_mutex_;
  std::condition_variable lease_released_;
  bool leased_ = false;
  std::atomic<int> waiting_{0};
};

/// The RocksDB instance under a state directory.
class store {
public:
  /// Opens or creates `dir`, and verifies the checksums of its files.
  /// Throws config_error naming `option` when the directory cannot be used,
  /// or is held by another process; damaged_error when its files are damaged.
  store(const std::string& dir, std::size_t memory_budget, const std::string& option);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  /// The table named `name` (created when missing). Thread-safe; the table
  /// lives as long as the store.
  partition_table& table(const std::string& name);

  /// Writes every table's memtable to disk (at the end of a run: the WAL is
  /// off, so this is what survives a later crash without a restore).
  void flush();

  /// Names of the tables the store holds.
  std::vector<std::string> table_names() const;
  /// Whether no table holds a key.
  bool empty() const;
  /// Deletes every table with its files. Only while no table is in use (no
  /// lease held, no reference kept): before any partition is opened.
  void drop_tables();

  /// Values kept beside the tables (in RocksDB's default column family), for
  /// the store as a whole. put_meta() writes its value to disk at once.
  std::optional<std::string> get_meta(std::string_view key) const;
  void put_meta(std::string_view key, std::string_view value);

  /// Bytes the shared cache holds now (blocks and memtables charged to it).
  std::int64_t memory_used() const;
  /// Bytes of the store's files on disk (SST files).
  std::int64_t disk_used() const;
  const std::string& dir() const noexcept { return dir_; }

private:
  friend class partition_table;
  struct impl;
  std::unique_ptr<impl> impl_;
  std::string dir_;
};

} // namespace sluice::state
