#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>

namespace sluice::actors {

/// What a run waits for: a stop asked for, a bounded run complete, or a
/// fatal error (the first is kept). Set from any thread: the app's, the
/// actors', librdkafka's.
class run_control {
public:
  void request_stop() {
    std::lock_guard<std::mutex> guard{mutex_};
    stop_requested_ = true;
    changed_.notify_all();
  }
  void mark_complete() {
    std::lock_guard<std::mutex> guard{mutex_};
    complete_ = true;
    changed_.notify_all();
  }
  void fail(const std::string& why) {
    std::lock_guard<std::mutex> guard{mutex_};
    if (!fatal_) fatal_ = why;
    changed_.notify_all();
  }
  bool stop_requested() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return stop_requested_;
  }
  /// A stop was asked for, the run is complete or failed: its actors may be gone.
  bool ending() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return stop_requested_ || complete_ || fatal_.has_value();
  }
  std::optional<std::string> fatal() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return fatal_;
  }
  /// Blocks until the run should end.
  void wait_for_end() {
    std::unique_lock<std::mutex> lock{mutex_};
    changed_.wait(lock, [this] { return stop_requested_ || complete_ || fatal_; });
  }
  /// The first assignment of a partition (processing time counts from it).
  void note_assigned() {
    std::lock_guard<std::mutex> guard{mutex_};
    if (!first_assigned_) first_assigned_ = std::chrono::steady_clock::now();
  }
  std::optional<std::chrono::steady_clock::time_point> first_assigned() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return first_assigned_;
  }

private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool stop_requested_ = false;
  bool complete_ = false;
  std::optional<std::string> fatal_;
  std::optional<std::chrono::steady_clock::time_point> first_assigned_;
};

} // namespace sluice::actors
