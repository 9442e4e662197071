// sluice::topic_writer: the public way to write records to Kafka, on the
// sink's producer (idempotent, acks=all, a replacement after a fatal error).

#include "kafka/producer.hpp"

#include <sluice/errors.hpp>
#include <sluice/writer.hpp>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace sluice {

namespace {

/// Records per delivery group: a group reports once all of its records are.
constexpr std::size_t group_size = 1000;

/// The producer's properties, once the options pass the sink's checks.
std::map<std::string, std::string> checked_properties(const sink_options& options) {
  validate(options);
  auto props = options.kafka;
  props["bootstrap.servers"] = options.bootstrap_servers;
  return props;
}

} // namespace

struct topic_writer::impl {
  explicit impl(sink_options options) : producer(checked_properties(options), "sink") {
    producer.on_unrecoverable([this](const std::string& why) {
      std::lock_guard<std::mutex> guard{mutex};
      fatal = why;
    });
  }

  // The open group: records written since it was opened, by topic.
  kafka::delivery_group* group = nullptr;
  std::size_t in_group = 0;
  // std::less<>: counted by the topic's view, no string made per record.
  std::shared_ptr<std::map<std::string, std::int64_t, std::less<>>> group_topics;

  mutable std::mutex mutex; // guards what the poll thread reports into
  std::condition_variable reported;
  std::int64_t open_groups = 0;
  std::int64_t in_flight = 0;
  write_summary since_flush;
  std::string fatal;

  // Declared last, so destroyed first: its poll threads report into the
  // members above until they are joined.
  kafka::producer producer;
  kafka::producer::lease instance; // of the open group

  void seal() {
    if (!group) return;
    auto* g = group;
    group = nullptr;
    in_group = 0;
    instance.reset();
    g->seal(); // may report at once, from this thread
  }

  void open() {
    instance = producer.current();
    group_topics = std::make_shared<std::map<std::string, std::int64_t, std::less<>>>();
    // Runs once the group is sealed and every record of it reported: the
    // writer thread no longer touches its topic counts.
    group = new kafka::delivery_group(
        [this, counts = group_topics](const kafka::delivery_group& g) {
          std::lock_guard<std::mutex> guard{mutex};
          auto& topics = *counts;
          for (auto& f : g.failures()) {
            --topics[f.topic];
            since_flush.failures.push_back(
                write_failure{static_cast<std::uint64_t>(f.index), f.topic, f.reason,
                              f.permanent, f.key, f.value, f.headers});
          }
          for (auto& [topic, n] : topics) {
            if (n == 0) continue;
            since_flush.written_by_topic[topic] += n;
            since_flush.written += n;
            in_flight -= n;
          }
          in_flight -= static_cast<std::int64_t>(g.failures().size());
          --open_groups;
          reported.notify_all();
        });
    std::lock_guard<std::mutex> guard{mutex};
    ++open_groups;
  }

  void check_fatal() {
    std::lock_guard<std::mutex> guard{mutex};
    if (!fatal.empty()) throw fatal_error("cannot write to Kafka any more: " + fatal);
  }
};

topic_writer::topic_writer(sink_options options)
    : impl_(std::make_unique<impl>(std::move(options))) {}

topic_writer::~topic_writer() {
  try {
    flush();
  } catch (...) {
    // What was not reported stays unwritten; flush() is where a caller learns it.
  }
}

void topic_writer::write(std::string_view topic, const record& rec, std::uint64_t tag) {
  auto& im = *impl_;
  im.check_fatal();
  if (!im.group) im.open();
  auto handle = im.producer.topic(im.instance, topic);
  std::string_view value = rec.value ? std::string_view(*rec.value) : std::string_view();
  auto give_up = std::chrono::steady_clock::now() + im.producer.delivery_timeout();
  for (;;) {
    kafka::producer::send_result res;
    try {
      res = im.producer.send(im.group, static_cast<std::size_t>(tag), handle, rec.key,
                             value, rec.headers, rec.timestamp_ms);
    } catch (const fatal_error&) {
      // The instance ended in a fatal error; the producer makes a new one on
      // its poll thread, soon after: the open group goes on its old
      // instance's reports, the record to the new one.
      auto wait_until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (im.producer.current() == im.instance &&
             std::chrono::steady_clock::now() < wait_until) {
        im.check_fatal(); // no new one will come
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (im.producer.current() == im.instance) throw;
      im.seal();
      im.open();
      handle = im.producer.topic(im.instance, topic);
      continue;
    }
    if (res == kafka::producer::send_result::queued) break;
    if (res == kafka::producer::send_result::too_large) {
      std::lock_guard<std::mutex> guard{im.mutex};
      im.since_flush.failures.push_back(
          write_failure{tag, std::string(topic),
                        "the record (" + std::to_string(value.size()) +
                            " bytes) is larger than the producer's message.max.bytes",
                        true, rec.key, rec.value, rec.headers});
      return;
    }
    // The queue is full: the cluster is slower than the writer, or away.
    if (std::chrono::steady_clock::now() > give_up)
      throw fatal_error("cannot write to Kafka: its queue stayed full for " +
                        std::to_string(im.producer.delivery_timeout().count()) + " ms");
    im.check_fatal();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto& counts = *im.group_topics;
  if (auto it = counts.find(topic); it != counts.end())
    ++it->second;
  else
    counts.emplace(std::string(topic), 1);
  {
    std::lock_guard<std::mutex> guard{im.mutex};
    ++im.in_flight;
  }
  if (++im.in_group >= group_size) im.seal();
}

write_summary topic_writer::flush() {
  auto& im = *impl_;
  im.seal();
  // librdkafka reports a timed-out record some seconds after its timeout
  // (11 s for 5 s with the broker gone, measured): the wait is generous.
  auto timeout = im.producer.delivery_timeout();
  auto deadline = std::chrono::steady_clock::now() + timeout +
                  std::max<std::chrono::milliseconds>(timeout, std::chrono::seconds(30));
  std::unique_lock<std::mutex> lock{im.mutex};
  if (!im.reported.wait_until(lock, deadline, [&] { return im.open_groups == 0; }))
    throw fatal_error("Kafka did not report " + std::to_string(im.in_flight) +
                      " record(s) within the delivery timeout");
  write_summary out;
  std::swap(out, im.since_flush);
  return out;
}

std::int64_t topic_writer::in_flight() const {
  std::lock_guard<std::mutex> guard{impl_->mutex};
  return impl_->in_flight;
}

} // namespace sluice
