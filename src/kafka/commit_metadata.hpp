#pragma once

// The metadata Sluice keeps with each committed offset: the epoch id
// (`sluice.batchId=<n>`), so that a restart continues the numbering.

#include "kafka/offset_committer.hpp"
#include "kafka/partition_lists.hpp"

namespace sluice::kafka {

/// A commit list of `offsets`; with `batch_id` >= 0, every entry carries it
/// in its metadata. The caller destroys the list.
tp_list* commit_list(const offset_map& offsets, std::int64_t batch_id);

/// The epoch id kept in a committed offset's metadata; -1 when there is none.
std::int64_t batch_id_of(const rd_kafka_topic_partition_t& entry);

} // namespace sluice::kafka
