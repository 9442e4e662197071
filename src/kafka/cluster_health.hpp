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

  /// The cluster answered: what brokers failed with before is history. Kept,
  /// a "Connection refused" from a broker restarted long ago would be named
  /// as the cause of a later, unrelated failure. Called for every delivered
  /// message: without a noted error it costs one relaxed load.
  void mark_up() {
    down_since_.store(clock::time_point{}.time_since_epoch().count());
    if (!has_cause_.load(std::memory_order_relaxed) || !has_cause_.exchange(false))
      return;
    std::lock_guard<std::mutex> guard{mutex_};
    broker_error_.clear();
    certificate_error_.clear();
  }

  bool down() const { return down_since_.load() != 0; }

  /// How long the cluster has been unreachable; zero when it is reachable.
  std::chrono::milliseconds down_for() const {
    auto since = down_since_.load();
    if (since == 0) return std::chrono::milliseconds(0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        clock::now() - clock::time_point(clock::duration(since)));
  }

  /// A broker's own failure (a refused password, a certificate that does not
  /// verify, a refused connection): the cause behind "all brokers are down",
  /// held until the cluster answers again (mark_up).
  void note_broker_error(const std::string& why) {
    std::lock_guard<std::mutex> guard{mutex_};
    broker_error_ = why;
    has_cause_.store(true);
  }

  /// Why a certificate was refused, from the verify callback (it comes
  /// before librdkafka's more general "SSL handshake failed").
  void note_certificate_error(const std::string& why) {
    std::lock_guard<std::mutex> guard{mutex_};
    certificate_error_ = why;
    has_cause_.store(true);
  }

  /// The last error, with the broker failure and certificate verdict that
  /// explain it, when there were any.
  std::string last_error() const {
    std::lock_guard<std::mutex> guard{mutex_};
    auto out = last_error_;
    auto add = [&](const std::string& label, const std::string& what) {
      if (what.empty() || what == last_error_) return;
      out += (out.empty() ? "" : "; ") + label + what;
    };
    add("last broker error: ", broker_error_);
    add("certificate check: ", certificate_error_);
    return out;
  }

  /// The broker failure and certificate verdict alone ("" when none).
  std::string cause() const {
    std::lock_guard<std::mutex> guard{mutex_};
    if (certificate_error_.empty()) return broker_error_;
    return broker_error_ + (broker_error_.empty() ? "" : "; ") +
           "certificate check: " + certificate_error_;
  }

private:
  std::atomic<clock::rep> down_since_{0};
  std::atomic<bool> has_cause_{false}; ///< a broker or certificate error is held
  mutable std::mutex mutex_;
  std::string last_error_;
  std::string broker_error_;
  std::string certificate_error_;
};

} // namespace sluice::kafka
