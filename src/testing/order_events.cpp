#include "kafka/producer.hpp"

#include <sluice/errors.hpp>
#include <sluice/progress.hpp>
#include <sluice/testing/order_events.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string_view>
#include <thread>

namespace sluice::testing {

namespace {

/// splitmix64: a fast, well-mixed hash of (seed, i, salt).
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

} // namespace

std::string order_parse_section() {
  return R"({"format": "json",
    "schema": {"order_id": "string", "customer_id": "string", "product_id": "string",
               "quantity": "int", "price": "double", "order_time": "timestamp",
               "priority": "string"},
    "required": ["order_id", "customer_id", "quantity", "price", "priority"]})";
}

std::string expected_error_type(const std::string& malformation) {
  if (malformation == "truncated" || malformation == "not_utf8") return "malformed_json";
  if (malformation == "missing_order_id") return "missing_field";
  return malformation; // wrong_type, empty_value
}

order_generator::order_generator(std::uint64_t seed, double malformed_fraction,
                                 int customers, double duplicate_fraction)
    : seed_(seed), malformed_fraction_(malformed_fraction), customers_(customers),
      duplicate_fraction_(duplicate_fraction) {}

order_event order_generator::make(std::int64_t i) const {
  auto r = [&](std::uint64_t salt) {
    return mix(seed_ * 1000003ull + static_cast<std::uint64_t>(i) * 31ull + salt);
  };
  if (duplicate_fraction_ > 0 && i > 0 &&
      static_cast<double>(r(8) % 1000000) / 1000000.0 < duplicate_fraction_) {
    auto back = static_cast<std::int64_t>(
        r(9) % static_cast<std::uint64_t>(std::min<std::int64_t>(i, 100)));
    auto e = make(i - 1 - back);
    if (!e.duplicate_of) e.duplicate_of = i - 1 - back;
    return e;
  }
  order_event e;
  char buf[512];
  e.order_id = "ord-" + std::to_string(seed_) + "-" + std::to_string(i);
  e.key = "cust-" + std::to_string(r(1) % static_cast<std::uint64_t>(customers_));
  e.correlation_id = "corr-" + std::to_string(seed_) + "-" + std::to_string(i);
  static const char* priorities[] = {"high", "medium", "low"};
  auto pick = r(2) % 10; // 20% high, 30% medium, 50% low
  std::string priority = pick < 2   ? priorities[0]
                         : pick < 5 ? priorities[1]
                                    : priorities[2];
  auto quantity = static_cast<int>(1 + r(3) % 20);
  auto cents = static_cast<int>(99 + r(4) % 50000);
  // Order times fall in 2026, one second apart per sequence number.
  auto t = 1767225600000ll + i * 1000;
  auto when = iso8601_utc(t);
  auto product = "prod-" + std::to_string(r(5) % 800);
  std::snprintf(
      buf, sizeof buf,
      "{\"order_id\":\"%s\",\"customer_id\":\"%s\",\"product_id\":\"%s\","
      "\"quantity\":%d,\"price\":%d.%02d,\"order_time\":\"%s\",\"priority\":\"%s\"}",
      e.order_id.c_str(), e.key.c_str(), product.c_str(), quantity, cents / 100,
      cents % 100, when.c_str(), priority.c_str());
  e.value = buf;
  auto roll = static_cast<double>(r(6) % 1000000) / 1000000.0;
  if (roll >= malformed_fraction_) {
    e.priority = priority;
    return e;
  }
  switch (r(7) % 5) {
  case 0:
    e.malformation = "truncated";
    e.value.resize(e.value.size() / 2);
    break;
  case 1: {
    e.malformation = "wrong_type";
    auto start = e.value.find("\"quantity\":") + 11;
    e.value.replace(start, e.value.find(',', start) - start, "\"many\"");
    break;
  }
  case 2: {
    e.malformation = "missing_order_id";
    auto end = e.value.find(',');
    e.value.erase(1, end);
    break;
  }
  case 3:
    e.malformation = "not_utf8";
    e.value.insert(e.value.find("prod-") + 5, "\xff\xfe\xc3");
    break;
  default:
    e.malformation = "empty_value";
    e.value.clear();
    break;
  }
  return e;
}

namespace {

/// Removes `"name":"..."` and the comma that joins it to the object.
void erase_string_field(std::string& json, std::string_view name) {
  auto key = "\"" + std::string(name) + "\":\"";
  auto at = json.find(key);
  if (at == std::string::npos) return;
  auto close = json.find('"', at + key.size());
  if (close == std::string::npos) return; // not a whole string field: left alone
  auto end = close + 1;
  if (end < json.size() && json[end] == ',')
    ++end;
  else if (at > 0 && json[at - 1] == ',')
    --at;
  json.erase(at, end - at);
}

} // namespace

void fit_value(order_event& event, std::size_t bytes) {
  if (!event.malformation.empty() || event.value.empty()) return;
  for (auto optional : {"product_id", "order_time"})
    if (event.value.size() > bytes) erase_string_field(event.value, optional);
  static constexpr std::string_view note = ",\"note\":\"\"";
  if (event.value.size() + note.size() <= bytes) {
    auto fill = bytes - event.value.size() - note.size();
    event.value.insert(event.value.size() - 1,
                       std::string(note.substr(0, note.size() - 1)) +
                           std::string(fill, 'x') + "\"");
  } else if (event.value.size() < bytes) { // too close for a field: spaces
    event.value.insert(event.value.size() - 1, bytes - event.value.size(), ' ');
  }
}

produced produce_orders(const std::string& bootstrap, const std::string& topic,
                        std::int64_t count, std::optional<double> rate,
                        double malformed_fraction, std::uint64_t seed,
                        std::map<std::string, std::string> props,
                        double duplicate_fraction, std::size_t value_bytes) {
  props["bootstrap.servers"] = bootstrap;
  props.try_emplace("linger.ms", "20");
  // A generator that cannot reach its cluster says so within 2 minutes, not
  // after librdkafka's default 5; long enough to ride out a leader's failover
  // (kafka.broker_faults kills leaders under it, under ASan too).
  props.try_emplace("message.timeout.ms", "120000");
  kafka::producer out(std::move(props), "produce");
  order_generator gen(seed, malformed_fraction, 5000, duplicate_fraction);
  std::atomic<bool> done{false};
  std::string failure;
  std::mutex failure_mutex;
  auto* group = new kafka::delivery_group([&](const kafka::delivery_group& g) {
    if (g.error()) {
      std::lock_guard<std::mutex> guard{failure_mutex};
      failure = *g.error();
    }
    done.store(true);
  });
  auto instance = out.current();
  auto rkt = out.topic(instance, topic);
  produced out_count;
  auto start = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < count; ++i) {
    auto e = gen.make(i);
    if (value_bytes > 0) fit_value(e, value_bytes);
    out_count.malformed += e.malformation.empty() ? 0 : 1;
    out_count.duplicates += e.duplicate_of ? 1 : 0;
    std::vector<header> headers{{"correlation-id", e.correlation_id}};
    while (out.send(group, 0, rkt, e.key, e.value, headers, 0) ==
           kafka::producer::send_result::queue_full)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (rate && *rate > 0) {
      auto due =
          start + std::chrono::duration<double>(static_cast<double>(i + 1) / *rate);
      std::this_thread::sleep_until(due);
    }
  }
  group->seal();
  out.flush(std::chrono::minutes(5));
  while (!done.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!failure.empty()) {
    auto cause = out.health().last_error();
    throw fatal_error("delivery to `" + topic + "` at " + bootstrap +
                      " failed: " + failure + (cause.empty() ? "" : " (" + cause + ")"));
  }
  return out_count;
}

} // namespace sluice::testing
