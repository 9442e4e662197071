#include "actors/messages.hpp"
#include "actors/stages.hpp"
#include "dedup/partition_dedup.hpp"

#include <caf/all.hpp>

namespace sluice::actors {

namespace {

/// The dedup stage of one partition chain. It runs detached, on a thread
/// of its own: RocksDB reads and writes, and the restore from the changelog
/// when it opens, block, and must not hold a scheduler thread.
struct dedup_state {
  std::unique_ptr<dedup::partition_dedup> work;
};

/// Opens the partition's state (taking its table, restoring it from the
/// changelog) as its first message, before any batch: so that the restore
/// starts with the chain, and the keys of a partition without new records
/// are counted too.
caf::behavior dedup_stage(caf::stateful_actor<dedup_state>* self, run_context* ctx,
                          kafka::topic_partition tp, caf::actor next,
                          std::shared_ptr<chain_deliveries> deliveries,
                          std::shared_ptr<std::string> chain_error) {
  fail_on_exception(self, std::move(chain_error));
  auto open = [self, ctx, tp, deliveries] {
    auto& st = self->state;
    if (st.work) return;
    dedup::changelog_target target;
    target.topic = ctx->config.dedup->changelog_topic();
    target.partitions = ctx->changelog_partitions;
    target.client = ctx->changelog_client;
    target.timeout = ctx->config.runtime.broker_timeout;
    st.work = std::make_unique<dedup::partition_dedup>(
        *ctx->config.dedup, *ctx->state_store, tp, target,
        [deliveries] { return deliveries->retired.load(); });
    ctx->metrics.set_state_rows(tp, st.work->rows());
  };
  self->send(self, open_atom::value);
  return {
      [=](open_atom) { open(); },
      [=](batch_ptr& batch) {
        open(); // a batch queued before the open message
        auto& st = self->state;
        auto effect = st.work->process(*batch);
        ctx->metrics.set_state_rows(tp, st.work->rows());
        ctx->metrics.state_rows_updated += effect.updated;
        ctx->metrics.state_rows_removed += effect.removed;
        self->send(next, std::move(batch));
      },
  };
}

} // namespace

caf::actor spawn_dedup_stage(caf::event_based_actor* owner, run_context* ctx,
                             const kafka::topic_partition& tp, caf::actor next,
                             std::shared_ptr<chain_deliveries> deliveries,
                             std::shared_ptr<std::string> chain_error) {
  return owner->spawn<caf::linked + caf::detached>(dedup_stage, ctx, tp, std::move(next),
                                                   std::move(deliveries),
                                                   std::move(chain_error));
}

} // namespace sluice::actors
