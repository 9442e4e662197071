#include "apps/lake/lake_files.hpp"

#include <boost/json/value.hpp>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fcntl.h>
#include <set>
#include <system_error>
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
  auto* v = rec.parsed.if_contains(date_field);
  if (!v) return std::nullopt;
  if (v->is_string()) {
    auto ms = timestamp_ms(v->get_string());
    if (!ms) return std::nullopt;
    return utc_date(*ms);
  }
  if (v->is_int64()) return utc_date(v->get_int64());
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return utc_date(static_cast<std::int64_t>(v->get_uint64()));
  return std::nullopt;
}

partition_files::partition_files(fs::path root, std::string topic, std::int32_t partition)
    : topic_dir_(std::move(root) / topic), partition_(partition) {}

partition_files::~partition_files() {
  for (auto& [date, f] : open_) {
    ::close(f.fd);
    std::error_code ignored;
    fs::remove(f.temp, ignored);
  }
}

std::size_t partition_files::forget_from(std::int64_t offset) {
  std::error_code ec;
  if (!fs::is_directory(topic_dir_, ec)) return 0;
  std::size_t removed = 0;
  for (auto& day : fs::directory_iterator(topic_dir_)) {
    auto day_name = day.path().filename().string();
    if (!day.is_directory() || !day_name.starts_with("dt=")) continue;
    bool changed = false;
    for (auto& file : fs::directory_iterator(day.path())) {
      auto name = file.path().filename().string();
      auto temp = offset_in(name, ".part-", partition_, ".jsonl.tmp");
      auto published = offset_in(name, "part-", partition_, ".jsonl");
      if (temp || (published && *published >= offset)) {
        fs::remove(file.path());
        changed = true;
        ++removed;
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
