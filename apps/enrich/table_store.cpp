#include "apps/enrich/table_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <stdexcept>

namespace sluice::enrich {

namespace {

// Rows and read positions share one key space, told apart by a first byte.
constexpr char row_tag = 'r';
constexpr char offset_tag = 'o';
const std::string topic_key = "m/topic"; // 'm': what the store is of

std::string row_key(std::string_view key) {
  std::string k(1, row_tag);
  k.append(key);
  return k;
}

std::string offset_key(std::int32_t partition) {
  return std::string(1, offset_tag) + std::to_string(partition);
}

} // namespace

struct table_store::impl {
  std::unique_ptr<rocksdb::DB> db;
};

table_store::table_store(const std::string& dir) : impl_(std::make_unique<impl>()) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(options, dir, &db);
  if (!s.ok())
    throw std::runtime_error("cannot open the table's state in `" + dir +
                             "`: " + s.ToString());
  impl_->db.reset(db);
}

table_store::~table_store() = default;

void table_store::apply(std::int32_t partition, const std::vector<table_change>& changes,
                        std::int64_t next_offset) {
  rocksdb::WriteBatch batch;
  for (auto& c : changes)
    if (c.value)
      batch.Put(row_key(c.key), *c.value);
    else
      batch.Delete(row_key(c.key));
  batch.Put(offset_key(partition), std::to_string(next_offset));
  auto s = impl_->db->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok())
    throw std::runtime_error("cannot write the table's state: " + s.ToString());
}

void table_store::bind_topic(const std::string& topic) {
  std::string held;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), topic_key, &held);
  if (s.ok() && held != topic)
    throw std::runtime_error("the directory holds the table of `" + held + "`, not `" +
                             topic + "`: use another directory");
  if (s.IsNotFound()) s = impl_->db->Put(rocksdb::WriteOptions(), topic_key, topic);
  if (!s.ok()) throw std::runtime_error("cannot use the table's state: " + s.ToString());
}

std::optional<std::string> table_store::get(std::string_view key) const {
  std::string value;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), row_key(key), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) throw std::runtime_error("cannot read the table's state: " + s.ToString());
  return value;
}

std::map<std::int32_t, std::int64_t> table_store::offsets() const {
  std::map<std::int32_t, std::int64_t> out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(std::string(1, offset_tag));
       it->Valid() && it->key().size() > 0 && it->key()[0] == offset_tag; it->Next())
    out[std::stoi(it->key().ToString().substr(1))] = std::stoll(it->value().ToString());
  return out;
}

std::int64_t table_store::estimated_keys() const {
  std::uint64_t n = 0;
  impl_->db->GetIntProperty("rocksdb.estimate-num-keys", &n);
  return static_cast<std::int64_t>(n);
}

} // namespace sluice::enrich
