#include "dedup/state_guard.hpp"

#include "core/log.hpp"

#include <sluice/errors.hpp>

#include <boost/json.hpp>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <set>

namespace sluice::dedup {

namespace {

constexpr std::string_view owner_key = "sluice/owner";

const std::pair<const char*, std::string state_owner::*> owner_fields[] = {
    {"cluster", &state_owner::cluster},
    {"pipeline", &state_owner::pipeline},
    {"group", &state_owner::group},
    {"input", &state_owner::input},
    {"changelog", &state_owner::changelog},
    {"changelogCluster", &state_owner::changelog_cluster},
};

std::string described(const std::optional<state_owner>& owner) {
  return owner ? owner->describe()
               : "an unknown owner (no owner recorded: written before Sluice recorded "
                 "one)";
}

} // namespace

std::string state_owner::encode() const {
  boost::json::object o;
  for (auto& [name, field] : owner_fields)
    o[name] = this->*field;
  return boost::json::serialize(o);
}

std::optional<state_owner> state_owner::decode(std::string_view text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  state_owner out;
  for (auto& [name, field] : owner_fields) {
    auto* s = v.get_object().if_contains(name);
    if (!s || !s->is_string()) return std::nullopt;
    out.*field = s->get_string();
  }
  return out;
}

std::string state_owner::describe() const {
  auto out = "pipeline `" + pipeline + "`, group `" + group + "`, input " + input +
             " on cluster `" + cluster + "`";
  if (changelog.empty()) return out + ", no changelog";
  return out + ", changelog `" + changelog + "` on cluster `" + changelog_cluster + "`";
}

std::string input_of(const source_options& source) {
  std::set<std::string> topics;
  switch (source.subscription) {
  case subscription_kind::pattern:
    return "pattern " + source.pattern;
  case subscription_kind::subscribe:
    topics.insert(source.subscribe.begin(), source.subscribe.end());
    break;
  case subscription_kind::assign:
    for (auto& tp : source.assign)
      topics.insert(tp.topic);
    break;
  }
  std::string out = "[";
  for (auto& t : topics)
    out += (out.size() > 1 ? "," : "") + t;
  return out + "]";
}

std::optional<std::string> cluster_identity(rd_kafka_s* client,
                                            const std::string& bootstrap,
                                            std::chrono::milliseconds timeout,
                                            const std::function<bool()>& cancelled) {
  using clock = std::chrono::steady_clock;
  constexpr auto step = std::chrono::milliseconds(500);
  auto deadline = clock::now() + timeout;
  for (;;) {
    auto asked = clock::now();
    if (char* id = rd_kafka_clusterid(client, static_cast<int>(step.count()))) {
      std::string out(id);
      rd_kafka_mem_free(client, id);
      if (out.starts_with("mockCluster")) out += "@" + bootstrap;
      return out;
    }
    // No id before the step ended: librdkafka has metadata, without an id.
    if (clock::now() - asked < step - std::chrono::milliseconds(100))
      return "bootstrap " + bootstrap;
    if (cancelled && cancelled()) return std::nullopt;
    if (clock::now() >= deadline)
      throw fatal_error("cannot reach the cluster at " + bootstrap + " within " +
                        std::to_string(timeout.count() / 1000) +
                        " s (runtime.brokerTimeout) to tell whose the dedup state is");
  }
}

std::unique_ptr<state::store> open_state(const dedup_options& options,
                                         std::size_t memory_budget) {
  const auto& dir = options.state_dir;
  try {
    return std::make_unique<state::store>(dir, memory_budget, "dedup.stateDir");
  } catch (const state::damaged_error& e) {
    if (options.changelog_topic().empty())
      throw fatal_error(
          "the dedup state in `" + dir + "` is damaged (" + e.detail() +
          "), and without a changelog (dedup.changelog is false) it cannot be rebuilt: "
          "delete `" +
          dir +
          "` and run again (the keys it held are forgotten: re-sent records seen "
          "before pass once)");
    auto aside = state::set_aside(dir);
    sluice::logger().warn(
        "the dedup state in `{}` is damaged ({}): moved to `{}`, and rebuilt "
        "from the changelog `{}` (delete `{}` when you no longer need it)",
        dir, e.detail(), aside, options.changelog_topic(), aside);
    return std::make_unique<state::store>(dir, memory_budget, "dedup.stateDir");
  }
}

claim_outcome claim_state(state::store& store, const state_owner& owner) {
  std::optional<state_owner> recorded;
  auto text = store.get_meta(owner_key);
  if (text) recorded = state_owner::decode(*text);
  claim_outcome out;
  if (recorded && *recorded == owner) {
    out.what = claim_outcome::kept;
    return out;
  }
  if (store.empty()) {
    out.what = claim_outcome::adopted;
  } else {
    // Sightings from elsewhere would drop this run's new records at the
    // same keys as duplicates of records it never saw.
    if (owner.changelog.empty())
      throw fatal_error(
          "the dedup state in `" + store.dir() + "` belongs to " + described(recorded) +
          ", not to this run (" + owner.describe() +
          "); without a changelog it cannot be rebuilt, and used as it is it would drop "
          "new records as duplicates of records this run never saw: delete `" +
          store.dir() +
          "` (the keys it held are forgotten: re-sent records seen before pass once), "
          "or give this pipeline a dedup.stateDir of its own");
    sluice::logger().warn(
        "the dedup state in `{}` belongs to {}, not to this run ({}): dropped; "
        "each partition is rebuilt from the changelog `{}`",
        store.dir(), described(recorded), owner.describe(), owner.changelog);
    store.drop_tables();
    out.what = claim_outcome::rebuilt;
    out.previous = recorded;
  }
  store.put_meta(owner_key, owner.encode());
  return out;
}

} // namespace sluice::dedup
