#pragma once

// The files of Kafka -> files (`sluice lake`): JSON Lines by event date,
// made visible only once durable. Plain C++ and POSIX: no actors here.

#include <sluice/record.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::lake {

/// The UTC date (YYYY-MM-DD) of an instant in ms since the epoch.
std::string utc_date(std::int64_t epoch_ms);

/// The event date of a record: from `date_field` (an ISO-8601 text or epoch
/// ms) or, without one, from its Kafka timestamp. Nullopt when there is none:
/// the field is missing, null, or not a time.
std::optional<std::string> event_date(const record& rec, const std::string& date_field);

/// One partition's files under `root/<topic>/dt=<date>/`. Lines go to hidden
/// temporary files (`.part-<partition>-<first offset>.jsonl.tmp`, one per
/// date); publish() makes them durable (fsync) and visible under their final
/// names (`part-<partition>-<first offset>.jsonl`) by rename, then syncs the
/// directories. Readers never see a half file: a kill leaves only hidden
/// temporaries, which forget_from() removes at the next start. Each file has
/// a hidden index of its lines' offsets (`.part-<p>-<o>.jsonl.idx`, published
/// first), so that a restart can cut a file at any offset.
///
/// One writer per partition at a time, across threads and processes: the
/// constructor takes an exclusive lock (`<topic>/.lock-<partition>`, flock),
/// waiting up to `lock_wait` for an earlier writer to end, and holds it
/// until destruction.
class partition_files {
public:
  partition_files(std::filesystem::path root, std::string topic, std::int32_t partition,
                  std::chrono::milliseconds lock_wait = std::chrono::seconds(60));
  ~partition_files(); // removes unpublished temporaries, then releases the lock
  partition_files(const partition_files&) = delete;
  partition_files& operator=(const partition_files&) = delete;

  /// Removes what a run before this one wrote from `offset` on: hidden
  /// temporaries, published files whose first offset is `offset` or later,
  /// and the lines from `offset` on of a file that started before it (the
  /// file is replaced, whole, by its head). Those records were not committed:
  /// they are read again and written anew, so after a crash no offset is in
  /// two files. Returns the number of files removed or cut.
  std::size_t forget_from(std::int64_t offset);

  /// Adds one line (without its newline) for the record at `offset`.
  void append(const std::string& date, std::int64_t offset, std::string_view line);

  /// Lines appended since the last publish().
  std::int64_t pending_lines() const noexcept { return pending_lines_; }

  /// Writes, syncs and renames every open file; throws std::system_error
  /// (nothing is then published for sure: the chain fails and reads again).
  /// Returns the paths published, in date order.
  std::vector<std::filesystem::path> publish();

private:
  struct open_file {
    int fd = -1;
    std::int64_t first_offset = 0;
    std::filesystem::path temp;
    std::filesystem::path final_path;
    std::string buffer;                // lines not yet written to fd
    std::vector<std::int64_t> offsets; // of every line, in order
  };
  void flush_buffer(open_file& f);
  std::filesystem::path topic_dir_;
  std::int32_t partition_;
  int lock_fd_ = -1;
  std::map<std::string, open_file> open_; // by date
  std::int64_t pending_lines_ = 0;
};

} // namespace sluice::lake
