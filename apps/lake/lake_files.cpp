#include "apps/lake/lake_files.hpp"

#include <boost/json/value.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <sys/file.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace sluice::lake {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void throw_errno(const std::string& what, const fs::path& path) {
  throw std::system_error(errno, std::generic_category(), what + " " + path.string());
}

/// fsync of a directory: makes the names in it (a rename, a new file) durable.
void sync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open directory", dir);
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) throw_errno("cannot sync directory", dir);
}

/// The first offset in `name` if it is `<prefix><partition>-<offset><suffix>`.
std::optional<std::int64_t> offset_in(std::string_view name, std::string_view prefix,
                                      std::int32_t partition, std::string_view suffix) {
  auto head = std::string(prefix) + std::to_string(partition) + "-";
  if (name.size() <= head.size() + suffix.size() || !name.starts_with(head) ||
      !name.ends_with(suffix))
    return std::nullopt;
  auto digits = name.substr(head.size(), name.size() - head.size() - suffix.size());
  std::int64_t offset = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), offset);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return offset;
}

/// Writes `content` to `path` through a hidden temporary beside it
/// (`.NAME.tmp`, which forget_from() removes): written, synced, renamed. The
/// directory is the caller's to sync.
void replace_durably(const fs::path& path, const std::string& content) {
  auto name = path.filename().string();
  auto temp = path.parent_path() / ((name.starts_with(".") ? "" : ".") + name + ".tmp");
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("cannot create", temp);
  std::size_t done = 0;
  while (done < content.size()) {
    auto n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int saved = errno;
      ::close(fd);
      errno = saved;
      throw_errno("cannot write", temp);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int saved = errno;
    ::close(fd);
    errno = saved;
    throw_errno("cannot sync", temp);
  }
  if (::close(fd) != 0) throw_errno("cannot close", temp);
  fs::rename(temp, path);
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_errno("cannot read", path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// The offsets an index file lists, one per line.
std::vector<std::int64_t> read_index(const fs::path& path) {
  std::vector<std::int64_t> out;
  auto text = read_all(path);
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    std::int64_t v = 0;
    auto [next, ec] = std::from_chars(p, end, v);
    if (ec != std::errc()) break;
    out.push_back(v);
    p = next;
    while (p < end && *p == '\n')
      ++p;
  }
  return out;
}

fs::path index_of(const fs::path& data) {
  return data.parent_path() / ("." + data.filename().string() + ".idx");
}

} // namespace

std::string utc_date(std::int64_t epoch_ms) {
  // Days to a civil date (Howard Hinnant's algorithm), flooring before 1970.
  auto days = epoch_ms / 86'400'000 - (epoch_ms % 86'400'000 < 0 ? 1 : 0);
  days += 719'468;
  auto era = (days >= 0 ? days : days - 146'096) / 146'097;
  auto doe = days - era * 146'097;
  auto yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365;
  auto doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  auto mp = (5 * doy + 2) / 153;
  auto day = doy - (153 * mp + 2) / 5 + 1;
  auto month = mp < 10 ? mp + 3 : mp - 9;
  auto year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  char out[64]; // room for any year an int64 of ms can hold
  std::snprintf(out, sizeof out, "%04lld-%02lld-%02lld", static_cast<long long>(year),
                static_cast<long long>(month), static_cast<long long>(day));
  return out;
}

std::optional<std::string> event_date(const record& rec, const std::string& date_field) {
  if (date_field.empty()) {
    if (rec.timestamp_ms < 0) return std::nullopt;
    return utc_date(rec.timestamp_ms);
  }
  switch (rec.fields.kind(date_field)) {
  case field_kind::string: {
    auto ms = parse_timestamp_ms(*rec.fields.get<std::string_view>(date_field));
    if (!ms) return std::nullopt;
    return utc_date(*ms);
  }
  case field_kind::integer: {
    // Epoch milliseconds. A number below 10^11 (before 1973-03-03 in ms) is
    // almost surely seconds: no date rather than a wrong one.
    constexpr std::int64_t seconds_below = 100'000'000'000;
    std::int64_t ms = 0;
    try {
      ms = *rec.fields.get<std::int64_t>(date_field);
    } catch (const field_error&) {
      return std::nullopt; // beyond 64 bits
    }
    if (ms < seconds_below) return std::nullopt;
    return utc_date(ms);
  }
  default:
    return std::nullopt;
  }
}

partition_files::partition_files(fs::path root, std::string topic, std::int32_t partition,
                                 std::chrono::milliseconds lock_wait)
    : topic_dir_(std::move(root) / topic), partition_(partition) {
  fs::create_directories(topic_dir_);
  // Never removed: a writer waiting on a removed lock file would lock nothing.
  auto lock = topic_dir_ / (".lock-" + std::to_string(partition_));
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) throw_errno("cannot open the lock file", lock);
  auto give_up = std::chrono::steady_clock::now() + lock_wait;
  while (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int saved = errno;
      ::close(lock_fd_);
      errno = saved;
      throw_errno("cannot lock", lock);
    }
    if (std::chrono::steady_clock::now() >= give_up) {
      ::close(lock_fd_);
      throw std::runtime_error("partition " + std::to_string(partition_) + " of `" +
                               topic + "` is still written by another writer (" +
                               lock.string() + " is locked after " +
                               std::to_string(lock_wait.count()) +
                               " ms): one lake per directory and consumer group");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

partition_files::~partition_files() {
  for (auto& [date, f] : open_) {
    if (f.fd >= 0) ::close(f.fd);
    std::error_code ignored;
    fs::remove(f.temp, ignored);
  }
  ::close(lock_fd_); // releases the lock, last
}

std::size_t partition_files::forget_from(std::int64_t offset) {
  std::error_code ec;
  if (!fs::is_directory(topic_dir_, ec)) return 0;
  std::size_t removed = 0;
  for (auto& day : fs::directory_iterator(topic_dir_)) {
    auto day_name = day.path().filename().string();
    if (!day.is_directory() || !day_name.starts_with("dt=")) continue;
    bool changed = false;
    std::vector<fs::path> indexes;
    for (auto& file : fs::directory_iterator(day.path())) {
      auto name = file.path().filename().string();
      auto temp = offset_in(name, ".part-", partition_, ".jsonl.tmp");
      auto index_temp = offset_in(name, ".part-", partition_, ".jsonl.idx.tmp");
      auto published = offset_in(name, "part-", partition_, ".jsonl");
      if (offset_in(name, ".part-", partition_, ".jsonl.idx"))
        indexes.push_back(file.path());
      if (temp || index_temp || (published && *published >= offset)) {
        fs::remove(file.path());
        changed = true;
        ++removed;
        continue;
      }
      if (!published) continue;
      // A file from before `offset` whose tail is past it (a commit fell
      // between two batches of one publish): keep its head only.
      std::error_code ec;
      auto index = index_of(file.path());
      if (!fs::exists(index, ec)) continue;
      auto offsets = read_index(index);
      auto text = read_all(file.path());
      // An index that does not list every line cannot say where to cut.
      auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
      if (lines != offsets.size())
        throw std::runtime_error(
            "the offset index " + index.string() + " lists " +
            std::to_string(offsets.size()) + " offsets for " + std::to_string(lines) +
            " lines of " + file.path().string() +
            ": cannot cut the file where the run starts; remove both "
            "if that file's records may be written again");
      auto keep = static_cast<std::size_t>(
          std::lower_bound(offsets.begin(), offsets.end(), offset) - offsets.begin());
      if (keep == offsets.size()) continue;
      std::size_t at = 0;
      for (std::size_t i = 0; i < keep && at != std::string::npos; ++i) {
        at = text.find('\n', at);
        if (at != std::string::npos) ++at;
      }
      text.resize(at == std::string::npos ? text.size() : at);
      replace_durably(file.path(), text); // the data first: its index may stay longer
      std::string listed;
      for (std::size_t i = 0; i < keep; ++i)
        listed += std::to_string(offsets[i]) + "\n";
      replace_durably(index, listed);
      changed = true;
      ++removed;
    }
    // Indexes whose file is gone.
    for (auto& index : indexes) {
      auto name = index.filename().string(); // .part-P-O.jsonl.idx
      auto data = index.parent_path() / name.substr(1, name.size() - 5);
      std::error_code ec;
      if (!fs::exists(data, ec)) {
        fs::remove(index, ec);
        changed = true;
      }
    }
    if (changed) sync_directory(day.path());
  }
  return removed;
}

void partition_files::append(const std::string& date, std::int64_t offset,
                             std::string_view line) {
  auto at = open_.find(date);
  if (at == open_.end()) {
    auto dir = topic_dir_ / ("dt=" + date);
    fs::create_directories(dir);
    auto base = "part-" + std::to_string(partition_) + "-" + std::to_string(offset);
    open_file f;
    f.first_offset = offset;
    f.temp = dir / ("." + base + ".jsonl.tmp");
    f.final_path = dir / (base + ".jsonl");
    f.fd = ::open(f.temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f.fd < 0) throw_errno("cannot create", f.temp);
    at = open_.emplace(date, std::move(f)).first;
  }
  auto& f = at->second;
  f.offsets.push_back(offset);
  f.buffer.append(line);
  f.buffer.push_back('\n');
  ++pending_lines_;
  if (f.buffer.size() >= (1u << 20)) flush_buffer(f);
}

void partition_files::flush_buffer(open_file& f) {
  std::size_t done = 0;
  while (done < f.buffer.size()) {
    auto n = ::write(f.fd, f.buffer.data() + done, f.buffer.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("cannot write", f.temp);
    done += static_cast<std::size_t>(n);
  }
  f.buffer.clear();
}

std::vector<fs::path> partition_files::publish() {
  std::vector<fs::path> out;
  std::set<fs::path> dirs;
  for (auto& [date, f] : open_) {
    flush_buffer(f);
    if (::fsync(f.fd) != 0) throw_errno("cannot sync", f.temp);
    if (::close(f.fd) != 0) {
      f.fd = -1;
      throw_errno("cannot close", f.temp);
    }
    f.fd = -1;
    // The index first: a visible file always has one.
    std::string listed;
    for (auto o : f.offsets)
      listed += std::to_string(o) + "\n";
    replace_durably(index_of(f.final_path), listed);
    fs::rename(f.temp, f.final_path);
    dirs.insert(f.final_path.parent_path());
    out.push_back(f.final_path);
  }
  open_.clear();
  pending_lines_ = 0;
  // The renames, and directories made since the last publish, durable too.
  for (auto& d : dirs)
    sync_directory(d);
  if (!dirs.empty()) {
    sync_directory(topic_dir_);
    sync_directory(topic_dir_.parent_path());
  }
  return out;
}

} // namespace sluice::lake
