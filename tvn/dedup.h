/* tvn/dedup.h - flow-level duplicate suppression (DESIGN §4 "Dedup modes").
 * Owns: the flow table (key: full 5-tuple, both directions of a connection in one entry),
 * per-direction emitted sequence ranges, sources seen, agent metadata, idle expiry.
 * Does not own: packet buffers (the caller's; frames handed to emit are valid only
 * during the call), sockets, clocks (every call takes ts_ns). One instance per shard;
 * not thread-safe. */
#ifndef TVN_DEDUP_H
#define TVN_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta.h"
#include "pkt.h"
#include "tuple.h"

enum dedup_mode { DEDUP_BYTES = 0, DEDUP_FLOW, DEDUP_CONTENT, DEDUP_PACKET, DEDUP_OFF };

/* Where a copy came from: the outer source address and VNI of the VxLAN datagram, or
 * (offline, inner-frame captures) the file index in addr[15] with vni 0. */
struct dedup_src {
	uint8_t addr[16];
	uint32_t vni;
};

struct dedup_cfg {
	enum dedup_mode mode;
	uint64_t max_flows;	       /* table bound; beyond it new flows pass un-deduplicated */
	uint64_t max_flows_per_source; /* 0 = no per-source bound */
	uint64_t flow_timeout_ns;      /* idle expiry */
	uint64_t skew_ns;	       /* how late a second copy may arrive and still be matched */
	uint64_t window_ns;	       /* packet/content modes: comparison window */
};

/* Counters; all monotonic except flows_active. */
struct dedup_stats {
	uint64_t rx_packets; /* frames given to dedup_input() */
	uint64_t rx_bytes;
	uint64_t emitted_packets; /* frames handed to emit (whole or trimmed) */
	uint64_t emitted_bytes;
	uint64_t dropped_packets;   /* frames suppressed entirely as duplicates */
	uint64_t trimmed_packets;   /* frames emitted with part of their payload removed */
	uint64_t dup_bytes;	    /* payload bytes suppressed */
	uint64_t overlap_conflicts; /* copies disagreeing on bytes of the same range */
	uint64_t table_full;	    /* frames passed un-deduplicated because the table was full */
	uint64_t source_limited;    /* frames passed un-deduplicated: per-source bound reached */
	uint64_t meta_frames;	    /* metadata messages consumed */
	uint64_t flows_active;
	uint64_t flows_total;
	uint64_t flows_expired;
	uint64_t holes_abandoned; /* bytes mode: sequence holes given up (too many, too old) */
};

#define DEDUP_MAX_SOURCES 4

/* Who one end of a connection is, from the agents' metadata of that role: each field
 * as last reported non-empty (an end record of a process that has exited carries no
 * container id; the start record did). */
struct dedup_end {
	int64_t pid;
	char comm[16];
	char container[80];
};

/* What the flow log and /flows report about one connection. tuple is as first seen
 * (client -> server when metadata said so). */
struct dedup_flow_info {
	struct ecv_tuple tuple;
	uint32_t isn[2]; /* per direction: [0] tuple's src->dst, [1] reverse */
	uint64_t first_ns, last_ns;
	struct dedup_src sources[DEDUP_MAX_SOURCES];
	unsigned n_sources;
	int kept_source; /* index into sources of the copy kept (flow mode), -1 */
	uint64_t pkts_in, bytes_in, pkts_out, bytes_out, pkts_dropped,
		bytes_dropped; /* payload bytes */
	uint64_t overlap_conflicts;
	bool mid_stream; /* some copy had no absolute offsets */
	bool have_meta;
	struct meta_flow meta; /* the latest agent metadata, if have_meta */
	/* Per role: [0] client, [1] server (all zero: no metadata of that role). */
	struct dedup_end ends[2];
};

/* A frame to deliver to the outputs (whole, or rebuilt with trimmed payload and fixed
 * lengths/checksums). src is the copy it came from. */
typedef void (*dedup_emit_fn)(void *ctx, const uint8_t *frame, size_t len, uint64_t ts_ns,
			      const struct dedup_src *src);
/* A connection left the table (both FINs/RST delivered and quiet, idle expiry, or
 * dedup_flush()). */
typedef void (*dedup_end_fn)(void *ctx, const struct dedup_flow_info *flow);

/* Returns NULL with errno set (EINVAL for a bad cfg, ENOMEM). end may be NULL. */
struct dedup *dedup_new(const struct dedup_cfg *cfg, dedup_emit_fn emit, dedup_end_fn end,
			void *ctx);
void dedup_free(struct dedup *d); /* NULL-safe; does not call end */

/* One inner frame that pkt_parse() accepted (return 0) from src at ts_ns. Non-TCP
 * frames are passed through (emitted) unless the mode is packet. */
void dedup_input(struct dedup *d, const uint8_t *frame, size_t len, const struct pkt_info *info,
		 const struct dedup_src *src, uint64_t ts_ns);
/* One decoded metadata message (consumed, never emitted). */
void dedup_meta(struct dedup *d, const struct meta_flow *m, const struct dedup_src *src,
		uint64_t ts_ns);
/* Ends flows idle since before now_ns - flow_timeout, and closed flows idle for skew
 * (calls end for each); first delivers (calls emit for) data frames held back for more
 * than skew behind a hole the other copy did not fill, then FINs held back for more than
 * skew waiting for the other copy to confirm them, each followed by the peer's ACK of it
 * held back with it, timed no earlier than what their flow already emitted. Call it
 * regularly (e.g. every 100 ms). */
void dedup_expire(struct dedup *d, uint64_t now_ns);
/* Ends every flow (calls end for each, after emitting any data, FIN, and ACK of it, still
 * held back), e.g. at shutdown or the end of --read. */
void dedup_flush(struct dedup *d);

void dedup_get_stats(const struct dedup *d, struct dedup_stats *st);
/* Calls fn for every active flow; stops early when fn returns non-zero. */
int dedup_foreach(const struct dedup *d, int (*fn)(void *ctx, const struct dedup_flow_info *f),
		  void *ctx);
/* Parses "bytes", "flow", ... Returns 0 or -EINVAL. */
int dedup_mode_parse(const char *s, enum dedup_mode *mode);
const char *dedup_mode_name(enum dedup_mode mode);
/* Bytes of memory one flow entry costs (table slot + state), for documentation. */
size_t dedup_flow_bytes(void);

#endif
