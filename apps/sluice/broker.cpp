#include "apps/sluice/commands.hpp"

#include <sluice/errors.hpp>
#include <sluice/testing/mock_cluster.hpp>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

namespace sluice::app {

void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

bool wait_stop_signal(int timeout_ms) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (timeout_ms < 0) {
    int sig = 0;
    sigwait(&set, &sig);
    return true;
  }
  timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
  return sigtimedwait(&set, nullptr, &ts) > 0;
}

int run_broker(const broker_args& args) {
  block_stop_signals();
  if (args.brokers < 1)
    throw config_error("--brokers", "expected a positive number of brokers");
  std::vector<std::pair<std::string, int>> topics;
  for (auto& t : args.topics) {
    auto colon = t.rfind(':');
    int partitions = 0;
    try {
      partitions = colon == std::string::npos ? 0 : std::stoi(t.substr(colon + 1));
    } catch (...) {
    }
    if (colon == 0 || partitions < 1)
      throw config_error("--topic",
                         "expected NAME:PARTITIONS like orders:4, got `" + t + "`");
    topics.emplace_back(t.substr(0, colon), partitions);
  }
  if (!args.bootstrap_file.empty()) {
    // Found out now, not after the broker started and nobody can read it.
    std::ofstream probe(args.bootstrap_file + ".tmp");
    if (!probe)
      throw config_error("--bootstrap-file", "cannot write `" + args.bootstrap_file +
                                                 ".tmp`: " + std::strerror(errno));
  }
  testing::mock_cluster cluster(args.brokers);
  for (auto& [name, partitions] : topics)
    cluster.create_topic(name, partitions);
  auto line = "bootstrap.servers=" + cluster.bootstrap_servers();
  if (!args.bootstrap_file.empty()) {
    // Written whole, then renamed: a reader never sees half a line.
    auto tmp = args.bootstrap_file + ".tmp";
    std::ofstream(tmp) << line << "\n";
    if (std::rename(tmp.c_str(), args.bootstrap_file.c_str()) != 0)
      throw config_error("--bootstrap-file", "cannot write `" + args.bootstrap_file +
                                                 "`: " + std::strerror(errno));
  }
  std::cout << line << std::endl;
  spdlog::info("embedded broker: {} broker(s), {} topic(s); stop with SIGINT or SIGTERM",
               args.brokers, topics.size());
  wait_stop_signal(-1);
  spdlog::info("embedded broker stopping");
  // Its ports close with it: a reader must not find the file and wait on them.
  // Unless another broker has written the file since.
  if (!args.bootstrap_file.empty()) {
    std::string found;
    std::getline(std::ifstream(args.bootstrap_file), found);
    if (found == line) std::remove(args.bootstrap_file.c_str());
  }
  return 0;
}

} // namespace sluice::app
