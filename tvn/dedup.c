/* tvn/dedup.c - flow-level duplicate suppression (DESIGN §4 "Dedup modes").
 *
 * Flow table: chained hash on flow_hash() (symmetric, so both directions of a connection
 * land in one entry), identity = the full 5-tuple compared with memcmp; the ISN is never
 * used to identify a flow. Entries come from a pool grown in chunks (no malloc per packet,
 * one per POOL_CHUNK new flows) and sit on one of two lists ordered by last activity:
 * open flows (expire after flow_timeout idle) and closed flows (both FINs or a RST
 * delivered: expire after skew idle, so a late copy's handshake/FINs still meet them).
 *
 * bytes mode: per direction the set of sequence ranges already emitted, stored as
 * absolute 32-bit sequence numbers and compared with serial arithmetic relative to the
 * highest emitted end (so wrap-around at 2^32 needs no special case and a flow may carry
 * any number of bytes). Two ranges live inline (one hole, the common loss case); more
 * spill to a heap array of up to MAX_RANGES; beyond that, or when a hole falls more than
 * STALE_SPAN behind the head, the lowest hole is given up (stats.holes_abandoned). The
 * segments that make up most traffic skip the general merge: payload at a direction's
 * emitted edge (the first copy, in order) extends the last range, a segment the last
 * range covers whole (the second copy) is compared and dropped, and a direction's first
 * SYN starts the ranges.
 *
 * Overlap conflicts: each direction that carries payload gets (while the global budget
 * RING_BUDGET lasts) a RING_SIZE ring of the most recently emitted bytes, indexed by
 * sequence number. A duplicate's covered bytes that still lie in the ring are compared
 * with what was emitted; older bytes, and directions without a ring, are not checked.
 * With the defaults that is the last 64 KiB of 4096 concurrent directions.
 *
 * Copies without absolute offsets (no SYN from that source and no metadata saying
 * from_start; or an agent that restarted mid-flow and announced the flow again as not
 * from_start) cannot be aligned with the other copy byte by byte, so their flow falls
 * back to flow mode: the first source with absolute offsets, else the first source, is
 * kept (still range-tracked so its own retransmissions are removed) and the others are
 * discarded. flow mode does the same for every flow. Relative offsets are never laid
 * over a stream that absolute ones already delivered: such packets are dropped. If the
 * kept source stays silent for more than skew while another source still sends, the
 * other source becomes the kept one and continues from the next byte not yet emitted;
 * when nothing absolute went out yet, the ranges are reset instead (the new copy's
 * position in the stream is unknown: some bytes may repeat or be missing).
 *
 * FINs: an agent that is stopped sends FINs for its open connections, at its current
 * offsets, while the other node's copy goes on; delivered, such a FIN would end the
 * stream for the tools early and take a sequence byte the data needs. So in bytes mode a
 * FIN is held back (struct held_seg) while another copy is being deduplicated against
 * this one or may still turn up (the flow is younger than skew): it goes out when a
 * second copy's FIN confirms it (that one is delivered), it is dropped when another
 * copy's data runs past it, and it is delivered by dedup_expire() after skew or at the
 * flow's end otherwise. A flow seen from one node only gets its FINs at once once it is
 * older than skew; a young one gets them after skew.
 *
 * The output must still read as one TCP conversation, so in bytes mode no frame goes out
 * acknowledging sequence space of the other direction that was not emitted before it
 * (analysers call that "ACKed unseen segment", then flag the FIN as a retransmission):
 * the peer's bare ACK of a held FIN (ack = FIN + 1, the last ACK of a close) is held
 * with it and goes out right after it (or, when the FIN is dropped, after the data that
 * ran past it); any other frame acknowledging more than went out has its ack cut to the
 * other direction's emitted edge (checksum fixed incrementally, the frame otherwise as
 * received). Held FINs are released in the order they were held, and a released segment
 * never goes out with a time earlier than what its flow already emitted.
 *
 * Holes: when one copy lost bytes that another copy still brings (the usual case: the
 * copies lag each other by milliseconds), the first copy's segments past the hole would
 * reach the tools before the filler, and analysers read that as a lost segment followed
 * by a retransmission. So in bytes mode a data segment that starts beyond its
 * direction's emitted edge, while another copy sends or may still turn up (the FIN
 * rule), is held (struct held_frame, copied) with the later ones of its copy, and goes
 * out, in arrival order and through the same bookkeeping, as soon as the edge reaches
 * it; all of them go out when another copy's data jumps past the edge too (the hole is
 * in both), before a RST, after skew (dedup_expire()), at the flow's end, or when the
 * bounds (HOLD_DIR_MAX per direction, HOLD_BUDGET in total) say no. The bytes still come
 * from whichever copy brought them first; only their order changes: another copy's
 * segment that fills the hole and runs on into the held frames goes out in pieces, each
 * ending where the oldest held frame starts (hold_fill()). Latency: data past a hole
 * waits for the lag between the copies (at most skew).
 *
 * A restarted agent's copy (relative offsets) is never laid over absolute output, even
 * after the flow entry ended: a connection that delivered absolute offsets leaves a
 * tombstone (its tuple hash, for flow_timeout); a flow recreated for that tuple without
 * a SYN is treated as having absolute output already, so relative copies are dropped.
 *
 * content and packet modes use a bucketed hash set (HSET_BUCKETS x HSET_WAYS = 1 Mi
 * entries, 16 MiB, oldest way replaced) of 64-bit digests stamped with time (~1 us
 * resolution) and source; a digest older than window_ns is ignored. When more than
 * about a million frames arrive within one window, the oldest are forgotten early and
 * their repeats pass (the drop counters then fall short; nothing is lost). Flow entries
 * are still kept for accounting (/flows, the flow log) in every mode, TCP only.
 *
 * Memory: dedup_flow_bytes() (248 bytes on x86-64: the pooled entry and its bucket
 * pointer) per flow; on top, only where needed: a 64 KiB ring per direction carrying
 * payload (bounded by RING_BUDGET in total, recycled through a free list), 256 bytes
 * per direction with more than two ranges, one struct meta_flow per flow with metadata,
 * the frames held behind holes (HOLD_DIR_MAX per direction, HOLD_BUDGET in total).
 *
 * Limits: trimmed pieces are rebuilt by pkt_build(), so they carry the original MACs,
 * outer VLAN, addresses, ports, IP id, ack, window and flags, but TTL 64, no IP or TCP
 * options and no second VLAN tag. A 5-tuple reused within skew of its previous
 * connection's end, while that connection's late copy is still arriving, cannot be told
 * from it (same ISN): the late copy then meets the new flow's ranges. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dedup.h"
#include "hash.h"
#include "isn.h"

#define INLINE_RANGES 2
#define MAX_RANGES 255 /* dir_state.n is a uint8_t */
_Static_assert(MAX_RANGES <= 255, "dir_state.n holds the range count");
#define STALE_SPAN (1u << 30)
#define RING_SIZE (64u << 10) /* a power of two dividing 2^32 */
#define RING_BUDGET (256ull << 20)
#define RING_SLAB 32 /* rings per allocation (2 MiB), apart from the heap's small objects */
#define POOL_CHUNK 4096
#define MAX_BUCKETS (1u << 22)
#define SRC_MAX 65535u
#define SRC_NONE 0xffffu
#define HSET_BUCKETS (1u << 17) /* x HSET_WAYS x 16 bytes = 16 MiB, packet/content only */
#define HSET_WAYS 8
#define TOMB_BUCKETS (1u << 12) /* x TOMB_WAYS x 16 bytes = 256 KiB, on first use */
#define TOMB_WAYS 4
/* Frame bytes held after a fresh hole, per direction: what the copy that fills the hole
 * may lag behind (a reader's node trails the writer's by its socket buffers and TCP
 * window, several MiB on a fast link); data released before its filler reads to
 * analysers as a lost segment and an out-of-order one. */
#define HOLD_DIR_MAX (16u << 20)
#define HOLD_BUDGET (64ull << 20) /* ... and in total */
/* What a held frame costs against those bounds: its bytes, its header and malloc's own
 * chunk header, so that tiny frames cannot hold twice the memory the bounds name. */
#define HOLD_COST(len) (sizeof(struct held_frame) + 2 * sizeof(size_t) + (len))

/* On the per-packet path of every frame: inlined whatever the compiler's size estimate,
 * since a call costs about as much as these do (the callers pass up to ten arguments). */
#define HOT static inline __attribute__((always_inline))

/* dir_state.flags */
#define DIR_SYN 0x01	/* a SYN was emitted; syn_seq holds its sequence number */
#define DIR_FIN 0x02	/* a FIN was emitted */
#define DIR_RST 0x04	/* a RST was emitted */
#define DIR_ACK 0x08	/* max_ack is valid */
#define DIR_NORING 0x10 /* payload went out without a ring: never start one */

/* flow.sflags[] per source slot */
#define SF_PKT 0x01   /* sent packets (not only metadata) */
#define SF_CLASS 0x02 /* offsets classified at the first packet */
#define SF_ABS 0x04   /* absolute offsets: SYN seen or metadata from_start */
#define SF_SYN0 0x08  /* sent a SYN in direction 0 */
#define SF_SYN1 0x10
#define SF_MID 0x20 /* metadata announced the copy mid-stream: its SYN is synthesized */

/* flow.flags */
#define FL_MID 0x01	 /* some copy is mid-stream: keep-first-source fallback */
#define FL_CLOSED 0x02	 /* both FINs or a RST delivered; on the closed list */
#define FL_ORIENTED 0x04 /* tuple is client -> server (pure SYN or metadata role) */
#define FL_ABS_OUT 0x08	 /* a copy with absolute offsets has delivered */

struct rng {
	uint32_t lo, hi; /* [lo, hi) in sequence space */
};

struct ring {
	union {
		uint32_t from;	   /* bytes before this sequence number were never written */
		struct ring *next; /* on the free list */
	};
	/* The sequence number stored at data[0]: the direction's first payload, so a flow's
	 * bytes start next to this header. A short flow touches only the first pages of its
	 * ring (indexed by seq alone they landed anywhere in the 64 KiB), and a recycled
	 * ring's next flow reuses those pages: fewer page faults on fresh rings, and in a
	 * long run the rings' resident memory stays near what the flows really keep. */
	uint32_t base;
	uint8_t data[RING_SIZE];
};

struct dir_state {
	union {
		struct rng in[INLINE_RANGES];
		struct rng *ext; /* MAX_RANGES entries when n > INLINE_RANGES */
	} r;
	uint8_t n;
	uint8_t flags;
	uint32_t syn_seq;
	uint32_t max_ack;
	struct ring *ring;
};

/* Fields in the order a packet uses them: what the bucket walk compares (hnext, hash,
 * tuple) and the source slot lookup in the first 64 bytes, the per-packet state next,
 * what only the flow log reads last. */
struct flow {
	struct flow *hnext;
	uint32_t hash;
	uint8_t nsrc;
	int8_t kept;
	uint8_t flags;
	struct ecv_tuple tuple;
	uint16_t src[DEDUP_MAX_SOURCES]; /* source registry ids */
	uint8_t sflags[DEDUP_MAX_SOURCES];
	uint32_t pkts_in;
	uint64_t last_ns;
	uint64_t bytes_in; /* payload bytes, like bytes_out and bytes_dropped */
	struct flow *prev, *next;
	struct flow_ext *ext; /* allocated when metadata or a held FIN needs it */
	struct dir_state dir[2];
	uint64_t first_ns, kept_ns;
	uint64_t bytes_out, bytes_dropped;
	uint32_t pkts_out, pkts_dropped, conflicts;
};
_Static_assert(offsetof(struct flow, sflags) == 64, "bucket walk and slot lookup: 64 bytes");

/* A header-only segment kept back, with everything needed to rebuild it: a FIN one copy
 * sent where another copy still sends (until a second copy confirms it, another copy's
 * data runs past it, or skew passes), or a bare ACK that acknowledges such a FIN of the
 * other direction (it goes out right after that FIN). */
struct held_seg {
	uint64_t ts;
	uint32_t seq, ack;
	uint16_t window, ip_id, vlan, src;
	uint8_t flags;
	uint8_t mac[12];
};

/* A data frame held back behind a fresh hole (see bytes_hold()), copied whole. */
struct held_frame {
	struct held_frame *next;
	uint64_t ts;
	uint32_t len, seq;
	uint16_t src;
	uint8_t b[];
};

/* flow_ext.held bits */
#define HELD_FIN(dir) (1u << (dir))
#define HELD_ACK(dir) (4u << (dir))
#define HELD_DATA(dir) (16u << (dir))

struct flow_ext {
	struct meta_flow meta;
	bool have_meta;
	uint8_t held; /* HELD_FIN/HELD_ACK/HELD_DATA per direction */
	struct held_seg fin[2];
	struct held_seg ack[2];
	/* Per direction while HELD_DATA: frames of one copy (source qsrc) that start beyond
	 * the emitted edge, in arrival order, costing qbytes (HOLD_COST) in all. */
	struct held_frame *q[2], *qlast[2];
	uint32_t qbytes[2];
	uint16_t qsrc[2];
	uint8_t releasing; /* per direction (bit dir): hold_release() is running */
	/* Latest timestamp emitted in the flow (at least the flow's last activity when the
	 * extension was made): released segments never go out earlier than it. Only held
	 * segments can come out of time order, and they live here too. */
	uint64_t emit_ns;
	struct flow *hprev, *hnext; /* dedup.held list, while held != 0 */
};

struct flow_list {
	struct flow *head, *tail;
};

struct src_ent {
	struct dedup_src s;
	uint32_t refs;	/* flows listing this source */
	uint64_t owned; /* flows this source created (per-source bound) */
};

/* A connection that delivered absolute offsets and ended, remembered for flow_timeout:
 * a copy that reappears for it without a SYN is an agent restarted mid-connection. */
struct tomb {
	uint64_t key; /* flow_hash64() | 1 */
	uint64_t until;
};

struct hset_ent {
	uint64_t key;  /* digest | 1; 0 = empty */
	uint64_t tsrc; /* (ts_ns >> 10) << 16 | source id: 16 bytes per remembered frame */
};

struct dedup {
	struct dedup_cfg cfg;
	dedup_emit_fn emit;
	dedup_end_fn end;
	void *ctx;
	struct dedup_stats st;
	uint64_t clock; /* latest timestamp seen: keeps the lists ordered */

	struct flow **buckets;
	uint32_t nbuckets;
	struct flow_list open, closed;
	struct flow **chunks;
	size_t nchunks;
	struct flow *free_flows;

	struct src_ent *srcs;
	uint32_t nsrcs, srcs_cap;
	uint16_t *src_index; /* open addressing over srcs, SRC_NONE = empty */
	uint32_t src_index_cap;
	uint32_t src_last[2]; /* the two latest sources looked up (the two copies of a flow) */
	uint16_t *src_free;   /* ids no flow refers to, out of the index (registry full) */
	uint32_t nsrc_free;

	uint64_t ring_bytes; /* rings in use and on the free list */
	uint64_t hold_bytes; /* frames held behind fresh holes */
	struct ring *ring_free;
	struct ring **ring_slabs; /* what ring_get() allocated, for dedup_free() */
	size_t nring_slabs;
	struct flow *held; /* flows holding a FIN back */
	struct tomb *tombs;
	struct hset_ent *hset;

	uint8_t buf[PKT_MAX_FRAME];
};

/* --- small helpers ------------------------------------------------------- */

static inline int32_t sdiff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* Word-at-a-time digest for the content/packet hash sets: they hash every byte of every
 * frame, so a byte-wise hash would dominate the per-packet cost. Four independent lanes
 * keep the multiplier busy on long payloads. Chainable through h. */
static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t n)
{
	const uint64_t k1 = 0x9e3779b97f4a7c15ull, k2 = 0xc2b2ae3d27d4eb4full;
	uint64_t w, v[4] = { h, h ^ k1, h ^ k2, h + k1 };
	unsigned i;

	h ^= n * k2;
	while (n >= 32) {
		for (i = 0; i < 4; i++) {
			memcpy(&w, p + 8 * i, 8);
			v[i] = rotl64(v[i] ^ (w * k1), 29) * k2;
		}
		p += 32;
		n -= 32;
	}
	h ^= hash_mix64(v[0]) + rotl64(hash_mix64(v[1]), 16) + rotl64(hash_mix64(v[2]), 32) +
	     rotl64(hash_mix64(v[3]), 48);
	while (n >= 8) {
		memcpy(&w, p, 8);
		h = rotl64(h ^ (w * k1), 29) * k2;
		p += 8;
		n -= 8;
	}
	if (n) {
		w = 0;
		memcpy(&w, p, n);
		h = rotl64(h ^ (w * k1), 29) * k2;
	}
	return h;
}

/* Symmetric (same for a tuple and its reverse) flow table hash: each endpoint folded into
 * 64 bits, the two put in order (so either direction gives the same pair) and mixed once.
 * tuple_hash() would do, but it hashes byte by byte and the table lookup is on every
 * packet. */
HOT uint64_t flow_hash64(const struct ecv_tuple *t)
{
	uint64_t a0, a1, b0, b1, ha, hb;

	memcpy(&a0, t->saddr, 8);
	memcpy(&a1, t->saddr + 8, 8);
	memcpy(&b0, t->daddr, 8);
	memcpy(&b1, t->daddr + 8, 8);
	ha = a0 ^ rotl64(a1 ^ t->sport, 23);
	hb = b0 ^ rotl64(b1 ^ t->dport, 23);
	if (ha > hb) {
		uint64_t x = ha;

		ha = hb;
		hb = x;
	}
	return hash_mix64(ha * 0x9e3779b97f4a7c15ull + (hb ^ t->proto));
}

/* Whether flow tuple ft is t (*dir = 0) or its reverse (*dir = 1), compared word by word
 * (the 40-byte layout has no holes: pad is zero) rather than by building the reversed
 * tuple. */
static inline bool tuple_match(const struct ecv_tuple *ft, const struct ecv_tuple *t, int *dir)
{
	uint64_t a[4], b[4];
	uint32_t pa, pb, ra, rb;

	_Static_assert(sizeof(struct ecv_tuple) == 40, "addresses, ports, family, proto, pad");
	memcpy(a, ft, sizeof(a));
	memcpy(b, t, sizeof(b));
	memcpy(&pa, &ft->sport, 4);
	memcpy(&pb, &t->sport, 4);
	memcpy(&ra, &ft->family, 4);
	memcpy(&rb, &t->family, 4);
	if (ra != rb)
		return false;
	if (!((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) && pa == pb) {
		*dir = 0;
		return true;
	}
	/* Rotating by 16 swaps sport and dport whatever the byte order. */
	if (!((a[0] ^ b[2]) | (a[1] ^ b[3]) | (a[2] ^ b[0]) | (a[3] ^ b[1])) &&
	    pa == (pb << 16 | pb >> 16)) {
		*dir = 1;
		return true;
	}
	return false;
}

static inline uint32_t flow_hash(const struct ecv_tuple *t)
{
	return (uint32_t)flow_hash64(t);
}

static inline uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/* --- source registry ------------------------------------------------------ */

static uint32_t src_hash(const struct dedup_src *s)
{
	uint64_t a0, a1;

	memcpy(&a0, s->addr, 8);
	memcpy(&a1, s->addr + 8, 8);
	return (uint32_t)hash_mix64((a0 ^ rotl64(a1, 29)) * 0x9e3779b97f4a7c15ull + s->vni);
}

static inline bool src_eq(const struct dedup_src *a, const struct dedup_src *b)
{
	uint64_t x[2], y[2];

	memcpy(x, a->addr, sizeof(x));
	memcpy(y, b->addr, sizeof(y));
	return a->vni == b->vni && !((x[0] ^ y[0]) | (x[1] ^ y[1]));
}

static void src_index_insert(struct dedup *d, uint32_t id)
{
	uint32_t mask = d->src_index_cap - 1, i = src_hash(&d->srcs[id].s) & mask;

	while (d->src_index[i] != SRC_NONE)
		i = (i + 1) & mask;
	d->src_index[i] = (uint16_t)id;
}

/* Rebuilds the index with cap slots. With drop_unused, entries no flow refers to leave
 * the index and become free ids for later sources. Ids of live entries never change. */
static int src_rebuild(struct dedup *d, uint32_t cap, bool drop_unused)
{
	uint16_t *idx = malloc(cap * sizeof(*idx));
	uint32_t i;

	if (!idx)
		return -ENOMEM;
	free(d->src_index);
	d->src_index = idx;
	d->src_index_cap = cap;
	memset(idx, 0xff, cap * sizeof(*idx));
	for (i = 0; i < d->nsrcs; i++) {
		if (d->srcs[i].refs || !drop_unused)
			src_index_insert(d, i);
		else
			d->src_free[d->nsrc_free++] = (uint16_t)i;
	}
	return 0;
}

/* src_id() past the latest source: the index, else registration. */
static uint32_t src_find(struct dedup *d, const struct dedup_src *s)
{
	uint32_t mask, i, id;

	if (d->src_last[1] < d->nsrcs && src_eq(&d->srcs[d->src_last[1]].s, s)) {
		id = d->src_last[1];
		goto found;
	}
	if (d->src_index_cap) {
		mask = d->src_index_cap - 1;
		for (i = src_hash(s) & mask; d->src_index[i] != SRC_NONE; i = (i + 1) & mask) {
			id = d->src_index[i];
			if (src_eq(&d->srcs[id].s, s))
				goto found;
		}
	}
	/* New source: take a fresh id, else recycle one no flow refers to. */
	if (d->nsrcs == d->srcs_cap && d->srcs_cap < SRC_MAX) {
		uint32_t cap = d->srcs_cap ? d->srcs_cap * 2 : 16;
		struct src_ent *n;

		if (cap > SRC_MAX)
			cap = SRC_MAX;
		n = realloc(d->srcs, cap * sizeof(*n));
		if (!n)
			return SRC_NONE;
		d->srcs = n;
		d->srcs_cap = cap;
	}
	if (d->nsrcs < d->srcs_cap) {
		/* Keep the index at most half full. */
		if ((d->nsrcs + 1) * 2 > d->src_index_cap &&
		    src_rebuild(d, d->src_index_cap ? d->src_index_cap * 2 : 64, false))
			return SRC_NONE;
		id = d->nsrcs++;
	} else {
		/* Full: collect every unreferenced id at once, so a flood of new sources
		 * costs one rebuild per batch of free ids, not one per source. */
		if (!d->nsrc_free) {
			if (!d->src_free && !(d->src_free = malloc(SRC_MAX * sizeof(uint16_t))))
				return SRC_NONE;
			/* may be about to become free */
			d->src_last[0] = d->src_last[1] = UINT32_MAX;
			if (src_rebuild(d, d->src_index_cap, true) || !d->nsrc_free)
				return SRC_NONE;
		}
		id = d->src_free[--d->nsrc_free];
	}
	d->srcs[id].s = *s;
	d->srcs[id].refs = 0;
	d->srcs[id].owned = 0;
	src_index_insert(d, id);
found:
	if (id != d->src_last[0]) {
		d->src_last[1] = d->src_last[0];
		d->src_last[0] = id;
	}
	return id;
}

/* Registry id of a source, registering it when new. Returns SRC_NONE when the registry
 * is full of sources still referenced by flows, or on ENOMEM. */
HOT uint32_t src_id(struct dedup *d, const struct dedup_src *s)
{
	if (d->src_last[0] < d->nsrcs && src_eq(&d->srcs[d->src_last[0]].s, s))
		return d->src_last[0];
	return src_find(d, s);
}

/* --- flow pool and lists ------------------------------------------------- */

static struct flow *flow_alloc(struct dedup *d)
{
	struct flow *f, **chunks;
	size_t i;

	if (!d->free_flows) {
		chunks = realloc(d->chunks, (d->nchunks + 1) * sizeof(*chunks));
		if (!chunks)
			return NULL;
		d->chunks = chunks;
		f = malloc(POOL_CHUNK * sizeof(*f));
		if (!f)
			return NULL;
		d->chunks[d->nchunks++] = f;
		for (i = 0; i < POOL_CHUNK; i++) {
			f[i].hnext = d->free_flows;
			d->free_flows = &f[i];
		}
	}
	f = d->free_flows;
	d->free_flows = f->hnext;
	memset(f, 0, sizeof(*f));
	return f;
}

static void list_del(struct flow_list *l, struct flow *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		l->head = f->next;
	if (f->next)
		f->next->prev = f->prev;
	else
		l->tail = f->prev;
	f->prev = f->next = NULL;
}

static void list_add_tail(struct flow_list *l, struct flow *f)
{
	f->next = NULL;
	f->prev = l->tail;
	if (l->tail)
		l->tail->next = f;
	else
		l->head = f;
	l->tail = f;
}

static inline struct flow_list *flow_list_of(struct dedup *d, struct flow *f)
{
	return (f->flags & FL_CLOSED) ? &d->closed : &d->open;
}

HOT void flow_touch(struct dedup *d, struct flow *f)
{
	struct flow_list *l = flow_list_of(d, f);

	f->last_ns = d->clock;
	if (l->tail != f) {
		list_del(l, f);
		list_add_tail(l, f);
	}
}

static void dir_ranges_free(struct dir_state *ds)
{
	if (ds->n > INLINE_RANGES)
		free(ds->r.ext);
	ds->n = 0;
}

/* Rings go to a free list rather than back to malloc: a fresh 64 KiB costs 16 page
 * faults, and flows come and go all the time. They come RING_SLAB at a time: with one
 * malloc() per ring, malloc wrote the heap top's header 64 KiB on, a page fault of its
 * own for every ring. */
static struct ring *ring_get(struct dedup *d)
{
	struct ring *rg = d->ring_free, *slab, **slabs;
	size_t n, i;

	if (rg) {
		d->ring_free = rg->next;
		return rg;
	}
	n = (RING_BUDGET - d->ring_bytes) / sizeof(*rg);
	if (!n)
		return NULL;
	if (n > RING_SLAB)
		n = RING_SLAB;
	slabs = realloc(d->ring_slabs, (d->nring_slabs + 1) * sizeof(*slabs));
	if (!slabs)
		return NULL;
	d->ring_slabs = slabs;
	slab = malloc(n * sizeof(*slab));
	if (!slab)
		return NULL;
	d->ring_slabs[d->nring_slabs++] = slab;
	d->ring_bytes += n * sizeof(*slab);
	for (i = n - 1; i > 0; i--) {
		slab[i].next = d->ring_free;
		d->ring_free = &slab[i];
	}
	return &slab[0];
}

static void dir_ring_free(struct dedup *d, struct dir_state *ds)
{
	if (ds->ring) {
		ds->ring->next = d->ring_free;
		d->ring_free = ds->ring;
		ds->ring = NULL;
	}
}

static void tomb_add(struct dedup *d, const struct ecv_tuple *t)
{
	uint64_t key = flow_hash64(t) | 1, until = sat_add(d->clock, d->cfg.flow_timeout_ns);
	struct tomb *b, *victim;
	unsigned i;

	if (!d->tombs && !(d->tombs = calloc((size_t)TOMB_BUCKETS * TOMB_WAYS, sizeof(*b))))
		return;
	b = &d->tombs[(key >> 32 & (TOMB_BUCKETS - 1)) * TOMB_WAYS];
	victim = &b[0];
	for (i = 0; i < TOMB_WAYS; i++) {
		if (b[i].key == key) {
			victim = &b[i];
			break;
		}
		if (b[i].until < victim->until)
			victim = &b[i];
	}
	victim->key = key;
	victim->until = until;
}

static bool tomb_hit(const struct dedup *d, const struct ecv_tuple *t)
{
	uint64_t key;
	const struct tomb *b;
	unsigned i;

	if (!d->tombs)
		return false;
	key = flow_hash64(t) | 1;
	b = &d->tombs[(key >> 32 & (TOMB_BUCKETS - 1)) * TOMB_WAYS];
	for (i = 0; i < TOMB_WAYS; i++)
		if (b[i].key == key && b[i].until > d->clock)
			return true;
	return false;
}

static struct flow_ext *flow_ext(struct flow *f)
{
	if (!f->ext) {
		f->ext = calloc(1, sizeof(*f->ext));
		/* Every frame emitted so far carried a time no later than this. */
		if (f->ext)
			f->ext->emit_ns = f->last_ns;
	}
	return f->ext;
}

/* Sets or clears held segments (HELD_* bits), keeping the held list in step. */
static void held_set(struct dedup *d, struct flow *f, unsigned bits, bool on)
{
	struct flow_ext *x = f->ext;
	uint8_t was = x->held;

	if (on)
		x->held |= bits;
	else
		x->held &= ~bits;
	if (!was && x->held) {
		x->hprev = NULL;
		x->hnext = d->held;
		if (d->held)
			d->held->ext->hprev = f;
		d->held = f;
	} else if (was && !x->held) {
		if (x->hprev)
			x->hprev->ext->hnext = x->hnext;
		else
			d->held = x->hnext;
		if (x->hnext)
			x->hnext->ext->hprev = x->hprev;
		x->hprev = x->hnext = NULL;
	}
}

/* A held FIN turned out to be no end of the connection, or a second copy's FIN went out
 * instead (or a held ACK lost its meaning): it is suppressed for good. */
static void held_drop(struct dedup *d, struct flow *f, unsigned bit)
{
	d->st.dropped_packets++;
	f->pkts_dropped++;
	held_set(d, f, bit, false);
}

static void fin_drop_held(struct dedup *d, struct flow *f, int dir)
{
	held_drop(d, f, HELD_FIN(dir));
}

static void held_release(struct dedup *d, struct flow *f, int dir, unsigned bit);
static void held_release_due(struct dedup *d, struct flow *f, uint64_t now, bool all);
static void hold_discard(struct dedup *d, struct flow *f, int dir);

static void flow_info_fill(const struct flow *f, const struct dedup *d, struct dedup_flow_info *fi)
{
	struct ecv_tuple rev;
	unsigned i;

	memset(fi, 0, sizeof(*fi));
	fi->tuple = f->tuple;
	tuple_reverse(&rev, &f->tuple);
	for (i = 0; i < 2; i++) {
		const struct ecv_tuple *t = i ? &rev : &f->tuple;

		if (f->dir[i].flags & DIR_SYN)
			fi->isn[i] = f->dir[i].syn_seq;
		else
			fi->isn[i] = isn_compute(t);
	}
	fi->first_ns = f->first_ns;
	fi->last_ns = f->last_ns;
	for (i = 0; i < f->nsrc; i++)
		fi->sources[i] = d->srcs[f->src[i]].s;
	fi->n_sources = f->nsrc;
	fi->kept_source = f->kept;
	fi->pkts_in = f->pkts_in;
	fi->bytes_in = f->bytes_in;
	fi->pkts_out = f->pkts_out;
	fi->bytes_out = f->bytes_out;
	fi->pkts_dropped = f->pkts_dropped;
	fi->bytes_dropped = f->bytes_dropped;
	fi->overlap_conflicts = f->conflicts;
	fi->mid_stream = f->flags & FL_MID;
	if (f->ext && f->ext->have_meta) {
		fi->have_meta = true;
		fi->meta = f->ext->meta;
	}
}

/* Removes a flow from the table, telling end about it first when report is set. */
static void flow_end(struct dedup *d, struct flow *f, bool report)
{
	struct dedup_flow_info fi;
	struct flow **pp;
	unsigned i;

	if (f->ext && f->ext->held) {
		/* Nothing contradicted the held FINs: the connection did end there. */
		if (report)
			held_release_due(d, f, 0, true);
		for (i = 0; i < 2; i++)
			hold_discard(d, f, (int)i);
		if (f->ext->held)
			held_set(d, f, f->ext->held, false);
	}
	if (report && d->end) {
		flow_info_fill(f, d, &fi);
		d->end(d->ctx, &fi);
	}
	if (report && (f->flags & FL_ABS_OUT))
		tomb_add(d, &f->tuple);
	for (pp = &d->buckets[f->hash & (d->nbuckets - 1)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == f) {
			*pp = f->hnext;
			break;
		}
	}
	list_del(flow_list_of(d, f), f);
	for (i = 0; i < 2; i++) {
		dir_ranges_free(&f->dir[i]);
		dir_ring_free(d, &f->dir[i]);
	}
	for (i = 0; i < f->nsrc; i++)
		d->srcs[f->src[i]].refs--;
	if (f->nsrc)
		d->srcs[f->src[0]].owned--;
	free(f->ext);
	f->hnext = d->free_flows;
	d->free_flows = f;
	d->st.flows_active--;
}

/* Finds the flow of tuple t; *dir gets 0 when t is the flow's tuple, 1 when reversed. */
HOT struct flow *flow_lookup(struct dedup *d, const struct ecv_tuple *t, uint32_t h, int *dir)
{
	struct flow *f;

	for (f = d->buckets[h & (d->nbuckets - 1)]; f; f = f->hnext)
		if (f->hash == h && tuple_match(&f->tuple, t, dir))
			return f;
	return NULL;
}

/* Creates a flow owned by source sid. Returns NULL when a bound says no (the caller
 * passes the frame through and counts it). */
static struct flow *flow_create(struct dedup *d, const struct ecv_tuple *t, uint32_t h,
				uint32_t sid, uint64_t ts, uint64_t *limited)
{
	struct flow *f;

	if (d->st.flows_active >= d->cfg.max_flows) {
		*limited = 1;
		return NULL;
	}
	if (sid != SRC_NONE && d->cfg.max_flows_per_source &&
	    d->srcs[sid].owned >= d->cfg.max_flows_per_source) {
		*limited = 2;
		return NULL;
	}
	f = flow_alloc(d);
	if (!f) {
		*limited = 1;
		return NULL;
	}
	f->tuple = *t;
	f->hash = h;
	f->kept = -1;
	f->first_ns = ts;
	f->last_ns = d->clock;
	f->hnext = d->buckets[h & (d->nbuckets - 1)];
	d->buckets[h & (d->nbuckets - 1)] = f;
	list_add_tail(&d->open, f);
	if (sid != SRC_NONE) {
		f->src[0] = (uint16_t)sid;
		f->nsrc = 1;
		d->srcs[sid].refs++;
		d->srcs[sid].owned++;
	}
	d->st.flows_active++;
	d->st.flows_total++;
	return f;
}

/* Slot of source sid in flow f, adding it if there is room; -1 otherwise. */
static int flow_slot(struct dedup *d, struct flow *f, uint32_t sid)
{
	unsigned i;

	if (sid == SRC_NONE)
		return -1;
	for (i = 0; i < f->nsrc; i++)
		if (f->src[i] == sid)
			return (int)i;
	if (f->nsrc == DEDUP_MAX_SOURCES)
		return -1;
	f->src[f->nsrc] = (uint16_t)sid;
	d->srcs[sid].refs++;
	return f->nsrc++;
}

/* Makes the flow's tuple the reverse of what it was (client -> server learnt late). */
static void flow_flip(struct flow *f)
{
	struct dir_state tmp = f->dir[0];
	struct ecv_tuple t = f->tuple;
	unsigned i;

	tuple_reverse(&f->tuple, &t);
	f->dir[0] = f->dir[1];
	f->dir[1] = tmp;
	if (f->ext) {
		struct held_seg h = f->ext->fin[0], a = f->ext->ack[0];
		struct held_frame *q = f->ext->q[0], *ql = f->ext->qlast[0];
		uint32_t qb = f->ext->qbytes[0];
		uint16_t qs = f->ext->qsrc[0];
		uint8_t held = f->ext->held;

		f->ext->fin[0] = f->ext->fin[1];
		f->ext->fin[1] = h;
		f->ext->ack[0] = f->ext->ack[1];
		f->ext->ack[1] = a;
		/* HELD_FIN, HELD_ACK and HELD_DATA of direction 0 are the even bits. */
		f->ext->held = (uint8_t)((held & 0x15) << 1 | (held >> 1 & 0x15));
		f->ext->q[0] = f->ext->q[1];
		f->ext->q[1] = q;
		f->ext->qlast[0] = f->ext->qlast[1];
		f->ext->qlast[1] = ql;
		f->ext->qbytes[0] = f->ext->qbytes[1];
		f->ext->qbytes[1] = qb;
		f->ext->qsrc[0] = f->ext->qsrc[1];
		f->ext->qsrc[1] = qs;
	}
	for (i = 0; i < f->nsrc; i++) {
		uint8_t s = f->sflags[i], b0 = s & SF_SYN0, b1 = s & SF_SYN1;

		s &= ~(SF_SYN0 | SF_SYN1);
		f->sflags[i] = s | (b0 ? SF_SYN1 : 0) | (b1 ? SF_SYN0 : 0);
	}
}

static void flow_check_closed(struct dedup *d, struct flow *f)
{
	uint8_t a = f->dir[0].flags, b = f->dir[1].flags;

	if (f->flags & FL_CLOSED)
		return;
	if (((a & DIR_FIN) && (b & DIR_FIN)) || ((a | b) & DIR_RST)) {
		list_del(&d->open, f);
		f->flags |= FL_CLOSED;
		list_add_tail(&d->closed, f);
	}
}

/* --- emission ------------------------------------------------------------ */

static void emit_frame(struct dedup *d, const uint8_t *frame, size_t len, uint64_t ts,
		       const struct dedup_src *src)
{
	d->st.emitted_packets++;
	d->st.emitted_bytes += len;
	d->emit(d->ctx, frame, len, ts, src);
}

/* Emits a frame whole (or drops it) and keeps the flow counters. */
static void pass_whole(struct dedup *d, struct flow *f, const uint8_t *frame, size_t len,
		       const struct pkt_info *info, const struct dedup_src *src, uint64_t ts)
{
	emit_frame(d, frame, len, ts, src);
	if (f) {
		f->pkts_out++;
		f->bytes_out += info->payload_len;
	}
}

/* Emits a frame of a range-tracked flow, never earlier in time than what the flow
 * emitted before (a released segment carries the time it was held at). */
static void flow_emit(struct dedup *d, struct flow *f, const uint8_t *frame, size_t len,
		      uint64_t ts, const struct dedup_src *src)
{
	if (f->ext) {
		if (ts < f->ext->emit_ns)
			ts = f->ext->emit_ns;
		f->ext->emit_ns = ts;
	}
	emit_frame(d, frame, len, ts, src);
}

/* One's complement update of a checksum at p for a 32-bit field going from old to new
 * (RFC 1624, eqn. 3), so a frame whose ack changes keeps everything else as it was. */
static void csum_replace32(uint8_t *p, uint32_t old, uint32_t new)
{
	uint32_t sum = ~(uint32_t)(p[0] << 8 | p[1]) & 0xffff;

	sum += (~old >> 16 & 0xffff) + (~old & 0xffff) + (new >> 16) + (new & 0xffff);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	sum = ~sum & 0xffff;
	p[0] = (uint8_t)(sum >> 8);
	p[1] = (uint8_t)sum;
}

/* The frame with its TCP ack set to ack: the frame itself when that changes nothing,
 * else a copy in d->buf with the checksum fixed. */
static const uint8_t *frame_with_ack(struct dedup *d, const uint8_t *frame, size_t len,
				     const struct pkt_info *info, uint32_t ack)
{
	uint8_t *th = d->buf + info->l4_off;

	if (ack == info->ack || len > sizeof(d->buf) || (size_t)info->l4_off + 20 > len)
		return frame;
	memcpy(d->buf, frame, len);
	th[8] = (uint8_t)(ack >> 24);
	th[9] = (uint8_t)(ack >> 16);
	th[10] = (uint8_t)(ack >> 8);
	th[11] = (uint8_t)ack;
	csum_replace32(th + 16, info->ack, ack);
	return d->buf;
}

static void drop_whole(struct dedup *d, struct flow *f, const struct pkt_info *info)
{
	d->st.dropped_packets++;
	d->st.dup_bytes += info->payload_len;
	if (f) {
		f->pkts_dropped++;
		f->bytes_dropped += info->payload_len;
	}
}

/* --- bytes mode: sequence ranges ---------------------------------------- */

static inline struct rng *dir_ranges(struct dir_state *ds)
{
	return ds->n > INLINE_RANGES ? ds->r.ext : ds->r.in;
}

/* Stores n ranges (relative to ref) back into ds, spilling to or returning from the heap
 * array. Returns false on ENOMEM (ds unchanged). */
static bool dir_store(struct dir_state *ds, const int64_t *lo, const int64_t *hi, unsigned n,
		      uint32_t ref)
{
	struct rng *dst;
	unsigned i;

	if (n > INLINE_RANGES && ds->n <= INLINE_RANGES) {
		dst = malloc(MAX_RANGES * sizeof(*dst));
		if (!dst)
			return false;
		ds->r.ext = dst;
	} else if (n <= INLINE_RANGES && ds->n > INLINE_RANGES) {
		free(ds->r.ext);
		dst = ds->r.in;
	} else {
		dst = n > INLINE_RANGES ? ds->r.ext : ds->r.in;
	}
	for (i = 0; i < n; i++) {
		dst[i].lo = ref + (uint32_t)lo[i];
		dst[i].hi = ref + (uint32_t)hi[i];
	}
	ds->n = (uint8_t)n;
	return true;
}

static void ring_write(struct ring *rg, uint32_t seq, const uint8_t *p, size_t n)
{
	while (n) {
		uint32_t at = (seq - rg->base) & (RING_SIZE - 1);
		size_t k = RING_SIZE - at < n ? RING_SIZE - at : n;

		memcpy(rg->data + at, p, k);
		seq += (uint32_t)k;
		p += k;
		n -= k;
	}
}

static bool ring_differs(const struct ring *rg, uint32_t seq, const uint8_t *p, size_t n)
{
	while (n) {
		uint32_t at = (seq - rg->base) & (RING_SIZE - 1);
		size_t k = RING_SIZE - at < n ? RING_SIZE - at : n;

		if (memcmp(rg->data + at, p, k))
			return true;
		seq += (uint32_t)k;
		p += k;
		n -= k;
	}
	return false;
}

/* Remembers payload p[0..n), emitted at sequence number seq, for conflict checks: starts
 * the direction's ring on its first payload (while the budget lasts) and keeps only what
 * lies within RING_SIZE of head (one past the highest sequence number emitted), so
 * ring->from stays within reach of serial arithmetic on long flows. */
static void ring_keep(struct dedup *d, struct dir_state *ds, uint32_t seq, const uint8_t *p,
		      uint32_t n, uint32_t head)
{
	uint32_t floor = head - RING_SIZE, skip;

	if (!ds->ring && !(ds->flags & DIR_NORING)) {
		ds->ring = ring_get(d);
		if (!ds->ring) {
			ds->flags |= DIR_NORING;
			return;
		}
		ds->ring->from = seq;
		ds->ring->base = seq;
	}
	if (!ds->ring)
		return;
	if (sdiff(ds->ring->from, floor) < 0)
		ds->ring->from = floor;
	if (sdiff(seq, floor) < 0) {
		skip = floor - seq;
		if (skip >= n)
			return;
		seq += skip;
		p += skip;
		n -= skip;
	}
	ring_write(ds->ring, seq, p, n);
}

/* Rebuilds the part [ps, pe) (positions relative to the segment's first sequence number)
 * of a TCP segment with its original L2, tuple, ack, window and flags; SYN stays only on
 * the piece that starts the segment, FIN only on the one that ends it. */
static int build_piece(struct dedup *d, const uint8_t *frame, const struct pkt_info *info,
		       uint32_t ack, int64_t ps, int64_t pe, unsigned syn, unsigned fin,
		       int64_t seglen)
{
	struct pkt_l2 l2;
	struct pkt_tcp tcp = { 0 };
	int64_t a = ps > syn ? ps : syn, b = pe < seglen - fin ? pe : seglen - fin;

	memcpy(l2.dst, frame, 6);
	memcpy(l2.src, frame + 6, 6);
	l2.vlan = info->vlan;
	tcp.seq = info->seq + (uint32_t)ps;
	tcp.ack = ack;
	tcp.window = info->window;
	tcp.flags = info->tcp_flags & ~(PKT_TCP_SYN | PKT_TCP_FIN);
	if (syn && ps == 0)
		tcp.flags |= PKT_TCP_SYN;
	if (fin && pe == seglen)
		tcp.flags |= PKT_TCP_FIN;
	if (b < a)
		b = a;
	return pkt_build(d->buf, sizeof(d->buf), &l2, &info->tuple, &tcp, info->ip_id,
			 info->payload + (a - syn), (size_t)(b - a));
}

/* Records the ack a frame went out with (ack: as emitted, see ack_allowed()). */
static void note_ack(struct dir_state *ds, const struct pkt_info *info, uint32_t ack)
{
	if (!(info->tcp_flags & PKT_TCP_ACK))
		return;
	if (!(ds->flags & DIR_ACK) || sdiff(ack, ds->max_ack) > 0) {
		ds->max_ack = ack;
		ds->flags |= DIR_ACK;
	}
}

/* One past the highest sequence number (byte, SYN or FIN) emitted in a direction; false
 * when nothing was. */
static bool dir_edge(const struct dir_state *ds, uint32_t *edge)
{
	if (!ds->n)
		return false;
	*edge = ds->n > INLINE_RANGES ? ds->r.ext[ds->n - 1].hi : ds->r.in[ds->n - 1].hi;
	return true;
}

/* The ack a frame of direction dir goes out with. Output must read as one TCP
 * conversation: a frame must not acknowledge sequence space of the other direction that
 * has not been emitted (a held FIN, a copy's tail still to come), or analysers report an
 * "ACKed unseen segment" and then the segment itself as a retransmission. So the ack is
 * cut to the other direction's emitted edge. Only in bytes mode with absolute offsets:
 * elsewhere one copy's frames go out as they are. */
HOT uint32_t ack_allowed(const struct dedup *d, const struct flow *f, int dir,
			 const struct pkt_info *info)
{
	uint32_t edge;

	if (!(info->tcp_flags & PKT_TCP_ACK) || d->cfg.mode != DEDUP_BYTES || (f->flags & FL_MID) ||
	    !dir_edge(&f->dir[!dir], &edge) || sdiff(info->ack, edge) <= 0)
		return info->ack;
	return edge;
}

/* Whether a FIN from slot should wait for confirmation: when another copy is being
 * deduplicated byte by byte against this one, or may still turn up (the flow is younger
 * than skew). A flow seen from one node only gets its FINs at once after that. */
static bool other_copy_sends(const struct flow *f, int slot)
{
	int i;

	for (i = 0; i < f->nsrc; i++)
		if (i != slot && (f->sflags[i] & SF_PKT))
			return true;
	return false;
}

static bool fin_should_hold(const struct dedup *d, const struct flow *f, int slot)
{
	if (d->cfg.mode != DEDUP_BYTES || (f->flags & FL_MID))
		return false;
	return other_copy_sends(f, slot) || d->clock - f->first_ns <= d->cfg.skew_ns;
}

/* Keeps the header of a FIN (bit HELD_FIN) or bare ACK (HELD_ACK) of direction dir. */
static void seg_hold(struct dedup *d, struct flow *f, int dir, unsigned bit, const uint8_t *frame,
		     const struct pkt_info *info, uint32_t sid, uint64_t ts)
{
	struct held_seg *h = bit == HELD_FIN(dir) ? &f->ext->fin[dir] : &f->ext->ack[dir];

	h->ts = ts;
	h->seq = info->seq + (uint32_t)(info->payload_len + !!(info->tcp_flags & PKT_TCP_SYN));
	h->ack = info->ack;
	h->window = info->window;
	h->ip_id = info->ip_id;
	h->vlan = info->vlan;
	h->src = (uint16_t)sid;
	h->flags = info->tcp_flags & ~(PKT_TCP_SYN | PKT_TCP_PSH);
	memcpy(h->mac, frame, sizeof(h->mac));
	held_set(d, f, bit, true);
}

/* Whether a bare ACK of direction dir acknowledges exactly the FIN the other direction
 * holds back (the peer's answer to it: the last ACK of a close): it then waits for that
 * FIN and goes out right after it, rather than before it with its ack cut (a duplicate
 * ACK to analysers, dropped as no news) or lost. The FIN need not sit at the emitted
 * edge: bytes before it may still be missing (a hole another copy may fill, or that no
 * copy ever fills); the ACK goes out once the edge has reached it (ack_release_ready()),
 * or with its ack cut when skew runs out first. */
static bool ack_waits_for_fin(const struct flow *f, int dir, const struct pkt_info *info)
{
	return f->ext && (f->ext->held & HELD_FIN(!dir)) && (info->tcp_flags & PKT_TCP_ACK) &&
	       info->ack == f->ext->fin[!dir].seq + 1;
}

/* After direction dir emitted: the other direction's held ACK goes out once everything
 * it acknowledges has. */
static void ack_release_ready(struct dedup *d, struct flow *f, int dir)
{
	uint32_t edge;

	if (f->ext && (f->ext->held & HELD_ACK(!dir)) && dir_edge(&f->dir[dir], &edge) &&
	    sdiff(f->ext->ack[!dir].ack, edge) <= 0)
		held_release(d, f, !dir, HELD_ACK(!dir));
}

HOT void bytes_input(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
		     const struct pkt_info *info, const struct dedup_src *src, uint32_t sid,
		     int slot, uint64_t ts);

/* Takes the oldest frame held in direction dir off its queue. */
static struct held_frame *hold_pop(struct dedup *d, struct flow *f, int dir)
{
	struct flow_ext *x = f->ext;
	struct held_frame *h = x->q[dir];

	x->q[dir] = h->next;
	x->qbytes[dir] -= HOLD_COST(h->len);
	d->hold_bytes -= HOLD_COST(h->len);
	if (!x->q[dir]) {
		x->qlast[dir] = NULL;
		held_set(d, f, HELD_DATA(dir), false);
	}
	return h;
}

/* Delivers the frames held in direction dir, oldest first, through bytes_input() (slot
 * -2: never held again; what the other copy delivered meanwhile is trimmed or dropped
 * there as usual): every one with all, else those that no longer start beyond the
 * emitted edge. Never nested: a delivery that moves the edge calls it again. */
static __attribute__((noinline)) void hold_release(struct dedup *d, struct flow *f, int dir,
						   bool all)
{
	struct flow_ext *x = f->ext;
	struct held_frame *h;
	struct pkt_info in;
	uint32_t edge;

	if (!x || (x->releasing & 1u << dir))
		return;
	x->releasing |= (uint8_t)(1u << dir);
	while (x->q[dir]) {
		if (!all && dir_edge(&f->dir[dir], &edge) && sdiff(x->q[dir]->seq, edge) > 0)
			break;
		h = hold_pop(d, f, dir);
		if (pkt_parse(h->b, h->len, &in) == 0)
			bytes_input(d, f, dir, h->b, h->len, &in, &d->srcs[h->src].s, h->src, -2,
				    h->ts);
		free(h);
	}
	x->releasing &= (uint8_t) ~(1u << dir);
}

/* Frees the frames held in a direction without delivering them, counting them dropped. */
static void hold_discard(struct dedup *d, struct flow *f, int dir)
{
	while (f->ext && f->ext->q[dir]) {
		free(hold_pop(d, f, dir));
		d->st.dropped_packets++;
		f->pkts_dropped++;
	}
}

/* A payload segment starting beyond the emitted edge of direction dir (else this
 * returns false at once): a hole opens in front of it. While another copy of the flow
 * sends or may still turn up (as for FINs: fin_should_hold()), that copy will most
 * likely bring the missing bytes a moment later; delivered now, the segment would reach
 * the tools before them, which analysers read as a lost segment followed by a
 * retransmission. So the frame is held (copied, in arrival order with the later ones of
 * its copy) until the edge reaches it, for at most skew (dedup_expire()), within
 * HOLD_DIR_MAX per direction and HOLD_BUDGET in total. Once another copy jumps past the
 * edge too, the hole is in both copies and everything held goes out. Returns true when
 * the frame is held. */
static bool bytes_hold(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
		       const struct pkt_info *info, uint32_t sid, int slot, uint64_t ts)
{
	bool queued = f->ext && (f->ext->held & HELD_DATA(dir));
	struct held_frame *h;
	uint32_t edge;

	if (!dir_edge(&f->dir[dir], &edge) || sdiff(info->seq, edge) <= 0 ||
	    d->cfg.mode != DEDUP_BYTES || (f->flags & FL_MID) || slot < 0)
		return false;
	if (queued && f->ext->qsrc[dir] != sid) {
		hold_release(d, f, dir, true);
		return false;
	}
	if (!queued && !fin_should_hold(d, f, slot))
		return false;
	if (HOLD_COST(len) > HOLD_DIR_MAX - (queued ? f->ext->qbytes[dir] : 0) ||
	    d->hold_bytes + HOLD_COST(len) > HOLD_BUDGET || !flow_ext(f) ||
	    !(h = malloc(sizeof(*h) + len))) {
		hold_release(d, f, dir, true);
		return false;
	}
	h->next = NULL;
	h->ts = ts;
	h->len = (uint32_t)len;
	h->seq = info->seq;
	h->src = (uint16_t)sid;
	memcpy(h->b, frame, len);
	if (queued) {
		f->ext->qlast[dir]->next = h;
	} else {
		f->ext->q[dir] = h;
		f->ext->qsrc[dir] = (uint16_t)sid;
		held_set(d, f, HELD_DATA(dir), true);
	}
	f->ext->qlast[dir] = h;
	f->ext->qbytes[dir] += (uint32_t)HOLD_COST(len);
	d->hold_bytes += HOLD_COST(len);
	return true;
}

/* Whether the emitted ranges of a direction hold [lo, hi) whole. */
static bool dir_covers(struct dir_state *ds, uint32_t lo, uint32_t hi)
{
	const struct rng *r = dir_ranges(ds);
	unsigned i;

	for (i = 0; i < ds->n; i++)
		if (sdiff(lo, r[i].lo) >= 0 && sdiff(hi, r[i].hi) <= 0)
			return true;
	return false;
}

/* A segment of another copy that fills the hole in front of the frames held in
 * direction dir and runs on into them (the copies were segmented differently).
 * Delivered whole, its bytes past the hole would go out before the held ones, although
 * the held copy brought them first (DESIGN §4: the first copy wins, the other is compared
 * and counted as a conflict). So it goes through in pieces, each ending where the oldest
 * held frame starts: the piece moves the edge there and the held frames go out, then the
 * next piece meets them as a second copy. A loop, not recursion: every piece ends at a
 * held frame, so it is never split again. Only the oldest held frame is looked at: where
 * a copy reordered its own segments behind the hole, the filler can still win there.
 * The counters see one input frame: dropped once when no piece went out (a piece the
 * ranges cover whole is dropped by bytes_input(): that is undone), else emitted, in
 * pieces (trimmed_packets counts the pieces that lost bytes, plus one when a whole
 * piece did). Returns true when the segment was handled. */
static __attribute__((noinline)) bool hold_fill(struct dedup *d, struct flow *f, int dir,
						const uint8_t *frame, const struct pkt_info *info,
						const struct dedup_src *src, uint32_t sid, int slot,
						uint64_t ts)
{
	unsigned fin = !!(info->tcp_flags & PKT_TCP_FIN);
	int64_t off = 0, cut, seglen = (int64_t)info->payload_len + fin;
	bool last = false, sent = false, gone = false;
	uint8_t *piece = NULL;
	struct pkt_info in;
	uint32_t edge;
	int k;

	if (f->ext->qsrc[dir] == sid || (info->tcp_flags & PKT_TCP_SYN) || !info->payload_len ||
	    !dir_edge(&f->dir[dir], &edge) || sdiff(info->seq, edge) < -(int32_t)STALE_SPAN)
		return false;
	while (!last) {
		struct flow_ext *x = f->ext;

		cut = seglen;
		if ((x->held & HELD_DATA(dir)) && x->qsrc[dir] != sid &&
		    dir_edge(&f->dir[dir], &edge) && sdiff(info->seq + (uint32_t)off, edge) <= 0 &&
		    sdiff(x->q[dir]->seq, edge) > 0)
			cut = sdiff(x->q[dir]->seq, info->seq);
		if (cut <= off || cut >= (int64_t)info->payload_len) {
			if (!off)
				return false; /* not into held data: the usual paths */
			cut = seglen;
			last = true;
		}
		k = build_piece(d, frame, info, info->ack, off, cut, 0, fin, seglen);
		if (k <= 0 || (!piece && !(piece = malloc(sizeof(d->buf))))) {
			if (!off)
				return false;
			break; /* no part of a parsed frame fails to build: never taken */
		}
		memcpy(piece, d->buf, (size_t)k);
		if (pkt_parse(piece, (size_t)k, &in) == 0) {
			if (dir_covers(&f->dir[dir], in.seq,
				       in.seq + in.payload_len + !!(in.tcp_flags & PKT_TCP_FIN))) {
				bytes_input(d, f, dir, piece, (size_t)k, &in, src, sid, slot, ts);
				d->st.dropped_packets--;
				f->pkts_dropped--;
				gone = true;
			} else {
				bytes_input(d, f, dir, piece, (size_t)k, &in, src, sid, slot, ts);
				sent = true;
			}
		}
		off = cut;
	}
	free(piece);
	if (!sent) {
		d->st.dropped_packets++;
		f->pkts_dropped++;
	} else if (gone) {
		d->st.trimmed_packets++;
	}
	return true;
}

/* The two segments that make up most of the traffic, handled without the general range
 * merge (bytes_merge()) and its stack of range arrays; they return false, having changed
 * nothing, when the segment is anything else. bytes_next(): payload at exactly the
 * emitted edge of a direction (the first copy, in order): it extends the last range and
 * goes out whole. */
HOT bool bytes_next(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
		    const struct pkt_info *info, const struct dedup_src *src, uint64_t ts)
{
	struct dir_state *ds = &f->dir[dir];
	struct rng *r = dir_ranges(ds), *last = &r[ds->n - 1];
	uint32_t n = info->payload_len, head = info->seq + n, ack;

	/* A held FIN the data may run past, data held past the edge (the segment may run
	 * into it: hold_fill()), or a hole falling STALE_SPAN behind: the general paths
	 * take those. */
	if (info->seq != last->hi || (f->ext && (f->ext->held & (HELD_FIN(dir) | HELD_DATA(dir)))))
		return false;
	if (sdiff(head, r[0].lo) > (int32_t)STALE_SPAN) {
		if (ds->n > 1 && sdiff(head, r[0].hi) > (int32_t)STALE_SPAN)
			return false;
		r[0].lo = head - STALE_SPAN; /* coverage older than that is forgotten */
	}
	last->hi = head;
	ack = ack_allowed(d, f, dir, info);
	flow_emit(d, f, frame_with_ack(d, frame, len, info, ack), len, ts, src);
	f->pkts_out++;
	f->bytes_out += n;
	ring_keep(d, ds, info->seq, info->payload, n, head);
	note_ack(ds, info, ack);
	ack_release_ready(d, f, dir);
	if (f->ext && (f->ext->held & HELD_DATA(dir)))
		hold_release(d, f, dir, false);
	return true;
}

/* A segment (seglen: its SYN, payload and FIN) that the last emitted range already
 * covers whole (the second copy): its payload is compared with the ring where that still
 * holds those bytes, then it is dropped. */
HOT bool bytes_covered(struct dedup *d, struct flow *f, int dir, const struct pkt_info *info,
		       unsigned syn, uint32_t seglen)
{
	struct dir_state *ds = &f->dir[dir];
	const struct rng *last = &dir_ranges(ds)[ds->n - 1];
	int64_t s = sdiff(info->seq, last->hi), e = s + seglen, pa = s + syn, vlo;

	if (sdiff(info->seq, last->lo) < 0 || e > 0)
		return false;
	if (ds->ring && info->payload_len) {
		vlo = sdiff(ds->ring->from, last->hi);
		if (vlo < -(int64_t)RING_SIZE)
			vlo = -(int64_t)RING_SIZE;
		if (vlo < pa)
			vlo = pa;
		if (vlo < pa + info->payload_len &&
		    ring_differs(ds->ring, last->hi + (uint32_t)vlo, info->payload + (vlo - pa),
				 (size_t)(pa + info->payload_len - vlo))) {
			d->st.overlap_conflicts++;
			f->conflicts++;
		}
	}
	drop_whole(d, f, info);
	return true;
}

/* The first SYN of a direction (nothing emitted there yet, nothing held): it goes out
 * whole and starts the ranges. */
static void bytes_syn(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
		      const struct pkt_info *info, const struct dedup_src *src, uint64_t ts)
{
	struct dir_state *ds = &f->dir[dir];
	uint32_t ack = ack_allowed(d, f, dir, info);

	ds->r.in[0].lo = info->seq;
	ds->r.in[0].hi = info->seq + 1;
	ds->n = 1;
	ds->flags |= DIR_SYN;
	ds->syn_seq = info->seq;
	flow_emit(d, f, frame_with_ack(d, frame, len, info, ack), len, ts, src);
	f->pkts_out++;
	note_ack(ds, info, ack);
	ack_release_ready(d, f, dir);
}

/* A segment that takes no sequence space: a RST (one per direction reaches the tools) or
 * a bare ACK (news only if it acknowledges more than was already sent). */
static void bytes_ctl(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
		      const struct pkt_info *info, const struct dedup_src *src, uint32_t sid,
		      int slot, uint64_t ts)
{
	struct dir_state *ds = &f->dir[dir];
	uint32_t ack = ack_allowed(d, f, dir, info);

	if (info->tcp_flags & PKT_TCP_RST) {
		if (ds->flags & DIR_RST) {
			drop_whole(d, f, info);
			return;
		}
		/* The connection ends here: data held behind a hole goes out before. */
		if (f->ext && (f->ext->held & HELD_DATA(dir)))
			hold_release(d, f, dir, true);
		ds->flags |= DIR_RST;
		flow_emit(d, f, frame_with_ack(d, frame, len, info, ack), len, ts, src);
		f->pkts_out++;
		f->bytes_out += info->payload_len;
		flow_check_closed(d, f);
		return;
	}
	if (ack != info->ack && slot != -2 && ack_waits_for_fin(f, dir, info)) {
		/* One held ACK per direction: the other copy's is the same one. */
		if (f->ext->held & HELD_ACK(dir))
			drop_whole(d, f, info);
		else
			seg_hold(d, f, dir, HELD_ACK(dir), frame, info, sid, ts);
		return;
	}
	if ((info->tcp_flags & PKT_TCP_ACK) && (ds->flags & DIR_ACK) &&
	    sdiff(ack, ds->max_ack) <= 0) {
		drop_whole(d, f, info);
		return;
	}
	note_ack(ds, info, ack);
	flow_emit(d, f, frame_with_ack(d, frame, len, info, ack), len, ts, src);
	f->pkts_out++;
}

static void bytes_merge(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
			const struct pkt_info *info, const struct dedup_src *src, uint32_t sid,
			int slot, uint64_t ts);

/* bytes mode, one TCP segment of direction dir from source sid (slot in the flow, -1
 * when it has none, -2 for a held segment being released). */
HOT void bytes_input(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
		     const struct pkt_info *info, const struct dedup_src *src, uint32_t sid,
		     int slot, uint64_t ts)
{
	unsigned syn, fin;

	if ((info->tcp_flags & PKT_TCP_RST) ||
	    (!info->payload_len && !(info->tcp_flags & (PKT_TCP_SYN | PKT_TCP_FIN)))) {
		bytes_ctl(d, f, dir, frame, len, info, src, sid, slot, ts);
		return;
	}
	syn = !!(info->tcp_flags & PKT_TCP_SYN);
	fin = !!(info->tcp_flags & PKT_TCP_FIN);
	if (!f->dir[dir].n) {
		if (syn && !fin && !info->payload_len && !(f->ext && f->ext->held)) {
			bytes_syn(d, f, dir, frame, len, info, src, ts);
			return;
		}
	} else if ((!syn && !fin && bytes_next(d, f, dir, frame, len, info, src, ts)) ||
		   bytes_covered(d, f, dir, info, syn, syn + info->payload_len + fin) ||
		   (f->ext && (f->ext->held & HELD_DATA(dir)) && slot != -2 &&
		    hold_fill(d, f, dir, frame, info, src, sid, slot, ts)) ||
		   (!syn && !fin && bytes_hold(d, f, dir, frame, len, info, sid, slot, ts))) {
		return;
	}
	bytes_merge(d, f, dir, frame, len, info, src, sid, slot, ts);
}

/* Everything else that takes sequence space: the parts of the segment no range covers go
 * out (trimmed when that is not all of it), with SYN/FIN handling, held FINs and ACKs,
 * and range upkeep. Out of line: its range arrays make a large stack frame. */
static __attribute__((noinline)) void bytes_merge(struct dedup *d, struct flow *f, int dir,
						  const uint8_t *frame, size_t len,
						  const struct pkt_info *info,
						  const struct dedup_src *src, uint32_t sid,
						  int slot, uint64_t ts)
{
	struct dir_state *ds = &f->dir[dir];
	unsigned syn = !!(info->tcp_flags & PKT_TCP_SYN), fin = !!(info->tcp_flags & PKT_TCP_FIN);
	int64_t seglen = syn + (int64_t)info->payload_len + fin;
	int64_t lo[MAX_RANGES + 1], hi[MAX_RANGES + 1], pl[MAX_RANGES + 1], ph[MAX_RANGES + 1];
	int64_t s, e, me, c, nlo, nhi, head;
	unsigned n = ds->n, np = 0, nn, i, j;
	uint64_t newbytes = 0;
	struct rng *r = dir_ranges(ds);
	uint32_t ref, ack = ack_allowed(d, f, dir, info);
	bool conflict = false, held_now = false;

	/* Work in 64-bit positions relative to the highest emitted end. */
	ref = n ? r[n - 1].hi : info->seq;
	for (i = 0; i < n; i++) {
		lo[i] = sdiff(r[i].lo, ref);
		hi[i] = sdiff(r[i].hi, ref);
	}
	s = sdiff(info->seq, ref);
	e = s + seglen;
	me = e; /* end of what joins the ranges: e, or before a held FIN */
	if (s < -(int64_t)STALE_SPAN) {
		/* Far behind anything still tracked: an ancient retransmission. */
		drop_whole(d, f, info);
		return;
	}

	/* The parts of [s, e) no range covers yet. */
	c = s;
	for (i = 0; i < n && c < e; i++) {
		if (hi[i] <= c)
			continue;
		if (lo[i] >= e)
			break;
		if (lo[i] > c) {
			pl[np] = c;
			ph[np++] = lo[i];
		}
		c = hi[i];
	}
	if (c < e) {
		pl[np] = c;
		ph[np++] = e;
	}

	/* A FIN at a new position while another copy still runs may be an agent shutting
	 * down rather than the connection ending: hold it back (see struct held_seg). */
	if (fin && np && ph[np - 1] == e && !(ds->flags & DIR_FIN)) {
		struct flow_ext *x = f->ext;
		bool held = x && (x->held & HELD_FIN(dir));
		int64_t hp = held ? sdiff(x->fin[dir].seq, ref) : 0;

		if (held && hp == e - 1 && x->fin[dir].src != sid) {
			/* A second copy confirms it: this FIN goes out, the held one never. */
			fin_drop_held(d, f, dir);
		} else if (slot != -2 && fin_should_hold(d, f, slot) && flow_ext(f)) {
			if (held && hp != e - 1)
				fin_drop_held(d, f, dir);
			if (!(f->ext->held & HELD_FIN(dir)))
				seg_hold(d, f, dir, HELD_FIN(dir), frame, info, sid, ts);
			held_now = true;
			if (--ph[np - 1] == pl[np - 1])
				np--;
			if (!np)
				return; /* nothing else new: the frame is held, not dropped */
			me = e - 1;
		}
	}

	/* Covered payload bytes still in the ring must match what went out. */
	if (ds->ring && info->payload_len) {
		int64_t vlo = sdiff(ds->ring->from, ref), pa = s + syn, pb = e - fin, x;

		if (vlo < -(int64_t)RING_SIZE)
			vlo = -(int64_t)RING_SIZE;
		x = pa;
		for (i = 0; i <= np && !conflict; i++) {
			int64_t ca = x, cb = i < np ? pl[i] : pb;

			if (i < np)
				x = ph[i];
			if (ca < vlo)
				ca = vlo;
			if (cb > 0)
				cb = 0;
			if (ca < pa)
				ca = pa;
			if (cb > pb)
				cb = pb;
			if (ca < cb)
				conflict =
					ring_differs(ds->ring, ref + (uint32_t)ca,
						     info->payload + (ca - pa), (size_t)(cb - ca));
		}
		if (conflict) {
			d->st.overlap_conflicts++;
			f->conflicts++;
		}
	}

	if (!np) {
		drop_whole(d, f, info);
		return;
	}

	/* Merge [s, e) into the ranges. */
	nn = 0;
	nlo = s;
	nhi = me;
	for (i = 0; i < n && hi[i] < s; i++, nn++)
		;
	for (j = i; j < n && lo[j] <= me; j++) {
		if (lo[j] < nlo)
			nlo = lo[j];
		if (hi[j] > nhi)
			nhi = hi[j];
	}
	memmove(&lo[nn + 1], &lo[j], (n - j) * sizeof(lo[0]));
	memmove(&hi[nn + 1], &hi[j], (n - j) * sizeof(hi[0]));
	lo[nn] = nlo;
	hi[nn] = nhi;
	nn = nn + 1 + (n - j);
	/* Give up the lowest holes when there are too many or they fall too far behind,
	 * and forget coverage older than STALE_SPAN (such segments are dropped above), so
	 * every stored bound stays within 2^31 of the head for serial arithmetic. */
	head = hi[nn - 1];
	while (nn > 1 && (nn > MAX_RANGES || hi[0] < head - (int64_t)STALE_SPAN)) {
		lo[1] = lo[0];
		memmove(&lo[0], &lo[1], (nn - 1) * sizeof(lo[0]));
		memmove(&hi[0], &hi[1], (nn - 1) * sizeof(hi[0]));
		nn--;
		d->st.holes_abandoned++;
	}
	if (lo[0] < head - (int64_t)STALE_SPAN)
		lo[0] = head - (int64_t)STALE_SPAN;
	if (!dir_store(ds, lo, hi, nn, ref)) {
		/* No memory for more ranges: deliver rather than lose data. The ring no
		 * longer matches what went out, so stop comparing in this direction. */
		dir_ring_free(d, ds);
		ds->flags |= DIR_NORING;
		flow_emit(d, f, frame_with_ack(d, frame, len, info, ack), len, ts, src);
		f->pkts_out++;
		f->bytes_out += info->payload_len;
		return;
	}

	/* Data past a held FIN: that FIN was no end of the connection. */
	if (!held_now && f->ext && (f->ext->held & HELD_FIN(dir))) {
		int64_t hp = sdiff(f->ext->fin[dir].seq, ref);

		for (i = 0; i < nn; i++) {
			if (lo[i] <= hp && hp < hi[i]) {
				fin_drop_held(d, f, dir);
				break;
			}
		}
	}

	/* Deliver the new pieces. */
	for (i = 0; i < np; i++) {
		int64_t a = pl[i] - s, b = ph[i] - s, da, db;

		if (syn && a == 0) {
			ds->flags |= DIR_SYN;
			ds->syn_seq = info->seq;
		}
		if (fin && b == seglen)
			ds->flags |= DIR_FIN;
		da = a > syn ? a : syn;
		db = b < seglen - fin ? b : seglen - fin;
		if (db > da)
			newbytes += (uint64_t)(db - da);
		if (np == 1 && a == 0 && b == seglen) {
			flow_emit(d, f, frame_with_ack(d, frame, len, info, ack), len, ts, src);
		} else {
			int k = build_piece(d, frame, info, ack, a, b, syn, fin, seglen);

			if (k > 0)
				flow_emit(d, f, d->buf, (size_t)k, ts, src);
		}
		f->pkts_out++;
		if (db > da)
			ring_keep(d, ds, info->seq + (uint32_t)da, info->payload + (da - syn),
				  (uint32_t)(db - da), ref + (uint32_t)head);
	}
	note_ack(ds, info, ack);
	f->bytes_out += newbytes;
	if (np > 1 || pl[0] != s || ph[0] != e) {
		d->st.trimmed_packets++;
		d->st.dup_bytes += info->payload_len - newbytes;
		f->bytes_dropped += info->payload_len - newbytes;
	}
	ack_release_ready(d, f, dir);
	flow_check_closed(d, f);
	if (f->ext && (f->ext->held & HELD_DATA(dir)))
		hold_release(d, f, dir, false);
}

/* --- content / packet modes -------------------------------------------- */

/* True if key was seen within the window (from another source when other_src). Records
 * the key (and refreshes its time) otherwise. */
static bool hset_seen(struct dedup *d, uint64_t key, uint32_t sid, bool other_src, uint64_t ts)
{
	uint64_t now = ts >> 10, win = d->cfg.window_ns >> 10, stamp = now << 16 | (sid & 0xffff);
	struct hset_ent *b, *victim;
	unsigned i;

	if (!d->hset) {
		d->hset = calloc((size_t)HSET_BUCKETS * HSET_WAYS, sizeof(*d->hset));
		if (!d->hset)
			return false;
	}
	key |= 1;
	b = &d->hset[(hash_mix64(key) & (HSET_BUCKETS - 1)) * HSET_WAYS];
	victim = &b[0];
	/* Ways fill left to right and are only ever overwritten, so the first empty one
	 * ends the search. */
	for (i = 0; i < HSET_WAYS && b[i].key; i++) {
		if (b[i].key == key) {
			uint64_t then = b[i].tsrc >> 16, age = now > then ? now - then : then - now;

			if (age <= win && (!other_src || (b[i].tsrc & 0xffff) != (sid & 0xffff)))
				return true;
			victim = &b[i];
			goto store;
		}
		if (b[i].tsrc >> 16 < victim->tsrc >> 16)
			victim = &b[i];
	}
	if (i < HSET_WAYS)
		victim = &b[i];
store:
	victim->key = key;
	victim->tsrc = stamp;
	return false;
}

/* Digest of the frame without MACs, TTL/hop limit, IP and L4 checksums and padding. */
static uint64_t packet_digest(const uint8_t *frame, const struct pkt_info *info)
{
	size_t end = (size_t)info->l3_off + info->ip_len;
	size_t skip[3][2], ns = 0, at = 12, i;
	uint64_t h = 0x5eed;

	if (info->ethertype == 0x0800) {
		skip[ns][0] = info->l3_off + 8; /* TTL */
		skip[ns++][1] = 1;
		skip[ns][0] = info->l3_off + 10; /* header checksum */
		skip[ns++][1] = 2;
	} else {
		skip[ns][0] = info->l3_off + 7; /* hop limit */
		skip[ns++][1] = 1;
	}
	skip[ns][0] = info->l4_off + (info->tuple.proto == IPPROTO_TCP ? 16 : 6);
	skip[ns++][1] = 2;
	for (i = 0; i < ns; i++) {
		if (skip[i][0] + skip[i][1] > end)
			break;
		h = hash_bytes(h, frame + at, skip[i][0] - at);
		at = skip[i][0] + skip[i][1];
	}
	if (end > at)
		h = hash_bytes(h, frame + at, end - at);
	return hash_mix64(h);
}

/* Digest of the flow direction and the payload, not of sequence numbers: two copies
 * carrying the same bytes in the same tuple match wherever they sit in the stream.
 * Segments without payload have nothing else to compare, so their flags, seq and ack
 * stand in for it. */
static uint64_t content_digest(const struct pkt_info *info)
{
	uint64_t h = hash_bytes(0xc0de, (const uint8_t *)&info->tuple, sizeof(info->tuple));

	if (info->payload_len)
		return hash_mix64(hash_bytes(h, info->payload, info->payload_len));
	h = hash_bytes(h, &info->tcp_flags, 1);
	h = hash_bytes(h, (const uint8_t *)&info->seq, 4);
	return hash_mix64(hash_bytes(h, (const uint8_t *)&info->ack, 4));
}

/* --- TCP path ------------------------------------------------------------ */

/* A SYN for a flow whose end is already under way is a new connection reusing the
 * 5-tuple if this source sent a SYN in that direction before, or its sequence number
 * differs from the SYN delivered. A late copy's first SYN is neither, and nor is the
 * handshake an agent synthesizes where it first saw the flow (announced mid-stream). */
static bool flow_reused(const struct flow *f, int slot, int dir, const struct pkt_info *info)
{
	const struct dir_state *ds = &f->dir[dir];

	if (!((f->dir[0].flags | f->dir[1].flags) & (DIR_FIN | DIR_RST)))
		return false;
	if (slot >= 0 && (f->sflags[slot] & SF_MID))
		return false;
	if (slot >= 0 && (f->sflags[slot] & (dir ? SF_SYN1 : SF_SYN0)))
		return true;
	return (ds->flags & DIR_SYN) && ds->syn_seq != info->seq;
}

static int flow_find_slot(const struct flow *f, uint32_t sid)
{
	unsigned i;

	for (i = 0; i < f->nsrc; i++)
		if (f->src[i] == sid)
			return (int)i;
	return -1;
}

/* The copy to keep when a flow falls back to keep-first-source: the first that sent
 * packets with absolute offsets (it can still be aligned with what went out), else the
 * first that sent packets at all. */
static int keep_choice(const struct flow *f)
{
	int i, first = -1;

	for (i = 0; i < f->nsrc; i++) {
		if (!(f->sflags[i] & SF_PKT))
			continue;
		if (f->sflags[i] & SF_ABS)
			return i;
		if (first < 0)
			first = i;
	}
	return first;
}

static void mid_reset(struct dedup *d, struct flow *f)
{
	unsigned i;

	for (i = 0; i < 2; i++) {
		dir_ranges_free(&f->dir[i]);
		dir_ring_free(d, &f->dir[i]);
		f->dir[i].flags &= ~(DIR_ACK | DIR_NORING);
		if (f->ext && (f->ext->held & HELD_FIN(i)))
			fin_drop_held(d, f, (int)i);
		if (f->ext && (f->ext->held & HELD_ACK(i)))
			held_drop(d, f, HELD_ACK(i));
		hold_discard(d, f, (int)i);
	}
}

static void tcp_input(struct dedup *d, const uint8_t *frame, size_t len,
		      const struct pkt_info *info, const struct dedup_src *src, uint32_t sid,
		      uint64_t ts)
{
	uint32_t h = flow_hash(&info->tuple);
	bool syn = info->tcp_flags & PKT_TCP_SYN;
	uint64_t limited = 0;
	struct flow *f;
	int dir = 0, slot, i;
	bool keep, rel;

	f = flow_lookup(d, &info->tuple, h, &dir);
	if (f && syn && flow_reused(f, sid == SRC_NONE ? -1 : flow_find_slot(f, sid), dir, info)) {
		flow_end(d, f, true);
		f = NULL;
	}
	if (!f) {
		f = flow_create(d, &info->tuple, h, sid, ts, &limited);
		if (!f) {
			if (d->cfg.mode == DEDUP_BYTES || d->cfg.mode == DEDUP_FLOW) {
				if (limited == 2)
					d->st.source_limited++;
				else
					d->st.table_full++;
			}
			goto decide;
		}
		dir = 0;
		/* No SYN where a connection with absolute offsets just ended: its copy is
		 * back from an agent restart, with offsets that no longer fit. */
		if (!syn && tomb_hit(d, &info->tuple))
			f->flags |= FL_ABS_OUT;
	}
	if (syn && !(info->tcp_flags & PKT_TCP_ACK) && !(f->flags & FL_ORIENTED)) {
		/* A pure SYN names the client: report the flow client -> server. */
		if (dir == 1)
			flow_flip(f);
		dir = 0;
		f->flags |= FL_ORIENTED;
	}
	flow_touch(d, f);
	slot = flow_slot(d, f, sid);
	f->pkts_in++;
	f->bytes_in += info->payload_len;
	if (slot >= 0) {
		uint8_t *sf = &f->sflags[slot];

		*sf |= SF_PKT;
		if (syn)
			*sf |= dir ? SF_SYN1 : SF_SYN0;
		if (!(*sf & SF_CLASS)) {
			*sf |= SF_CLASS;
			if (syn && !(*sf & SF_MID))
				*sf |= SF_ABS;
			if (!(*sf & SF_ABS) && !(f->flags & FL_MID)) {
				f->flags |= FL_MID;
				if (f->kept < 0) {
					f->kept = (int8_t)keep_choice(f);
					f->kept_ns = d->clock;
				}
				/* Only the kept copy counts now: data held behind holes
				 * goes out, its held FINs stand, and the ACKs waiting for
				 * them go out as they are. */
				for (i = 0; f->ext && f->ext->held && i < 2; i++)
					hold_release(d, f, i, true);
				for (i = 0; f->ext && f->ext->held && i < 2; i++) {
					if (!(f->ext->held & HELD_FIN(i)))
						continue;
					if (f->kept >= 0 && f->ext->fin[i].src == f->src[f->kept])
						held_release(d, f, i, HELD_FIN(i));
					else
						fin_drop_held(d, f, i);
				}
				if (f->ext && f->ext->held)
					held_release_due(d, f, 0, true);
			}
		}
	}

decide:
	switch (d->cfg.mode) {
	case DEDUP_OFF:
	case DEDUP_PACKET:
	case DEDUP_CONTENT:
		if (d->cfg.mode == DEDUP_PACKET &&
		    hset_seen(d, packet_digest(frame, info), sid, false, ts))
			drop_whole(d, f, info);
		else if (d->cfg.mode == DEDUP_CONTENT &&
			 hset_seen(d, content_digest(info), sid, true, ts))
			drop_whole(d, f, info);
		else
			pass_whole(d, f, frame, len, info, src, ts);
		/* The flow entry is only accounting here; still end it with the connection. */
		if (f && (info->tcp_flags & (PKT_TCP_FIN | PKT_TCP_RST))) {
			f->dir[dir].flags |= info->tcp_flags & PKT_TCP_FIN ? DIR_FIN : DIR_RST;
			flow_check_closed(d, f);
		}
		break;
	case DEDUP_BYTES:
	case DEDUP_FLOW:
		if (!f) {
			pass_whole(d, f, frame, len, info, src, ts);
			break;
		}
		rel = slot >= 0 && !(f->sflags[slot] & SF_ABS);
		keep = d->cfg.mode == DEDUP_FLOW || (f->flags & FL_MID);
		if (keep) {
			/* Relative offsets cannot be placed in a stream that absolute ones
			 * already delivered (an agent restarted mid-flow): never lay them over
			 * it, whichever copy is kept. */
			if (rel && (f->flags & FL_ABS_OUT)) {
				drop_whole(d, f, info);
				break;
			}
			if (f->kept < 0 && slot >= 0) {
				f->kept = (int8_t)slot;
				f->kept_ns = d->clock;
			}
			if (slot != f->kept) {
				if (slot < 0 || d->clock - f->kept_ns <= d->cfg.skew_ns) {
					drop_whole(d, f, info);
					break;
				}
				/* The kept copy went silent: carry on with this one. Ranges in
				 * another copy's relative offsets mean nothing to it. */
				f->kept = (int8_t)slot;
				if (!(f->flags & FL_ABS_OUT))
					mid_reset(d, f);
			}
			f->kept_ns = d->clock;
		}
		if (!rel)
			f->flags |= FL_ABS_OUT;
		bytes_input(d, f, dir, frame, len, info, src, sid, slot, ts);
		break;
	}
}

/* Delivers a held segment (bit HELD_FIN(dir) or HELD_ACK(dir)) as it was received,
 * through the same range bookkeeping; its time is no earlier than the flow's output. */
static void held_release(struct dedup *d, struct flow *f, int dir, unsigned bit)
{
	struct held_seg h = bit == HELD_FIN(dir) ? f->ext->fin[dir] : f->ext->ack[dir];
	uint8_t fb[PKT_ETH_LEN + PKT_VLAN_LEN + PKT_IP6_LEN + PKT_TCP_LEN];
	struct pkt_tcp tcp = { .seq = h.seq, .ack = h.ack, .window = h.window, .flags = h.flags };
	struct ecv_tuple t;
	struct pkt_l2 l2;
	struct pkt_info in;
	int n;

	held_set(d, f, bit, false);
	memcpy(l2.dst, h.mac, 6);
	memcpy(l2.src, h.mac + 6, 6);
	l2.vlan = h.vlan;
	if (dir)
		tuple_reverse(&t, &f->tuple);
	else
		t = f->tuple;
	n = pkt_build(fb, sizeof(fb), &l2, &t, &tcp, h.ip_id, NULL, 0);
	if (n <= 0 || pkt_parse(fb, (size_t)n, &in) != 0)
		return;
	/* slot -2: release, never hold again. */
	bytes_input(d, f, dir, fb, (size_t)n, &in, &d->srcs[h.src].s, h.src, -2, h.ts);
}

/* Delivers the held FINs older than skew at now (every one with all), in the order they
 * were held, each followed by the ACK waiting for it (bytes_input() releases that); then
 * ACKs still waiting that long on their own, with their ack cut to what went out. */
static void held_release_due(struct dedup *d, struct flow *f, uint64_t now, bool all)
{
	int i, pick;

	/* Data held behind a hole first: it comes before any FIN of its direction. */
	for (i = 0; f->ext && i < 2; i++)
		if ((f->ext->held & HELD_DATA(i)) &&
		    (all || sat_add(f->ext->q[i]->ts, d->cfg.skew_ns) < now))
			hold_release(d, f, i, true);
	for (;;) {
		pick = -1;
		for (i = 0; f->ext && i < 2; i++) {
			if (!(f->ext->held & HELD_FIN(i)) ||
			    (!all && sat_add(f->ext->fin[i].ts, d->cfg.skew_ns) >= now))
				continue;
			if (pick < 0 || f->ext->fin[i].ts < f->ext->fin[pick].ts)
				pick = i;
		}
		if (pick < 0)
			break;
		held_release(d, f, pick, HELD_FIN(pick));
	}
	for (i = 0; f->ext && i < 2; i++)
		if ((f->ext->held & HELD_ACK(i)) &&
		    (all || sat_add(f->ext->ack[i].ts, d->cfg.skew_ns) < now))
			held_release(d, f, i, HELD_ACK(i));
}

/* --- public -------------------------------------------------------------- */

void dedup_input(struct dedup *d, const uint8_t *frame, size_t len, const struct pkt_info *info,
		 const struct dedup_src *src, uint64_t ts_ns)
{
	uint32_t sid;

	if (!d || !frame || !info || !src)
		return;
	d->st.rx_packets++;
	d->st.rx_bytes += len;
	if (ts_ns > d->clock)
		d->clock = ts_ns;
	sid = src_id(d, src);
	if (info->tuple.proto == IPPROTO_TCP) {
		tcp_input(d, frame, len, info, src, sid, ts_ns);
		return;
	}
	/* UDP: no sequence space; only the hash modes compare it. */
	if ((d->cfg.mode == DEDUP_PACKET &&
	     hset_seen(d, packet_digest(frame, info), sid, false, ts_ns)) ||
	    (d->cfg.mode == DEDUP_CONTENT &&
	     hset_seen(d, content_digest(info), sid, true, ts_ns))) {
		drop_whole(d, NULL, info);
		return;
	}
	emit_frame(d, frame, len, ts_ns, src);
}

void dedup_meta(struct dedup *d, const struct meta_flow *m, const struct dedup_src *src,
		uint64_t ts_ns)
{
	uint32_t sid, h;
	uint64_t limited = 0;
	struct flow *f;
	int dir = 0, slot;

	if (!d || !m || !src)
		return;
	d->st.meta_frames++;
	if (m->tuple.proto != IPPROTO_TCP)
		return;
	if (ts_ns > d->clock)
		d->clock = ts_ns;
	sid = src_id(d, src);
	h = flow_hash(&m->tuple);
	f = flow_lookup(d, &m->tuple, h, &dir);
	if (!f) {
		f = flow_create(d, &m->tuple, h, sid, ts_ns, &limited);
		if (!f)
			return;
		dir = 0;
		if (!m->from_start && tomb_hit(d, &m->tuple))
			f->flags |= FL_ABS_OUT;
	}
	flow_touch(d, f);
	if (m->role[0] && !(f->flags & FL_ORIENTED)) {
		if (dir == 1)
			flow_flip(f);
		f->flags |= FL_ORIENTED;
	}
	slot = flow_slot(d, f, sid);
	if (slot >= 0 && m->event == META_START) {
		if (m->from_start) {
			f->sflags[slot] = (f->sflags[slot] | SF_ABS) & ~SF_MID;
		} else {
			/* Agents synthesize a handshake for a flow they see mid-stream: its
			 * SYN says nothing about offsets. */
			f->sflags[slot] |= SF_MID;
			if (f->sflags[slot] & SF_ABS)
				/* This source's agent restarted in the middle of the flow: its
				 * offsets count from the restart now, so classify it again at
				 * its next packet; its new SYN is no new connection. */
				f->sflags[slot] &= ~(SF_ABS | SF_CLASS | SF_SYN0 | SF_SYN1);
		}
	}
	if (!flow_ext(f))
		return;
	f->ext->meta = *m;
	f->ext->have_meta = true;
}

static void end_list(struct dedup *d, struct flow_list *l, uint64_t idle, uint64_t now)
{
	while (l->head && sat_add(l->head->last_ns, idle) < now) {
		d->st.flows_expired++;
		flow_end(d, l->head, true);
	}
}

void dedup_expire(struct dedup *d, uint64_t now_ns)
{
	struct flow *f, *next;

	if (!d)
		return;
	if (now_ns > d->clock)
		d->clock = now_ns;
	/* FINs nobody contradicted within skew: the connection did end there. */
	for (f = d->held; f; f = next) {
		next = f->ext->hnext;
		held_release_due(d, f, now_ns, false);
	}
	end_list(d, &d->closed, d->cfg.skew_ns, now_ns);
	end_list(d, &d->open, d->cfg.flow_timeout_ns, now_ns);
}

void dedup_flush(struct dedup *d)
{
	if (!d)
		return;
	while (d->closed.head)
		flow_end(d, d->closed.head, true);
	while (d->open.head)
		flow_end(d, d->open.head, true);
}

void dedup_get_stats(const struct dedup *d, struct dedup_stats *st)
{
	if (d && st)
		*st = d->st;
}

int dedup_foreach(const struct dedup *d, int (*fn)(void *ctx, const struct dedup_flow_info *f),
		  void *ctx)
{
	const struct flow_list *lists[2];
	struct dedup_flow_info fi;
	const struct flow *f;
	unsigned i;
	int err;

	if (!d || !fn)
		return -EINVAL;
	lists[0] = &d->open;
	lists[1] = &d->closed;
	for (i = 0; i < 2; i++) {
		for (f = lists[i]->head; f; f = f->next) {
			flow_info_fill(f, d, &fi);
			err = fn(ctx, &fi);
			if (err)
				return err;
		}
	}
	return 0;
}

static const char *const mode_names[] = {
	[DEDUP_BYTES] = "bytes",   [DEDUP_FLOW] = "flow", [DEDUP_CONTENT] = "content",
	[DEDUP_PACKET] = "packet", [DEDUP_OFF] = "off",
};

int dedup_mode_parse(const char *s, enum dedup_mode *mode)
{
	unsigned i;

	if (!s || !mode)
		return -EINVAL;
	for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (!strcmp(s, mode_names[i])) {
			*mode = (enum dedup_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *dedup_mode_name(enum dedup_mode mode)
{
	if ((unsigned)mode >= sizeof(mode_names) / sizeof(mode_names[0]))
		return "unknown";
	return mode_names[mode];
}

size_t dedup_flow_bytes(void)
{
	/* The entry itself (pooled: no allocator header) plus its share of the bucket array,
	 * which holds one pointer per flow at the max_flows load factor. */
	return sizeof(struct flow) + sizeof(struct flow *);
}

struct dedup *dedup_new(const struct dedup_cfg *cfg, dedup_emit_fn emit, dedup_end_fn end,
			void *ctx)
{
	struct dedup *d = NULL;
	uint64_t want;
	int err;

	if (!cfg || !emit || (unsigned)cfg->mode > DEDUP_OFF || !cfg->max_flows) {
		err = -EINVAL;
		goto cleanup;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		err = -ENOMEM;
		goto cleanup;
	}
	d->cfg = *cfg;
	d->emit = emit;
	d->end = end;
	d->ctx = ctx;
	want = cfg->max_flows < MAX_BUCKETS ? cfg->max_flows : MAX_BUCKETS;
	d->nbuckets = 16;
	while (d->nbuckets < want)
		d->nbuckets <<= 1;
	d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
	if (!d->buckets) {
		err = -ENOMEM;
		goto cleanup;
	}
	return d;

cleanup:
	dedup_free(d);
	errno = -err;
	return NULL;
}

void dedup_free(struct dedup *d)
{
	size_t i;

	if (!d)
		return;
	if (d->buckets) {
		/* Release per-flow memory without telling end (documented). */
		while (d->closed.head)
			flow_end(d, d->closed.head, false);
		while (d->open.head)
			flow_end(d, d->open.head, false);
	}
	for (i = 0; i < d->nring_slabs; i++)
		free(d->ring_slabs[i]);
	free(d->ring_slabs);
	for (i = 0; i < d->nchunks; i++)
		free(d->chunks[i]);
	free(d->chunks);
	free(d->buckets);
	free(d->srcs);
	free(d->src_index);
	free(d->src_free);
	free(d->tombs);
	free(d->hset);
	free(d);
}
