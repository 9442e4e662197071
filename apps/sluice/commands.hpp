#pragma once

#include <sluice/errors.hpp>
#include <sluice/pipeline.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace sluice::app {

struct broker_args {
  int brokers = 3;
  std::vector<std::string> topics; ///< NAME:PARTITIONS
  std::string bootstrap_file;
};

struct produce_args {
  std::string bootstrap;
  std::string topic;
  std::int64_t count = 0;
  std::optional<double> rate;
  double malformed_fraction = 0.0;
  double duplicate_fraction = 0.0;
  std::uint64_t seed = 1;
  std::int64_t value_bytes = 0; ///< 0: the events' own size
};

struct run_args {
  std::string pipeline_file;
  std::vector<std::string> overrides;
};

/// `sluice lake`: Kafka -> JSON Lines files by event date.
struct lake_args {
  std::string bootstrap;
  std::vector<std::string> topics;
  std::string dir;
  std::string group = "sluice-lake";
  std::string starting = "earliest";
  bool available_now = false;
  std::string dlq;
  std::string date_field;
  std::int64_t file_records = 5000;
  std::string file_interval = "2 seconds";
  std::vector<std::string> kafka; ///< NAME=VALUE, for both clients
};

/// `sluice ingest`: files or stdin -> Kafka.
struct ingest_args {
  std::string bootstrap;
  std::string topic;
  std::string key_field;
  std::vector<std::string> headers; ///< NAME=VALUE
  std::string reject_file;
  std::vector<std::string> kafka;  ///< NAME=VALUE, producer properties
  std::vector<std::string> inputs; ///< files; none or "-": stdin
};

/// `sluice enrich`: a stream joined with a table from a compacted topic.
struct enrich_args {
  std::string bootstrap;
  std::vector<std::string> topics; ///< the stream
  std::string table;               ///< the compacted topic
  std::string key_field;
  std::string to;
  std::string table_fields; ///< comma-separated; empty: all
  std::string missing = "dlq";
  std::string dlq;
  std::string state_dir;
  std::string group = "sluice-enrich";
  std::string starting = "earliest";
  bool available_now = false;
  std::vector<std::string> kafka;
};

struct demo_args {
  std::int64_t events = 300000;
  double malformed_fraction = 0.02;
  double duplicate_fraction = 0.05;
};

/// A client property's error, named as the pattern apps' flag spells it:
/// `source.kafka.X` and `sink.kafka.X` become `--kafka X`; others unchanged.
config_error as_flag_error(const config_error& e);

/// Prints a progress report as one JSON line on stdout.
void print_progress(const epoch_progress& progress);

/// Runs `p` until its end, or until SIGINT/SIGTERM (then it drains and
/// commits; a second signal exits at once). Call block_stop_signals() first.
/// Takes SIGINT/SIGTERM (blocked with block_stop_signals()) on a thread of
/// its own while it lives: the first calls `on_first` and logs `what_first`
/// (what happens now); a second, half a second or more later, logs
/// `what_second` (what is left undone) and exits the process at once.
class signal_watcher {
public:
  signal_watcher(std::string what_first, std::string what_second,
                 std::function<void()> on_first);
  ~signal_watcher();
  signal_watcher(const signal_watcher&) = delete;
  signal_watcher& operator=(const signal_watcher&) = delete;
  bool signalled() const noexcept { return signalled_.load(); }

private:
  std::atomic<bool> finished_{false}, signalled_{false};
  std::thread thread_; // last: it uses the flags above
};

/// `signalled`, when given, says whether a signal stopped it.
run_summary run_until_signal(pipeline& p, bool* signalled = nullptr);

int run_broker(const broker_args& args);
int run_produce(const produce_args& args);
int run_pipeline(const run_args& args);
/// `sluice plan`: where a run would start and stop, as one JSON document.
int run_plan(const run_args& args);
int run_demo(const demo_args& args);
int run_lake(const lake_args& args);
int run_ingest(const ingest_args& args);
int run_enrich(const enrich_args& args);

/// `--kafka NAME=VALUE` of the pattern apps, to the clients that take it:
/// producer-only properties to the sink, consumer-only ones to the source,
/// the rest (security...) to both.
void add_client_properties(const std::vector<std::string>& properties,
                           source_options& source, sink_options& sink);
void print_options(std::ostream& out);

/// Blocks SIGINT and SIGTERM in every thread started afterwards, so that one
/// watcher thread can take them with sigwait. Call first thing.
void block_stop_signals();

/// Waits (up to `timeout_ms`, or forever when negative) for SIGINT/SIGTERM.
bool wait_stop_signal(int timeout_ms);

} // namespace sluice::app
