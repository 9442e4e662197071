#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

namespace sluice::kafka {

/// Whether a client can reach its cluster. librdkafka only says when every
/// broker went down (`ALL_BROKERS_DOWN`), never when one comes back, so the
/// client that owns this marks it down on that error and up again when a
/// probe (a metadata request) or any successful exchange answers.
/// Written by a client's poll thread, read by any thread.
class cluster_health {
public:
  using clock = std::chrono::steady_clock;

  void mark_down(const std::string& why) {
    std::lock_guard<std::mutex> guard{mutex_};
    last_error_ = why;
    auto none = clock::time_point{}.time_since_epoch().count();
    down_since_.compare_exchange_strong(none, clock::now().time_since_epoch().count());
  }

  void mark_up() { down_since_.store(clock::time_point{}.time_since_epoch().count()); }

  bool down() const { return down_since_.load() != 0; }

  /// How long the cluster has been unreachable; zero when it is reachable.
  std::chrono::milliseconds down_for() const {
    auto since = down_since_.load();
    if (since == 0) return std::chrono::milliseconds(0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        clock::now() - clock::time_point(clock::duration(since)));
  }

  std::string last_error() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return last_error_;
  }

private:
  std::atomic<clock::rep> down_since_{0};
  mutable std::mutex mutex_;
  std::string last_error_;
};

} // namespace sluice::kafka
