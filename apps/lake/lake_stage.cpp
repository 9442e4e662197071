#include "apps/lake/lake_stage.hpp"

#include "apps/lake/lake_files.hpp"

#include <caf/all.hpp>

#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

namespace sluice::lake {

namespace {

using publish_atom = caf::atom_constant<caf::atom("publish")>;

/// The stage interface, plus the writer's own timer.
using writer_actor = stage_actor::extend<caf::reacts_to<publish_atom, std::uint64_t>>;

struct writer_state {
  std::unique_ptr<partition_files> files;
  /// Batches whose lines are not published yet, answered in order after it.
  std::vector<std::pair<caf::typed_response_promise<batch_ptr>, batch_ptr>> held;
  std::uint64_t round = 0; // a timer of an earlier round is stale
  bool started = false;
  std::string line;
};

using writer = writer_actor::stateful_pointer<writer_state>;

void publish(writer self) {
  auto& st = self->state;
  st.files->publish();
  for (auto& [promise, batch] : st.held)
    promise.deliver(std::move(batch));
  st.held.clear();
  ++st.round;
}

writer_actor::behavior_type write_files(writer self, lake_options opts,
                                        stage_origin origin) {
  report_exceptions(self);
  self->state.files =
      // A writer of this partition before this one (a chain just restarted,
      // another instance) ends first: it still handles what was queued.
      std::make_unique<partition_files>(opts.dir, origin.topic, origin.partition,
                                        std::chrono::seconds(30));
  return {[self, opts](batch_ptr& batch) -> caf::result<batch_ptr> {
            auto& st = self->state;
            if (!st.started) {
              // What is at or past this batch was never committed: it is
              // written again now, so an earlier run's copy goes.
              st.files->forget_from(batch->begin_offset);
              st.started = true;
            }
            for (auto& r : batch->records) {
              if (r.error || r.dropped) continue; // on its way to the DLQ, or a drop
              auto date = event_date(r, opts.date_field);
              if (!date) {
                r.error = record_error{
                    "no_event_date",
                    opts.date_field.empty()
                        ? std::string("the record has no Kafka timestamp")
                        : "field `" + opts.date_field +
                              "` is missing or not a time (ISO-8601 text, or epoch ms "
                              "from 1973-03-03 on: a smaller number is taken for "
                              "seconds)"};
                continue;
              }
              // One line each: a value with a line break is written from its fields.
              if (opts.schemaless && r.value &&
                  r.value->find_first_of("\r\n") == std::string::npos) {
                st.files->append(*date, r.offset, *r.value); // as it came, no copy
              } else {
                st.line.clear();
                write_fields(r, st.line);
                st.files->append(*date, r.offset, st.line);
              }
            }
            auto promise = self->make_response_promise<batch_ptr>();
            st.held.emplace_back(promise, std::move(batch));
            if (st.files->pending_lines() >= opts.file_records)
              publish(self);
            else if (st.held.size() == 1)
              self->delayed_send(self, opts.file_interval, publish_atom::value, st.round);
            return promise;
          },
          [self](publish_atom, std::uint64_t round) {
            if (round == self->state.round && !self->state.held.empty()) publish(self);
          }};
}

} // namespace

actor_stage lake_stage(const lake_options& options) {
  actor_stage s;
  s.make = [options](caf::actor_system& sys, const stage_origin& origin) -> stage_actor {
    // A partition's files and their clean-up at a restart assume one writer.
    if (origin.lane != 0)
      throw std::invalid_argument("the lake writes each partition with one writer: unset "
                                  "source.minPartitions (lanes)");
    // Blocking file I/O: a thread of its own, so that a slow disk holds
    // back this partition only.
    return sys.spawn<caf::detached>(write_files, options, origin);
  };
  // Batches wait for a publish; the partition's credit bounds how many.
  s.max_in_flight = 100000;
  s.timeout = options.file_interval + std::chrono::seconds(60);
  s.delivers = "files:" + options.dir.string();
  return s;
}

} // namespace sluice::lake
