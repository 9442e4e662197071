// The checkpoint actor (src/actors/checkpoint.cpp) on the deterministic
// scheduler, with a fake offset committer: the test sees every commit the
// actor asks for and answers it when it chooses, so the commit rules (one at a
// time, nothing committed twice, a final take that waits, a refusal by a
// rebalance or by the ACLs) are checked without a broker's timing. The
// consumer and producer in the run context are real clients of an embedded
// broker, idle: the consumer never subscribes, nothing is produced; the
// checkpoint only reads their health and cached watermarks. (Making them
// interfaces too is the exactly-once work.)

#include "actors/checkpoint.hpp"
#include "actors/messages.hpp"
#include "deterministic_system.hpp"
#include "kafka/offset_committer.hpp"

#include <sluice/testing/mock_cluster.hpp>

#include <boost/test/unit_test.hpp>

#include <optional>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::testing;
using kafka::commit_outcome;
using kafka::offset_map;

namespace {

const kafka::topic_partition p0{"orders", 0};
const kafka::topic_partition p1{"orders", 1};

/// Keeps every commit asked for; asynchronous ones stay unanswered until the
/// test answers them.
struct fake_committer final : kafka::offset_committer {
  struct request {
    offset_map offsets;
    std::int64_t batch_id = -1;
    std::function<void(commit_outcome)> done;
  };
  std::vector<request> async;
  std::vector<offset_map> sync;
  offset_map kept_for_after_rebalance;

  void commit_async(const offset_map& offsets, std::int64_t batch_id,
                    std::function<void(commit_outcome)> done) override {
    async.push_back({offsets, batch_id, std::move(done)});
  }
  commit_outcome commit_sync(const offset_map& offsets, std::int64_t,
                             std::chrono::milliseconds) override {
    sync.push_back(offsets);
    return taken(offsets);
  }
  void commit_after_rebalance(const offset_map& offsets, std::int64_t) override {
    for (auto& [tp, off] : offsets)
      kept_for_after_rebalance[tp] = off;
  }
  std::optional<std::string> commit_deferred(std::chrono::milliseconds) override {
    return std::nullopt;
  }
  std::int64_t restart_point(const kafka::topic_partition&, std::int64_t watermark,
                             std::int64_t assigned_start) const override {
    return std::max(watermark, assigned_start);
  }

  static commit_outcome taken(const offset_map& offsets) {
    commit_outcome o;
    o.committed = offsets;
    return o;
  }

  /// Answers the i-th asynchronous commit: all taken, or `outcome`.
  void answer(std::size_t i, std::optional<commit_outcome> outcome = std::nullopt) {
    auto& r = async.at(i);
    r.done(outcome ? *outcome : taken(r.offsets));
  }
};

/// What the group answers a commit while it rebalances.
commit_outcome refused_by_rebalance() {
  commit_outcome o;
  o.error = "Broker: Group rebalance in progress";
  o.rebalancing = true;
  return o;
}

/// A checkpoint over orders/0 and orders/1, both assigned at offset 0 without
/// a committed offset, epochs every second (the default trigger).
struct checkpoint_fixture {
  deterministic_system ds;
  mock_cluster cluster{1};
  pipeline_config cfg = config_for(cluster);
  kafka::group_consumer consumer{cfg.source, cfg.runtime.broker_timeout};
  kafka::producer producer{{{"bootstrap.servers", cluster.bootstrap_servers()}}, "sink"};
  fake_committer committer;
  std::vector<epoch_progress> reports;
  std::vector<std::string> fatal;
  actors::run_context ctx{cfg,
                          consumer,
                          committer,
                          producer,
                          record_router::for_pipeline(cfg),
                          {},
                          {},
                          {},
                          "query",
                          "run",
                          [this](const epoch_progress& p) { reports.push_back(p); },
                          {},
                          [this](const std::string& why) { fatal.push_back(why); }};
  caf::actor checkpoint;
  caf::actor me; // a consumer actor's stand-in: the reports' sender

  checkpoint_fixture() {
    checkpoint = actors::spawn_checkpoint(ds.sys(), &ctx);
    me = ds.sys().spawn([](caf::event_based_actor*) -> caf::behavior {
      return {[](actors::stall_atom) {}};
    });
    actors::assignment parts(2);
    parts[0].tp = p0;
    parts[1].tp = p1;
    caf::anon_send(checkpoint, actors::assign_atom::value, parts);
    ds.run();
  }

  static pipeline_config config_for(const mock_cluster& c) {
    pipeline_config cfg;
    cfg.name = "checkpoint-test";
    cfg.source.bootstrap_servers = c.bootstrap_servers();
    cfg.source.subscribe = {"orders"};
    cfg.source.group_id = "checkpoint-test";
    cfg.sink.bootstrap_servers = c.bootstrap_servers();
    return cfg;
  }

  void report(const kafka::topic_partition& tp, std::int64_t watermark) {
    actors::partition_report r;
    r.tp = tp;
    r.watermark = watermark;
    r.consumed = watermark;
    caf::send_as(me, checkpoint, r);
    ds.run();
  }

  /// Lets the epoch timer fire once.
  void next_epoch() {
    ds.advance_time(cfg.trigger.interval);
    ds.run();
  }

  /// The checkpoint's answer to a take, once it gives it.
  struct taken {
    bool answered = false;
    offset_map offsets;
    std::int64_t batch_id = -1;
  };
  std::shared_ptr<taken> take(actors::partition_list which) {
    auto out = std::make_shared<taken>();
    auto cp = checkpoint;
    ds.sys().spawn([=](caf::event_based_actor* self) {
      self->request(cp, caf::infinite, actors::take_atom::value, which)
          .then([out](offset_map& m, std::int64_t id) {
            out->answered = true;
            out->offsets = std::move(m);
            out->batch_id = id;
          });
    });
    ds.run();
    return out;
  }

  /// The last report's endOffset of `tp`.
  std::int64_t end_offset(const kafka::topic_partition& tp) const {
    BOOST_REQUIRE(!reports.empty());
    for (auto& p : reports.back().partitions)
      if (p.topic == tp.topic && p.partition == tp.partition) return p.end_offset;
    BOOST_FAIL("no such partition in the report");
    return -2;
  }

  ~checkpoint_fixture() {
    caf::anon_send_exit(checkpoint, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(me, caf::exit_reason::user_shutdown);
    ds.run();
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(checkpoint_commits)

BOOST_FIXTURE_TEST_CASE(an_epoch_commits_each_watermark_the_group_does_not_hold,
                        checkpoint_fixture) {
  report(p0, 10);
  report(p1, 4);
  BOOST_CHECK(committer.async.empty()); // nothing before the epoch ends
  next_epoch();
  BOOST_REQUIRE_EQUAL(committer.async.size(), 1u);
  BOOST_CHECK((committer.async[0].offsets == offset_map{{p0, 10}, {p1, 4}}));
  // The report waits for the commit's answer, so that endOffset is what the
  // group holds.
  BOOST_CHECK(reports.empty());
  committer.answer(0);
  ds.run();
  BOOST_REQUIRE_EQUAL(reports.size(), 1u);
  BOOST_CHECK_EQUAL(end_offset(p0), 10);
  BOOST_CHECK_EQUAL(end_offset(p1), 4);
  BOOST_CHECK_EQUAL(reports[0].batch_id, committer.async[0].batch_id);

  // Only what moved is committed again; an epoch where nothing moved commits
  // nothing.
  report(p1, 9);
  next_epoch();
  BOOST_REQUIRE_EQUAL(committer.async.size(), 2u);
  BOOST_CHECK((committer.async[1].offsets == offset_map{{p1, 9}}));
  BOOST_CHECK_GT(committer.async[1].batch_id, committer.async[0].batch_id);
  committer.answer(1);
  ds.run();
  next_epoch();
  BOOST_CHECK_EQUAL(committer.async.size(), 2u);
  BOOST_CHECK(fatal.empty());
}

BOOST_FIXTURE_TEST_CASE(commits_go_one_at_a_time_and_a_late_epoch_rides_with_the_next,
                        checkpoint_fixture) {
  report(p0, 10);
  next_epoch();
  BOOST_REQUIRE_EQUAL(committer.async.size(), 1u);
  // The commit does not answer; the partition moves on and two epochs end.
  report(p0, 20);
  next_epoch();
  next_epoch();
  // No second commit while the first is out: librdkafka retries a refused
  // commit later, and an older one landing after a newer would move the group
  // backwards.
  BOOST_CHECK_EQUAL(committer.async.size(), 1u);
  committer.answer(0);
  ds.run();
  next_epoch();
  BOOST_REQUIRE_EQUAL(committer.async.size(), 2u);
  // orders/1's 0 went with the first commit.
  BOOST_CHECK((committer.async[1].offsets == offset_map{{p0, 20}}));
}

BOOST_FIXTURE_TEST_CASE(
    a_failed_commit_is_retried_at_the_next_epoch_and_the_report_says_so,
    checkpoint_fixture) {
  report(p0, 10);
  next_epoch();
  commit_outcome failed;
  failed.error = "Broker: Request timed out";
  committer.answer(0, failed);
  ds.run();
  BOOST_REQUIRE_EQUAL(reports.size(), 1u);
  // The group holds nothing yet: endOffset says what it held before.
  BOOST_CHECK_EQUAL(end_offset(p0), -1);
  BOOST_CHECK_NE(
      reports[0].message.find("offset commit failed (Broker: Request timed out)"),
      std::string::npos);
  next_epoch();
  BOOST_REQUIRE_EQUAL(committer.async.size(), 2u);
  BOOST_CHECK((committer.async[1].offsets == offset_map{{p0, 10}, {p1, 0}}));
  BOOST_CHECK(fatal.empty());
}

BOOST_FIXTURE_TEST_CASE(a_commit_refused_by_a_rebalance_pauses_reading_until_one_passes,
                        checkpoint_fixture) {
  report(p0, 10);
  next_epoch();
  committer.answer(0, refused_by_rebalance());
  ds.run();
  BOOST_CHECK(ctx.quiesced.load());
  next_epoch();
  BOOST_REQUIRE_EQUAL(committer.async.size(), 2u);
  committer.answer(1);
  ds.run();
  BOOST_CHECK(!ctx.quiesced.load());
  BOOST_CHECK(fatal.empty());
}

BOOST_FIXTURE_TEST_CASE(with_assign_a_rebalance_refusal_is_just_a_failed_commit,
                        checkpoint_fixture) {
  // No group membership to wait for: the group is in use by members.
  cfg.source.subscription = subscription_kind::assign;
  report(p0, 10);
  next_epoch();
  committer.answer(0, refused_by_rebalance());
  ds.run();
  BOOST_CHECK(!ctx.quiesced.load());
  next_epoch();
  BOOST_CHECK_EQUAL(committer.async.size(), 2u); // retried
}

BOOST_FIXTURE_TEST_CASE(a_commit_the_acls_deny_fails_the_run, checkpoint_fixture) {
  report(p0, 10);
  next_epoch();
  commit_outcome denied;
  denied.error = "not authorized: Read on group `checkpoint-test`";
  denied.denied = true;
  committer.answer(0, denied);
  ds.run();
  BOOST_REQUIRE_EQUAL(fatal.size(), 1u);
  BOOST_CHECK_EQUAL(
      fatal[0], "offset commit refused: not authorized: Read on group `checkpoint-test`");
}

BOOST_FIXTURE_TEST_CASE(a_final_take_waits_for_the_outstanding_commit,
                        checkpoint_fixture) {
  report(p0, 10);
  next_epoch();
  report(p0, 25);
  auto t = take({}); // the run's end: every partition
  BOOST_CHECK(!t->answered);
  committer.answer(0);
  ds.run();
  BOOST_REQUIRE(t->answered);
  // What the answered commit holds is not handed over again.
  BOOST_CHECK((t->offsets == offset_map{{p0, 25}}));
  // The take forgot the partitions: a later report of theirs is stale.
  report(p0, 30);
  next_epoch();
  BOOST_CHECK_EQUAL(committer.async.size(), 1u);
}

BOOST_FIXTURE_TEST_CASE(a_final_take_stops_waiting_after_five_seconds,
                        checkpoint_fixture) {
  report(p0, 10);
  next_epoch();
  auto t = take({});
  BOOST_CHECK(!t->answered);
  ds.advance_time(std::chrono::milliseconds(4999));
  ds.run();
  // Epochs ended meanwhile, without a second commit; the take still waits.
  BOOST_CHECK(!t->answered);
  BOOST_CHECK_EQUAL(committer.async.size(), 1u);
  ds.advance_time(std::chrono::milliseconds(1));
  ds.run();
  BOOST_REQUIRE(t->answered);
  // The unanswered commit may not have landed: its offsets are handed over.
  BOOST_CHECK((t->offsets == offset_map{{p0, 10}, {p1, 0}}));
}

BOOST_FIXTURE_TEST_CASE(a_revocation_takes_only_its_partitions_without_waiting,
                        checkpoint_fixture) {
  report(p0, 10);
  report(p1, 7);
  next_epoch();
  report(p1, 12);
  // From the rebalance callback, on the thread that delivers commit answers:
  // waiting for the outstanding one would only wait the full time.
  auto t = take({p1});
  BOOST_REQUIRE(t->answered);
  BOOST_CHECK((t->offsets == offset_map{{p1, 12}}));
  committer.answer(0);
  ds.run();
  report(p0, 15);
  next_epoch();
  BOOST_REQUIRE_EQUAL(committer.async.size(), 2u);
  BOOST_CHECK((committer.async[1].offsets == offset_map{{p0, 15}}));
}

BOOST_AUTO_TEST_SUITE_END()
