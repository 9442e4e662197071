#include <sluice/builder.hpp>
#include <sluice/errors.hpp>

#include <string>
#include <utility>
#include <variant>

namespace sluice {

pipeline_builder::pipeline_builder(std::string name) {
  config_.name = std::move(name);
}

pipeline_builder pipeline_builder::from_file(const std::string& path,
                                             const std::vector<std::string>& overrides) {
  return from_config(load_pipeline_config(path, overrides));
}

pipeline_builder pipeline_builder::from_config(pipeline_config config) {
  pipeline_builder b(config.name);
  b.config_ = std::move(config);
  return b;
}

pipeline_builder& pipeline_builder::source(source_options options) {
  config_.source = std::move(options);
  return *this;
}

pipeline_builder& pipeline_builder::parse(parse_options options) {
  config_.parse = std::move(options);
  return *this;
}

pipeline_builder& pipeline_builder::map(record_map fn) {
  steps_.emplace_back(std::move(fn));
  return *this;
}

pipeline_builder& pipeline_builder::filter(record_filter fn) {
  steps_.emplace_back(std::move(fn));
  return *this;
}

pipeline_builder& pipeline_builder::flat_map(record_flat_map fn) {
  steps_.emplace_back(std::move(fn));
  return *this;
}

pipeline_builder& pipeline_builder::stage(batch_stage fn) {
  steps_.emplace_back(std::move(fn));
  return *this;
}

pipeline_builder& pipeline_builder::route(std::string topic) {
  route_options r;
  r.topic = std::move(topic);
  return route(std::move(r));
}

pipeline_builder& pipeline_builder::route(route_options options) {
  config_.route = std::move(options);
  return *this;
}

pipeline_builder& pipeline_builder::route(topic_extractor fn) {
  route_options r;
  r.extract = std::move(fn);
  return route(std::move(r));
}

pipeline_builder& pipeline_builder::dedup(dedup_options options) {
  config_.dedup = std::move(options);
  return *this;
}

pipeline_builder& pipeline_builder::sink(sink_options options) {
  config_.sink = std::move(options);
  return *this;
}

pipeline_builder& pipeline_builder::dlq(std::string topic) {
  config_.dlq = dlq_options{std::move(topic)};
  return *this;
}

pipeline_builder& pipeline_builder::trigger(trigger_options options) {
  config_.trigger = options;
  return *this;
}

pipeline_builder& pipeline_builder::runtime(runtime_options options) {
  config_.runtime = options;
  return *this;
}

pipeline_builder&
pipeline_builder::on_progress(std::function<void(const epoch_progress&)> fn) {
  if (fn) progress_listeners_.push_back(std::move(fn));
  return *this;
}

std::unique_ptr<pipeline> pipeline_builder::build() {
  // What a pipeline file gets by default (the group, dedup's state
  // directory and changelog), then every check a run would make at start.
  fill_defaults(config_);
  // A last stage that writes the records is the pipeline's route; set here,
  // not in stage(), so that a route() called after it is still seen.
  config_.route.delivered_by.clear();
  for (auto& s : steps_)
    if (auto* a = std::get_if<actor_step>(&s); a && !a->delivers.empty())
      config_.route.delivered_by = a->delivers;
  validate(config_);
  for (std::size_t i = 0; i < steps_.size(); ++i)
    if (std::visit([](auto& fn) { return !fn; }, steps_[i]))
      throw config_error("steps", "step " + std::to_string(i + 1) +
                                      " is an empty function (a map, filter, "
                                      "flat_map or stage without a target)");
  auto p = std::make_unique<pipeline>(config_);
  p->add_steps(steps_);
  if (system_) p->use_actor_system(*system_);
  for (auto& listener : progress_listeners_)
    p->on_progress(listener);
  return p;
}

} // namespace sluice
