#pragma once

#include <atomic>
#include <cstdint>

namespace sluice {

/// One partition's credit, the backpressure of a chain: at most `records`
/// records in flight (read and not yet acknowledged by the sink) for the
/// partition, and at most `bytes` in flight for all partitions together (a
/// counter they share). Owned by the partition's consumer actor; what it
/// holds goes back to the shared counter when it is destroyed (a dead chain).
///
/// The bytes in flight are the records' raw bytes (key, value, headers) plus,
/// when given, `parsed_bytes`: the memory their parsed rows hold (batch
/// arenas add and remove it), several times the raw bytes.
class credit_ledger {
public:
  credit_ledger(std::int64_t records, std::int64_t batch_records, std::int64_t bytes,
                std::atomic<std::int64_t>& shared_bytes,
                std::atomic<std::int64_t>& max_shared_bytes,
                const std::atomic<std::int64_t>* parsed_bytes = nullptr)
      : records_(records), batch_records_(batch_records), bytes_(bytes),
        shared_bytes_(&shared_bytes), max_shared_bytes_(&max_shared_bytes),
        parsed_bytes_(parsed_bytes) {}
  credit_ledger(const credit_ledger&) = delete;
  credit_ledger& operator=(const credit_ledger&) = delete;
  ~credit_ledger() { *shared_bytes_ -= bytes_in_flight_; }

  /// Records that may be read now (0 or less: none).
  std::int64_t room() const { return records_ - in_flight_; }
  /// Every partition's bytes in flight together use up the byte credit.
  bool bytes_spent() const { return shared_bytes_->load() + parsed() >= bytes_; }

  /// Out of credit: true the first time, so that a pause is counted once.
  bool stall() {
    if (stalled_) return false;
    stalled_ = true;
    return true;
  }
  void unstall() { stalled_ = false; }
  bool stalled() const { return stalled_; }
  /// Stalled, and enough came back for a whole batch: read again.
  bool resume_due() const { return stalled_ && in_flight_ <= records_ - batch_records_; }

  /// A batch was read and sent down the chain.
  void issue(std::int64_t records, std::int64_t bytes) {
    in_flight_ += records;
    bytes_in_flight_ += bytes;
    auto total = (*shared_bytes_ += bytes) + parsed();
    auto seen = max_shared_bytes_->load();
    while (total > seen && !max_shared_bytes_->compare_exchange_weak(seen, total)) {
    }
  }
  /// A batch was acknowledged: its credit comes back.
  void settle(std::int64_t records, std::int64_t bytes) {
    in_flight_ -= records;
    bytes_in_flight_ -= bytes;
    *shared_bytes_ -= bytes;
  }

  std::int64_t in_flight() const { return in_flight_; }
  std::int64_t records() const { return records_; }
  std::int64_t batch_records() const { return batch_records_; }
  std::int64_t bytes() const { return bytes_; }

private:
  std::int64_t parsed() const { return parsed_bytes_ ? parsed_bytes_->load() : 0; }

  std::int64_t records_;
  std::int64_t batch_records_;
  std::int64_t bytes_;
  std::atomic<std::int64_t>* shared_bytes_;
  std::atomic<std::int64_t>* max_shared_bytes_;
  const std::atomic<std::int64_t>* parsed_bytes_;
  std::int64_t in_flight_ = 0;
  std::int64_t bytes_in_flight_ = 0;
  bool stalled_ = false;
};

} // namespace sluice
