#include "core/json_writer.hpp"
#include "core/log.hpp"
#include "kafka/consumer.hpp"
#include "kafka/source_bounds.hpp"

#include <sluice/plan.hpp>

#include <boost/json.hpp>

#include <algorithm>

namespace sluice {

std::vector<partition_plan> plan(const pipeline_config& config) {
  auto cfg = config; // a config made in code gets what a file would
  fill_defaults(cfg);
  validate(cfg);
  // A consumer that never subscribes: it reads metadata and the group's
  // offsets, and consumes and commits nothing.
  kafka::group_consumer consumer(cfg.source, cfg.runtime.broker_timeout);
  auto out = kafka::plan_source(consumer, cfg, cfg.runtime.broker_timeout);
  if (out.empty())
    sluice::logger().warn(
        "the source reads no partition now ({}): a run would wait for one",
        source_description(cfg.source));
  consumer.close(std::chrono::seconds(1));
  return out;
}

std::string plan_json(const std::vector<partition_plan>& plan) {
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
  return out;
}

} // namespace sluice
