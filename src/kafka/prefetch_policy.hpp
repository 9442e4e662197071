#pragma once

#include <sluice/config.hpp>

#include <cstddef>

namespace sluice::kafka {

/// The source's options with librdkafka's prefetch limits sized from the
/// run's credit (each only where the user set none), for a source of
/// `partitions` partitions (64 and more share alike).
///
/// librdkafka prefetches into each partition's queue up to
/// `queued.min.messages` and `queued.max.messages.kbytes`, per partition once
/// the queues are split (64 MiB and 100,000 messages by default: gigabytes
/// for 64 partitions). Here a partition prefetches at most 1/64 of the byte
/// credit (512 KiB by default), so 64 partitions hold about one more credit's
/// worth. Measured (1M events, 64 partitions): 1 MiB per partition peaks near
/// 300 MB RSS, 512 KiB near 180 MB at the same speed, 256 KiB near 110 MB but
/// about 30% slower.
/// With fewer partitions each gets a larger share (1/N of the credit below 64
/// partitions): librdkafka 2.0.2 stops fetching a partition whose queue is
/// over these limits and looks again only when its broker thread wakes up
/// (up to a second later; fetch.queue.backoff.ms came in 2.2). Many
/// partitions' fetches keep waking it; a lone partition at 512 KiB read
/// about 5,000 records/s (measured: 20,000 records in 4.1 s, 0.15 s at 32 MiB).
source_options with_prefetch_limits(const pipeline_config& cfg,
                                    std::size_t partitions = 64);

} // namespace sluice::kafka
