/* tvn/shard.h - dedup workers: one struct dedup per shard, fed by the inner flow key.
 * Owns: the worker threads, the SPSC rings from the ingest thread to each worker, the
 * routing (tuple_hash of the inner 5-tuple, symmetric, so both copies and both
 * directions of a connection meet in one shard) and each shard's published counters.
 * Does not own: the outputs (egress.h; shard i is egress producer i) or parsing
 * (ingest.h). Submitting is for one thread only (the ingest or reader thread). No lock
 * is taken per packet. */
#ifndef TVN_SHARD_H
#define TVN_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dedup.h"
#include "egress.h"
#include "ingest.h"

struct shard_cfg {
	unsigned n_threads; /* 0: dedup runs inline in the submitting thread */
	struct dedup_cfg dedup;
	size_t ring_bytes; /* per shard */
	bool block;	   /* offline: wait for ring space instead of dropping */
};

struct shard_set;

/* Number of egress producers a shard set of cfg needs (max(1, n_threads)). */
unsigned shard_producers(const struct shard_cfg *cfg);

/* Creates the dedup instances and starts the workers. end (may be NULL) is called from
 * the worker threads. Returns NULL with errno set. */
struct shard_set *shard_set_new(const struct shard_cfg *cfg, struct egress *eg, dedup_end_fn end,
				void *end_ctx);
/* Processes what is queued, stops the workers and frees (end is not called). NULL-safe. */
void shard_set_free(struct shard_set *s);

/* Queues one validated frame or metadata message for its shard. Returns 0, or -ENOBUFS
 * when that shard's ring is full (the packet is dropped; the caller counts it). */
int shard_submit(struct shard_set *s, const struct ingest_pkt *p, uint64_t ts_ns);
/* Inline mode (n_threads 0): publishes the counters and answers a pending
 * shard_foreach_flow(); the submitting thread calls it between receive batches. No-op
 * with worker threads (they do it themselves). */
void shard_service(struct shard_set *s);
/* Lets every shard expire flows idle at now_ns (call about once a second). */
void shard_tick(struct shard_set *s, uint64_t now_ns);
/* Ends every flow in every shard and returns when all are done (offline end, shutdown). */
void shard_flush(struct shard_set *s);

/* Sum of the counters every shard published (at most a batch old). */
void shard_get_stats(struct shard_set *s, struct dedup_stats *sum);
/* Calls fn for every active flow, shard by shard, inside each worker between batches.
 * Returns 0, fn's non-zero value, or -ETIMEDOUT when a worker did not answer. fn runs
 * on worker threads, one at a time. */
int shard_foreach_flow(struct shard_set *s, int (*fn)(void *ctx, const struct dedup_flow_info *f),
		       void *ctx);

#endif
