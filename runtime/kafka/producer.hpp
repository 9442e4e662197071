#pragma once

#include "runtime/record.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

struct rd_kafka_s;

namespace sluice::kafka {

/// Counts the delivery reports of a group of messages (one batch) and calls
/// `on_done` once, from the producer's poll thread, when every message of the
/// group is reported and the group is sealed. It deletes itself afterwards.
class delivery_group {
public:
  using callback = std::function<void(const delivery_group&)>;

  explicit delivery_group(callback on_done) : on_done_(std::move(on_done)) {}

  /// One more message will be reported.
  void expect_one() noexcept { remaining_.fetch_add(1); }
  /// A message expected with expect_one() was not queued after all.
  void cancel_one() noexcept { remaining_.fetch_sub(1); }
  /// One message's delivery report.
  void report(bool ok, const char* why);
  /// No more messages will be added.
  void seal() { release(); }
  /// The sender gave up on the group (its actor died mid-batch): free it once
  /// the queued messages are reported, without calling `on_done`, so that a
  /// partly sent batch is never acknowledged.
  void abandon() {
    abandoned_.store(true);
    release();
  }

  /// First failure's text, if any message failed.
  const std::optional<std::string>& error() const noexcept { return error_; }
  std::size_t delivered() const noexcept { return delivered_.load(); }

private:
  void release();

  callback on_done_;
  std::atomic<std::size_t> remaining_{1}; // 1 until sealed
  std::atomic<std::size_t> delivered_{0};
  std::atomic<bool> abandoned_{false};
  std::mutex error_mutex_;
  std::optional<std::string> error_;
};

/// A librdkafka producer with its own delivery-report thread. `send` never
/// blocks; it is safe to call from any thread.
class producer {
public:
  enum class send_result { queued, queue_full };

  /// Throws config_error naming `<option_prefix>.kafka.<name>` for bad properties.
  producer(std::map<std::string, std::string> props, const std::string& option_prefix);
  ~producer();
  producer(const producer&) = delete;
  producer& operator=(const producer&) = delete;

  /// Queues one message for `group`. `queue_full` means: try again later.
  /// Throws fatal_error for errors that retrying cannot fix (unknown topic...).
  send_result send(delivery_group* group, std::string_view topic,
                   const std::optional<std::string>& key, std::string_view value,
                   const std::vector<header>& headers, std::int64_t timestamp_ms);

  /// Waits until every queued message is reported; false on timeout.
  bool flush(std::chrono::milliseconds timeout);

  /// Drops every queued and in-flight message, reporting each as failed,
  /// and waits for those reports.
  void purge();

  rd_kafka_s* handle() const noexcept { return rk_; }

private:
  rd_kafka_s* rk_ = nullptr;
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

} // namespace sluice::kafka
