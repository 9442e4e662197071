#include "apps/sluice/commands.hpp"
#include "runtime/json_writer.hpp"
#include "runtime/kafka/consumer.hpp"
#include "runtime/kafka/source_bounds.hpp"
#include "runtime/options.hpp"

#include <boost/json.hpp>

#include <iostream>

namespace sluice::app {

int run_plan(const run_args& args) {
  auto cfg = load_pipeline_config(args.pipeline_file, args.overrides);
  // A consumer that never subscribes: it reads metadata and the group's
  // offsets, and consumes and commits nothing.
  kafka::group_consumer consumer(cfg.source, cfg.runtime.broker_timeout);
  auto plan = kafka::plan_source(consumer, cfg, cfg.runtime.broker_timeout);
  boost::json::array partitions;
  for (auto& p : plan) {
    boost::json::object o{
        {"topic", p.tp.topic},
        {"partition", p.tp.partition},
        {"committedOffset",
         p.committed < 0 ? boost::json::value(nullptr) : boost::json::value(p.committed)},
        {"startOffset", p.start},
        {"endOffset", p.end ? boost::json::value(*p.end) : boost::json::value(nullptr)},
        {"logStartOffset", p.log_start},
        {"logEndOffset", p.log_end},
        {"records", p.end
                        ? boost::json::value(std::max<std::int64_t>(0, *p.end - p.start))
                        : boost::json::value(nullptr)},
        {"lostRecords", p.lost},
    };
    partitions.push_back(std::move(o));
  }
  std::string out;
  write_json(boost::json::value(boost::json::object{{"partitions", partitions}}), out);
  std::cout << out << "\n";
  consumer.close(std::chrono::seconds(1));
  return 0;
}

} // namespace sluice::app
