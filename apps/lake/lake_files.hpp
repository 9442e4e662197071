#pragma once

// The files of Kafka -> files (`sluice lake`): JSON Lines by event date,
// made visible only once durable. Plain C++ and POSIX: no actors here.

#include <sluice/record.hpp>

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
/// temporaries, which forget_from() removes at the next start.
class partition_files {
public:
  partition_files(std::filesystem::path root, std::string topic, std::int32_t partition);
  ~partition_files(); // closes, and leaves, unpublished temporaries
  partition_files(const partition_files&) = delete;
  partition_files& operator=(const partition_files&) = delete;

  /// Removes what a run before this one wrote from `offset` on: its hidden
  /// temporaries, and the published files whose first offset is `offset` or
  /// later. Those records were not committed, so they are read again and
  /// written anew: after a crash no offset is in two files. Returns the
  /// number of files removed.
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
    std::string buffer; // lines not yet written to fd
  };
  void flush_buffer(open_file& f);
  std::filesystem::path topic_dir_;
  std::int32_t partition_;
  std::map<std::string, open_file> open_; // by date
  std::int64_t pending_lines_ = 0;
};

} // namespace sluice::lake
