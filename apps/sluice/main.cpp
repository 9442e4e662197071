// sluice: run Kafka pipelines, host an embedded broker, generate load, demo.
// Thin: parse options, build, run (the work lives in the library, src/).

#include "apps/sluice/commands.hpp"

#include <sluice/errors.hpp>
#include <sluice/logging.hpp>
#include <sluice/pipeline.hpp>
#include <sluice/version.hpp>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iostream>

int main(int argc, char** argv) {
  using namespace sluice::app;
  CLI::App app{"Sluice: Kafka stream processing on actors"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("sluice ") + sluice::version);
  // Numbers and names are checked here: a usage error exits 2 with the reason.
  const auto non_empty = CLI::Validator(
      [](std::string& s) {
        return s.empty() ? std::string("must not be empty") : std::string();
      },
      "NON-EMPTY");
  const auto positive = CLI::Validator(
      [](std::string& s) {
        try {
          std::size_t used = 0;
          if (std::stod(s, &used) > 0 && used == s.size()) return std::string();
        } catch (...) {
        }
        return "expected a number above 0, got `" + s + "`";
      },
      "POSITIVE");
  // Digits only (no sign, no exponent), from lo to hi.
  auto whole_in = [](const std::string& s, long long lo, long long hi) {
    return !s.empty() && s.size() <= 13 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
           std::stoll(s) >= lo && std::stoll(s) <= hi;
  };
  // A whole number of things, at most a trillion.
  const auto count = CLI::Validator(
      [=](std::string& s) {
        if (whole_in(s, 1, 1'000'000'000'000)) return std::string();
        return "expected a whole number from 1 to 10^12, got `" + s + "`";
      },
      "COUNT");
  // A value size for `produce`: 0 (off) up to librdkafka's message.max.bytes.
  const auto value_bytes = CLI::Validator(
      [=](std::string& s) {
        if (whole_in(s, 0, 1'000'000)) return std::string();
        return "expected a number of bytes from 0 (off) to 1000000, got `" + s + "`";
      },
      "BYTES");
  // A share: a number from 0 to 1 (not nan).
  const auto fraction = CLI::Validator(
      [](std::string& s) {
        try {
          std::size_t used = 0;
          auto f = std::stod(s, &used);
          if (used == s.size() && f >= 0.0 && f <= 1.0) return std::string();
        } catch (...) {
        }
        return "expected a number from 0 to 1, got `" + s + "`";
      },
      "FRACTION");
  // A required option that must not be empty.
  auto required = [&non_empty](CLI::App* cmd, const std::string& name, auto& into,
                               const std::string& what) {
    return cmd->add_option(name, into, what)->required()->check(non_empty);
  };
  // A repeatable option taking one value per occurrence, so that a
  // subcommand's inputs can follow it.
  auto repeatable = [](CLI::App* cmd, const std::string& name, auto& into,
                       const std::string& what) {
    return cmd->add_option(name, into, what)->allow_extra_args(false);
  };
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();

  broker_args broker;
  auto* broker_cmd =
      app.add_subcommand("broker", "Host an embedded Kafka broker (librdkafka's "
                                   "mock cluster) until SIGINT/SIGTERM");
  broker_cmd->add_option("--brokers", broker.brokers, "number of brokers")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  broker_cmd->add_option("--topic", broker.topics, "NAME:PARTITIONS, repeatable");
  broker_cmd->add_option("--bootstrap-file", broker.bootstrap_file,
                         "also write bootstrap.servers=... to this file");

  produce_args produce;
  auto* produce_cmd = app.add_subcommand("produce", "Write generated order events");
  required(produce_cmd, "--bootstrap", produce.bootstrap, "bootstrap servers");
  required(produce_cmd, "--topic", produce.topic, "topic");
  produce_cmd->add_option("--count", produce.count, "number of events")
      ->required()
      ->check(count);
  produce_cmd
      ->add_option("--rate", produce.rate, "events per second (default: unlimited)")
      ->check(positive);
  produce_cmd
      ->add_option("--malformed-fraction", produce.malformed_fraction,
                   "share of broken events, 0..1")
      ->check(fraction)
      ->capture_default_str();
  produce_cmd
      ->add_option("--duplicate-fraction", produce.duplicate_fraction,
                   "share of events that re-send one of the 100 before them (same key "
                   "and value, a later offset and timestamp), 0..1")
      ->check(fraction)
      ->capture_default_str();
  produce_cmd->add_option("--seed", produce.seed, "generator seed")
      ->capture_default_str();
  produce_cmd
      ->add_option("--value-bytes", produce.value_bytes,
                   "fit each good event's value to this size, up to 1000000: a filler "
                   "`note` field added, or the optional fields dropped (88-102 bytes "
                   "at the least); 0, the default: their own ~160 bytes")
      ->check(value_bytes);

  run_args run;
  auto* run_cmd = app.add_subcommand("run", "Run a pipeline described in a JSON file");
  run_cmd->add_option("pipeline", run.pipeline_file, "PIPELINE.json")->required();
  run_cmd->add_option("--set", run.overrides, "section.option=value, repeatable");

  run_args plan;
  auto* plan_cmd = app.add_subcommand(
      "plan", "Print where a run of the pipeline would start and stop, per partition "
              "(JSON), consuming and committing nothing");
  plan_cmd->add_option("pipeline", plan.pipeline_file, "PIPELINE.json")->required();
  plan_cmd->add_option("--set", plan.overrides, "section.option=value, repeatable");

  lake_args lake;
  auto* lake_cmd = app.add_subcommand(
      "lake", "Kafka -> files: JSON Lines by event date under DIR/TOPIC/dt=YYYY-MM-DD/, "
              "each file published (fsync, rename) before its offsets are committed");
  required(lake_cmd, "--bootstrap", lake.bootstrap, "bootstrap servers");
  required(lake_cmd, "--topic", lake.topics, "topic to read, repeatable")
      ->allow_extra_args(false); // one per occurrence, so that inputs can follow
  required(lake_cmd, "--dir", lake.dir, "directory the files go under");
  lake_cmd->add_option("--group", lake.group, "consumer group (kafka.group.id)")
      ->check(non_empty)
      ->capture_default_str();
  lake_cmd
      ->add_option("--starting-offsets", lake.starting,
                   "earliest or latest, for partitions the group has not committed")
      ->capture_default_str();
  lake_cmd->add_flag("--available-now", lake.available_now,
                     "read what is there now, write it, and exit");
  lake_cmd->add_option("--dlq", lake.dlq,
                       "topic for records that are not JSON objects or have no "
                       "event date (without: such a record fails the run)");
  lake_cmd->add_option("--date-field", lake.date_field,
                       "field with the event time, ISO-8601 text or epoch ms "
                       "(default: the Kafka timestamp); dates are UTC");
  lake_cmd
      ->add_option("--file-records", lake.file_records,
                   "publish a partition's files once this many lines wait")
      ->check(count)
      ->capture_default_str();
  lake_cmd
      ->add_option("--file-interval", lake.file_interval,
                   "...or this long after the first of them came")
      ->capture_default_str();
  repeatable(lake_cmd, "--kafka", lake.kafka,
             "NAME=VALUE librdkafka property for the clients (security...), "
             "repeatable");

  ingest_args ingest;
  auto* ingest_cmd = app.add_subcommand(
      "ingest", "Files or stdin -> Kafka: one JSON object per line, idempotent, acks "
                "from all replicas; invalid lines to a reject file with their number");
  required(ingest_cmd, "--bootstrap", ingest.bootstrap, "bootstrap servers");
  required(ingest_cmd, "--topic", ingest.topic, "topic to write");
  ingest_cmd->add_option("--key-field", ingest.key_field,
                         "field whose value is the record's key (default: no key)");
  repeatable(ingest_cmd, "--header", ingest.headers,
             "NAME=VALUE header on every record, repeatable");
  ingest_cmd->add_option("--reject-file", ingest.reject_file,
                         "where invalid lines go, as FILE<TAB>LINE<TAB>REASON<TAB>TEXT "
                         "(without: an invalid line stops the ingest, exit 1)");
  repeatable(ingest_cmd, "--kafka", ingest.kafka,
             "NAME=VALUE librdkafka producer property, repeatable "
             "(default compression.type=lz4, linger.ms=5)");
  ingest_cmd->add_option("inputs", ingest.inputs,
                         "files to read in order; - or none: stdin");

  enrich_args enrich;
  auto* enrich_cmd = app.add_subcommand(
      "enrich", "A stream joined with a table kept from a compacted topic (RocksDB): "
                "each record gets its row's fields, to one topic");
  required(enrich_cmd, "--bootstrap", enrich.bootstrap, "bootstrap servers");
  required(enrich_cmd, "--topic", enrich.topics, "the stream's topic, repeatable")
      ->allow_extra_args(false);
  required(enrich_cmd, "--table", enrich.table, "the table's compacted topic");
  required(enrich_cmd, "--key-field", enrich.key_field,
           "the stream field whose value is a key of the table's records");
  required(enrich_cmd, "--to", enrich.to, "the topic the joined records go to");
  enrich_cmd->add_option("--table-fields", enrich.table_fields,
                         "comma-separated table fields to add (default: all of the row)");
  enrich_cmd
      ->add_option(
          "--missing", enrich.missing,
          "a key with no row: dlq (to --dlq, reason no_table_row) or null (pass, "
          "--table-fields set to null)")
      ->capture_default_str();
  required(enrich_cmd, "--dlq", enrich.dlq,
           "topic for stream records that cannot be joined and table records "
           "that cannot be kept");
  enrich_cmd->add_option(
      "--state-dir", enrich.state_dir,
      "the table's RocksDB directory (default sluice-state/enrich-TABLE)");
  enrich_cmd->add_option("--group", enrich.group, "the stream's consumer group")
      ->check(non_empty)
      ->capture_default_str();
  enrich_cmd
      ->add_option(
          "--starting-offsets", enrich.starting,
          "earliest or latest, for stream partitions the group has not committed")
      ->capture_default_str();
  enrich_cmd->add_flag("--available-now", enrich.available_now,
                       "join what the stream has now, and exit");
  repeatable(enrich_cmd, "--kafka", enrich.kafka,
             "NAME=VALUE librdkafka property for the clients, repeatable");

  demo_args demo;
  auto* demo_cmd =
      app.add_subcommand("demo", "Embedded broker + load + the priority-routing "
                                 "pipeline, with a summary");
  demo_cmd->add_option("--events", demo.events, "events to produce")
      ->check(count)
      ->capture_default_str();
  demo_cmd
      ->add_option("--malformed-fraction", demo.malformed_fraction,
                   "share of broken events")
      ->check(fraction)
      ->capture_default_str();
  demo_cmd
      ->add_option("--duplicate-fraction", demo.duplicate_fraction,
                   "share of re-sent events, which dedup drops")
      ->check(fraction)
      ->capture_default_str();

  app.add_subcommand("options", "Print the pipeline option reference (Markdown)");
  auto* help_cmd = app.add_subcommand("help", "Print this help");

  // CLI11 says "A subcommand is required" for a mistyped one: name it instead.
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--log-level") {
      ++i;
      continue;
    }
    if (arg.starts_with("-")) continue;
    auto known =
        app.get_subcommands([&](CLI::App* sub) { return sub->get_name() == arg; });
    if (known.empty()) {
      std::cerr << "sluice: unknown command `" << arg
                << "`; expected run, plan, lake, ingest, enrich, broker, produce, demo, "
                   "options or "
                   "help\n";
      return 2;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2, as documented
    // (CLI11's own codes, 105 and up, mean nothing to a shell script).
    auto code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (help_cmd->parsed()) {
    std::cout << app.get_formatter()->make_help(&app, app.get_name(),
                                                CLI::AppFormatMode::Normal);
    return 0;
  }
  try {
    sluice::init_logging(log_level);
    if (broker_cmd->parsed()) return run_broker(broker);
    if (produce_cmd->parsed()) return run_produce(produce);
    if (run_cmd->parsed()) return run_pipeline(run);
    if (plan_cmd->parsed()) return run_plan(plan);
    if (demo_cmd->parsed()) return run_demo(demo);
    if (lake_cmd->parsed()) return run_lake(lake);
    if (ingest_cmd->parsed()) return run_ingest(ingest);
    if (enrich_cmd->parsed()) return run_enrich(enrich);
    print_options(std::cout);
    return 0;
  } catch (const sluice::config_error& e) {
    std::cerr << "sluice: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "sluice: " << e.what() << "\n";
    return 1;
  }
}
