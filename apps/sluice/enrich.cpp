// `sluice enrich`: a stream joined with a table kept from a compacted topic,
// on the public API. Two pipelines: the table's (its partitions assigned,
// from where the table's store stands; its last stage writes each record
// into RocksDB) and the stream's (a map that looks each record up, then a
// route to one topic). The table is restored to the topic's end first, then
// kept up to date while the stream runs.

#include "apps/enrich/enrich.hpp"

#include "apps/sluice/commands.hpp"

#include <sluice/builder.hpp>
#include <sluice/errors.hpp>
#include <sluice/plan.hpp>

#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace sluice::app {

namespace {

/// The table's pipeline: every partition of `table`, from where the store
/// stands (its start when the store has nothing), to the end (`restore`) or
/// without end.
std::unique_ptr<pipeline> table_pipeline(const enrich_args& args, source_options source,
                                         const sink_options& sink,
                                         std::shared_ptr<enrich::table_store> store,
                                         const std::vector<kafka::topic_partition>& parts,
                                         bool restore) {
  source.subscription = subscription_kind::assign;
  source.subscribe.clear();
  source.assign = parts;
  source.starting = starting_offsets::specific;
  auto at = store->offsets();
  for (auto& tp : parts)
    source.starting_specific[tp] = at.contains(tp.partition) ? at[tp.partition] : -2;
  // Compaction leaves gaps; a table read from a deleted offset goes on.
  source.fail_on_data_loss = false;
  // The store says where each partition stands; the group's commits do not.
  source.start_from_commits = false;
  source.ending_latest = restore;
  source.group_id = args.group + "-table";
  parse_options parse;
  parse.tombstones = tombstone_policy::pass; // deletes
  trigger_options trigger;
  if (restore) trigger.mode = trigger_options::kind::available_now;
  auto b = pipeline_builder("enrich-table")
               .source(source)
               .parse(parse)
               .stage(enrich::table_stage(store, args.table))
               .sink(sink)
               .trigger(trigger);
  if (!args.dlq.empty()) b.dlq(args.dlq);
  return b.build();
}

} // namespace

int run_enrich(const enrich_args& args) {
  block_stop_signals();
  source_options source;
  source.bootstrap_servers = args.bootstrap;
  sink_options sink;
  sink.bootstrap_servers = args.bootstrap;
  add_client_properties(args.kafka, source, sink);
  // Flags first: a restore can take long.
  if (args.starting != "earliest" && args.starting != "latest")
    throw config_error("--starting-offsets",
                       "expected earliest or latest, got `" + args.starting + "`");
  source.starting =
      args.starting == "earliest" ? starting_offsets::earliest : starting_offsets::latest;
  enrich::join_options join;
  join.key_field = args.key_field;
  std::stringstream fields(args.table_fields);
  for (std::string f; std::getline(fields, f, ',');)
    if (!f.empty()) join.table_fields.push_back(f);
  if (args.missing != "dlq" && args.missing != "null")
    throw config_error("--missing", "expected dlq or null, got `" + args.missing + "`");
  join.missing_to_dlq = args.missing == "dlq";
  auto state_dir =
      args.state_dir.empty() ? "sluice-state/enrich-" + args.table : args.state_dir;
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec)
    throw config_error("--state-dir", "cannot make `" + state_dir + "`: " + ec.message());
  std::shared_ptr<enrich::table_store> store;
  try {
    store = std::make_shared<enrich::table_store>(state_dir);
    store->bind_topic(args.table);
  } catch (const std::exception& e) {
    throw config_error("--state-dir", e.what());
  }

  // The table's partitions, as the cluster has them now.
  pipeline_config probe;
  probe.name = "enrich-table";
  probe.source = source;
  probe.source.subscribe = {args.table};
  probe.source.group_id = args.group + "-table";
  probe.sink = sink;
  probe.route.delivered_by = "table:" + args.table;
  std::vector<kafka::topic_partition> parts;
  try {
    for (auto& p : plan(probe))
      parts.push_back(p.tp);
  } catch (const config_error& e) {
    throw as_flag_error(e);
  }
  if (parts.empty())
    throw config_error("--table", "`" + args.table + "` has no partitions at " +
                                      args.bootstrap + ": is it the table's topic?");

  // Restore: to the table topic's end, before the stream is read.
  std::unique_ptr<pipeline> restore;
  try {
    restore = table_pipeline(args, source, sink, store, parts, true);
  } catch (const config_error& e) {
    throw as_flag_error(e);
  }
  bool signalled = false;
  auto restored = run_until_signal(*restore, &signalled); // a signal stops it too
  if (signalled) {
    spdlog::info("enrich: stopped while restoring the table; it goes on from there "
                 "next time");
    return 0;
  }
  if (!restored.ok) {
    std::cerr << "sluice: enrich failed restoring the table: " << restored.error << "\n";
    return 1;
  }
  spdlog::info("enrich: table `{}` restored: {} record(s) read, about {} key(s) in {}",
               args.table, restored.input_rows, store->estimated_keys(), state_dir);

  // The stream: each record joined with its row, to one topic.
  source.subscribe = args.topics;
  source.group_id = args.group;

  trigger_options trigger;
  if (args.available_now) trigger.mode = trigger_options::kind::available_now;
  auto stream_builder = pipeline_builder("enrich")
                            .source(source)
                            .parse(parse_options{})
                            .map(enrich::join_step(store, join))
                            .route(args.to)
                            .sink(sink)
                            .trigger(trigger)
                            .on_progress(print_progress);
  if (!args.dlq.empty()) stream_builder.dlq(args.dlq);
  std::unique_ptr<pipeline> stream, table;
  try {
    stream = stream_builder.build();
    table = table_pipeline(args, source, sink, store, parts, false);
  } catch (const config_error& e) {
    throw as_flag_error(e);
  }

  // The table kept live while the stream runs; its failure ends the stream.
  std::mutex failed_mutex;
  std::string table_failed;
  std::thread keeper([&] {
    auto s = table->run();
    if (!s.ok) {
      {
        std::lock_guard<std::mutex> guard{failed_mutex};
        table_failed = s.error;
      }
      stream->stop();
    }
  });
  // The table is stopped and its thread joined however the stream ends.
  struct keeper_guard {
    pipeline& table;
    std::thread& keeper;
    ~keeper_guard() {
      table.stop();
      keeper.join();
    }
  };
  run_summary summary;
  {
    keeper_guard guard{*table, keeper};
    summary = run_until_signal(*stream);
  }
  spdlog::info("enrich: {} in, {} joined to {}, {} to the DLQ, {:.2f} s",
               summary.input_rows, summary.output_rows, args.to, summary.dlq_rows,
               summary.seconds);
  if (!table_failed.empty()) {
    std::cerr << "sluice: enrich failed: the table stopped: " << table_failed << "\n";
    return 1;
  }
  if (!summary.ok) {
    std::cerr << "sluice: enrich failed: " << summary.error << "\n";
    return 1;
  }
  return 0;
}

} // namespace sluice::app
