#include "state/state_store.hpp"

#include <sluice/errors.hpp>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>

namespace sluice::state {

namespace {

/// Any RocksDB failure after the store is open: the chain fails and is
/// restarted, or the run fails with the reason.
void check(const rocksdb::Status& s, std::string_view what) {
  if (!s.ok())
    throw fatal_error("state store: " + std::string(what) + ": " + s.ToString());
}

/// Whether an open failed on the directory's own files: corrupt ones, or
/// ones its MANIFEST lists that are missing (not permissions, not the lock).
bool damage(const rocksdb::Status& s) {
  return s.IsCorruption() ||
         (s.IsIOError() &&
          s.ToString().find("No such file or directory") != std::string::npos);
}

/// The next key after every key starting with `prefix` (not empty, and not
/// all 0xff bytes).
std::string successor(std::string_view prefix) {
  if (prefix.find_first_not_of('\xff') == std::string_view::npos)
    throw std::logic_error("scan: a prefix with no successor");
  std::string out(prefix);
  while (!out.empty() && static_cast<unsigned char>(out.back()) == 0xff)
    out.pop_back();
  if (!out.empty()) out.back() = static_cast<char>(out.back() + 1);
  return out;
}

} // namespace

struct store::impl {
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<rocksdb::WriteBufferManager> buffers;
  rocksdb::ColumnFamilyOptions family_options;
  rocksdb::WriteOptions write_options;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::mutex mutex; // guards tables
  std::map<std::string, std::unique_ptr<partition_table>, std::less<>> tables;
};

store::store(const std::string& dir, std::size_t memory_budget, const std::string& option)
    : impl_(std::make_unique<impl>()), dir_(dir) {
  auto& im = *impl_;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw config_error(option, "cannot create `" + dir + "`: " + ec.message());
  // One budget: the cache holds blocks, and the write-buffer manager charges
  // every memtable to it. The manager flushes the largest memtable past half
  // the budget; it never stalls writers (allow_stall false), because a stall
  // would block every partition's thread at once.
  im.cache = rocksdb::NewLRUCache(memory_budget);
  im.buffers = std::make_shared<rocksdb::WriteBufferManager>(memory_budget / 2, im.cache,
                                                             /*allow_stall=*/false);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = im.cache;
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  im.family_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Each memtable small enough that many partitions fit the budget.
  im.family_options.write_buffer_size =
      std::clamp<std::size_t>(memory_budget / 16, 1u << 20, 16u << 20);
  im.family_options.max_write_buffer_number = 2;
  im.family_options.level_compaction_dynamic_level_bytes = true;

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.write_buffer_manager = im.buffers;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 2;
  db_options.max_log_file_size = 1u << 20;
  // Memtables are written out at close: with the WAL off, that is what a
  // clean stop keeps without a restore.
  db_options.avoid_flush_during_shutdown = false;
  im.write_options.disableWAL = true;
  // A batch's keys are sorted (see writes): concurrent inserts reuse their
  // position in the memtable.
  im.write_options.memtable_insert_hint_per_batch = true;

  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(db_options, dir, &names).ok() || names.empty())
    names = {rocksdb::kDefaultColumnFamilyName};
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (auto& n : names)
    families.emplace_back(n, im.family_options);
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(db_options, dir, families, &im.handles, &db);
  if (!s.ok()) {
    auto text = s.ToString();
    // RocksDB's words for its LOCK file held by another process, or by this one.
    if (s.IsIOError() && (text.find("While lock file") != std::string::npos ||
                          text.find("lock hold by current process") != std::string::npos))
      throw config_error(option, "`" + dir + "` is in use by another process (" + text +
                                     "): give each instance its own state directory");
    if (damage(s)) throw damaged_error(dir, text);
    throw config_error(option, "cannot open the state in `" + dir + "`: " + text);
  }
  im.db.reset(db);
  // A damaged data block opens fine and fails only when read, mid-run; its
  // checksum is checked here instead, so that the whole state is set aside
  // and rebuilt at start. Reading every file once costs little beside the
  // scan that counts each partition's keys when it opens.
  rocksdb::ReadOptions verify;
  verify.fill_cache = false;
  if (auto v = im.db->VerifyChecksum(verify); !v.ok()) {
    for (auto* h : im.handles)
      im.db->DestroyColumnFamilyHandle(h);
    im.handles.clear();
    im.db->Close();
    im.db.reset();
    if (damage(v)) throw damaged_error(dir, v.ToString());
    throw config_error(option, "cannot read the state in `" + dir + "`: " + v.ToString());
  }
  for (auto* h : im.handles)
    if (h->GetName() != rocksdb::kDefaultColumnFamilyName)
      im.tables.emplace(h->GetName(), std::unique_ptr<partition_table>(
                                          new partition_table(this, h, h->GetName())));
}

store::~store() {
  auto& im = *impl_;
  if (!im.db) return;
  for (auto* h : im.handles)
    im.db->DestroyColumnFamilyHandle(h);
  im.handles.clear();
  // Memtables are flushed at close (the WAL is off); a failure leaves the
  // newest writes to the changelog restore.
  if (auto s = im.db->Close(); !s.ok())
    std::fprintf(stderr, "sluice: closing the state store: %s\n", s.ToString().c_str());
}

partition_table& store::table(const std::string& name) {
  auto& im = *impl_;
  std::lock_guard<std::mutex> guard{im.mutex};
  auto it = im.tables.find(name);
  if (it != im.tables.end()) return *it->second;
  rocksdb::ColumnFamilyHandle* h = nullptr;
  check(im.db->CreateColumnFamily(im.family_options, name, &h),
        "creating table `" + name + "`");
  im.handles.push_back(h);
  auto* t = new partition_table(this, h, name);
  im.tables.emplace(name, std::unique_ptr<partition_table>(t));
  return *t;
}

void store::flush() {
  auto& im = *impl_;
  std::lock_guard<std::mutex> guard{im.mutex};
  check(im.db->Flush(rocksdb::FlushOptions(), im.handles), "flushing");
}

std::vector<std::string> store::table_names() const {
  auto& im = *impl_;
  std::lock_guard<std::mutex> guard{im.mutex};
  std::vector<std::string> out;
  for (auto& [name, t] : im.tables)
    out.push_back(name);
  return out;
}

bool store::empty() const {
  auto& im = *impl_;
  std::lock_guard<std::mutex> guard{im.mutex};
  for (auto& [name, t] : im.tables) {
    std::unique_ptr<rocksdb::Iterator> it(
        im.db->NewIterator(rocksdb::ReadOptions(), t->handle_));
    it->SeekToFirst();
    check(it->status(), "reading `" + name + "`");
    if (it->Valid()) return false;
  }
  return true;
}

void store::drop_tables() {
  auto& im = *impl_;
  std::lock_guard<std::mutex> guard{im.mutex};
  for (auto& [name, t] : im.tables) {
    check(im.db->DropColumnFamily(t->handle_), "dropping table `" + name + "`");
    im.handles.erase(std::remove(im.handles.begin(), im.handles.end(), t->handle_),
                     im.handles.end());
    check(im.db->DestroyColumnFamilyHandle(t->handle_), "dropping table `" + name + "`");
  }
  im.tables.clear();
}

std::optional<std::string> store::get_meta(std::string_view key) const {
  auto& db = *impl_->db;
  std::string value;
  auto s = db.Get(rocksdb::ReadOptions(), db.DefaultColumnFamily(),
                  rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::nullopt;
  check(s, "reading `" + std::string(key) + "`");
  return value;
}

void store::put_meta(std::string_view key, std::string_view value) {
  auto& im = *impl_;
  auto* family = im.db->DefaultColumnFamily();
  check(im.db->Put(im.write_options, family, rocksdb::Slice(key.data(), key.size()),
                   rocksdb::Slice(value.data(), value.size())),
        "writing `" + std::string(key) + "`");
  // The WAL is off: flushed at once, so that it outlives a crash.
  check(im.db->Flush(rocksdb::FlushOptions(), family), "flushing");
}

std::int64_t store::memory_used() const {
  return static_cast<std::int64_t>(impl_->cache->GetUsage());
}

std::int64_t store::disk_used() const {
  std::uint64_t total = 0;
  auto& im = *impl_;
  std::lock_guard<std::mutex> guard{im.mutex};
  for (auto* h : im.handles) {
    std::uint64_t n = 0;
    if (im.db->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &n))
      total += n;
  }
  return static_cast<std::int64_t>(total);
}

std::string set_aside(const std::string& dir) {
  namespace fs = std::filesystem;
  // `dir/` names the same directory as `dir`: the new name goes beside it.
  auto path = fs::path(dir).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  auto base = path.string() + ".damaged-" + stamp;
  auto target = base;
  std::error_code ec;
  for (int n = 2; fs::exists(target, ec); ++n)
    target = base + "-" + std::to_string(n);
  fs::rename(path, target, ec);
  if (ec)
    throw fatal_error("cannot move the damaged state `" + dir + "` to `" + target +
                      "`: " + ec.message() + " (delete or move it, and run again)");
  return target;
}

// -- partition_table ----------------------------------------------------------

/// Operations are kept in one buffer and written in key order: a memtable
/// insert then starts its search where the previous one ended, instead of at
/// the top of the skip list (measured: the inserts were the stage's largest
/// cost).
struct partition_table::writes::impl {
  struct op {
    std::size_t key_at, key_size, value_at, value_size;
    bool remove;
  };
  rocksdb::ColumnFamilyHandle* family = nullptr;
  std::string bytes;
  std::vector<op> ops;

  std::string_view view(std::size_t at, std::size_t size) const {
    return std::string_view(bytes).substr(at, size);
  }
  void add(std::string_view key, std::string_view value, bool remove) {
    auto key_at = bytes.size();
    bytes.append(key);
    auto value_at = bytes.size();
    bytes.append(value);
    ops.push_back({key_at, key.size(), value_at, value.size(), remove});
  }
};

partition_table::writes::writes(partition_table& table)
    : impl_(std::make_unique<impl>()) {
  impl_->family = table.handle_;
}
partition_table::writes::~writes() = default;
partition_table::writes::writes(writes&&) noexcept = default;

void partition_table::writes::put(std::string_view key, std::string_view value) {
  impl_->add(key, value, false);
}

void partition_table::writes::remove(std::string_view key) {
  impl_->add(key, {}, true);
}

bool partition_table::writes::empty() const {
  return impl_->ops.empty();
}

std::vector<std::optional<std::string>>
partition_table::get(const std::vector<std::string>& keys) {
  std::vector<std::optional<std::string>> out(keys.size());
  if (keys.empty()) return out;
  auto& db = *owner_->impl_->db;
  std::vector<rocksdb::Slice> slices;
  slices.reserve(keys.size());
  for (auto& k : keys)
    slices.emplace_back(k);
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db.MultiGet(rocksdb::ReadOptions(), handle_, keys.size(), slices.data(), values.data(),
              statuses.data());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].ok())
      out[i].emplace(values[i].data(), values[i].size());
    else if (!statuses[i].IsNotFound())
      check(statuses[i], "reading `" + name_ + "`");
  }
  return out;
}

std::optional<std::string> partition_table::get(std::string_view key) {
  std::string value;
  auto s = owner_->impl_->db->Get(rocksdb::ReadOptions(), handle_,
                                  rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::nullopt;
  check(s, "reading `" + name_ + "`");
  return value;
}

void partition_table::apply(writes& w) {
  auto& im = *w.impl_;
  if (im.ops.empty()) return;
  if (im.family != handle_)
    throw std::logic_error("writes of one table applied to another");
  // Stable: of two operations on one key, the later one wins.
  std::stable_sort(im.ops.begin(), im.ops.end(), [&](auto& a, auto& b) {
    return im.view(a.key_at, a.key_size) < im.view(b.key_at, b.key_size);
  });
  rocksdb::WriteBatch batch(im.bytes.size() + 32 * im.ops.size());
  for (auto& o : im.ops) {
    auto key = im.view(o.key_at, o.key_size);
    rocksdb::Slice k(key.data(), key.size());
    if (o.remove) {
      batch.Delete(im.family, k);
    } else {
      auto value = im.view(o.value_at, o.value_size);
      batch.Put(im.family, k, rocksdb::Slice(value.data(), value.size()));
    }
  }
  check(owner_->impl_->db->Write(owner_->impl_->write_options, &batch),
        "writing `" + name_ + "`");
  im.ops.clear();
  im.bytes.clear();
}

void partition_table::scan(
    std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& fn,
    std::string_view from) {
  if (from < prefix) from = prefix;
  // The upper bound lets RocksDB stop at the prefix's end instead of walking
  // on over deleted keys past it.
  auto end = successor(prefix);
  rocksdb::Slice lower(from.data(), from.size());
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions options;
  options.iterate_lower_bound = &lower;
  options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(owner_->impl_->db->NewIterator(options, handle_));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    auto k = it->key();
    std::string_view key(k.data(), k.size());
    if (!key.starts_with(prefix)) break;
    auto v = it->value();
    if (!fn(key, std::string_view(v.data(), v.size()))) break;
  }
  check(it->status(), "scanning `" + name_ + "`");
}

partition_table::lease partition_table::acquire(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock{lease_mutex_};
  ++waiting_;
  bool free = lease_released_.wait_for(lock, timeout, [this] { return !leased_; });
  --waiting_;
  if (!free) return {};
  leased_ = true;
  return lease(this);
}

void partition_table::lease::release() {
  if (!table_) return;
  {
    std::lock_guard<std::mutex> guard{table_->lease_mutex_};
    table_->leased_ = false;
  }
  table_->lease_released_.notify_all();
  table_ = nullptr;
}

void partition_table::clear() {
  // Every key starts with k, m, s or t: this range holds them all.
  const std::string end(16, '\xff');
  check(owner_->impl_->db->DeleteRange(owner_->impl_->write_options, handle_, "", end),
        "clearing `" + name_ + "`");
}

void partition_table::flush() {
  check(owner_->impl_->db->Flush(rocksdb::FlushOptions(), handle_),
        "flushing `" + name_ + "`");
}

} // namespace sluice::state
