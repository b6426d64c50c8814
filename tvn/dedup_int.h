/* tvn/dedup_int.h - what the files of the dedup engine share, and nothing else includes.
 *
 * Owns: the engine's data model (struct dedup, struct flow and its per-direction and
 * extension state, the pools' and tables' entries, their bounds and flag bits), the small
 * helpers every file needs, and the functions one file offers the others, grouped by the
 * file that owns them. Per-packet helpers are static inline here (a call between files
 * would cost as much as they do); everything else is defined in its own file.
 * Does not own: any behaviour of its own; the public API is tvn/dedup.h.
 *
 * The engine (see dedup.c for the whole picture):
 *   dedup.c         public API, dispatch by mode, the TCP path (flow lookup, offsets
 *                   classification, flow-mode keep/failover)
 *   dedup_flow.c    the flow table: source registry, flow pool, hash buckets, open and
 *                   closed lists, tombstones, flow extension, flow info, flow end
 *   dedup_bytes.c   the byte engine: per-direction sequence ranges, trimming, the ack
 *                   cut, the overlap-conflict rings
 *   dedup_hold.c    the hold: FINs, their peers' last ACKs and data past a hole that wait
 *                   for the other copy, and their release
 *   dedup_digest.c  content and packet modes: frame digests and the hash set
 *
 * Memory: dedup_flow_bytes() (248 bytes on x86-64: the pooled entry and its bucket
 * pointer) per flow; on top, only where needed: a 64 KiB ring per direction carrying
 * payload (bounded by RING_BUDGET in total, recycled through a free list), 256 bytes
 * per direction with more than two ranges, one struct meta_flow per flow with metadata,
 * the frames held behind holes (HOLD_DIR_MAX per direction, HOLD_BUDGET in total). */
#ifndef TVN_DEDUP_INT_H
#define TVN_DEDUP_INT_H

#include <stdlib.h>
#include <string.h>

#include "dedup.h"
#include "hash.h"

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
#define DIR_GONE 0x20	/* gone is valid: holes below it will not be filled */

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
	/* With DIR_GONE: the holes below this sequence number were given up (no copy is
	 * waited for there any more), so acknowledgements may run past them (ack_edge()). */
	uint32_t gone;
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
	/* Who the client [0] and the server [1] are, as dedup_flow_info.ends. */
	struct dedup_end ends[2];
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

/* --- small helpers ---------------------------------------------------------------- */

static inline int32_t sdiff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
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

/* --- flow table (dedup_flow.c) ----------------------------------------------- */

uint32_t src_find(struct dedup *d, const struct dedup_src *s);
bool tomb_hit(const struct dedup *d, const struct ecv_tuple *t);
struct flow_ext *flow_ext(struct flow *f);
void flow_info_fill(const struct flow *f, const struct dedup *d, struct dedup_flow_info *fi);
void flow_end(struct dedup *d, struct flow *f, bool report);
struct flow *flow_create(struct dedup *d, const struct ecv_tuple *t, uint32_t h, uint32_t sid,
			 uint64_t ts, uint64_t *limited);
void flow_flip(struct flow *f);
void flow_check_closed(struct dedup *d, struct flow *f);

static inline bool src_eq(const struct dedup_src *a, const struct dedup_src *b)
{
	uint64_t x[2], y[2];

	memcpy(x, a->addr, sizeof(x));
	memcpy(y, b->addr, sizeof(y));
	return a->vni == b->vni && !((x[0] ^ y[0]) | (x[1] ^ y[1]));
}

/* Registry id of a source, registering it when new. Returns SRC_NONE when the registry
 * is full of sources still referenced by flows, or on ENOMEM. */
HOT uint32_t src_id(struct dedup *d, const struct dedup_src *s)
{
	if (d->src_last[0] < d->nsrcs && src_eq(&d->srcs[d->src_last[0]].s, s))
		return d->src_last[0];
	return src_find(d, s);
}

static inline void list_del(struct flow_list *l, struct flow *f)
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

static inline void list_add_tail(struct flow_list *l, struct flow *f)
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

/* Finds the flow of tuple t; *dir gets 0 when t is the flow's tuple, 1 when reversed. */
HOT struct flow *flow_lookup(struct dedup *d, const struct ecv_tuple *t, uint32_t h, int *dir)
{
	struct flow *f;

	for (f = d->buckets[h & (d->nbuckets - 1)]; f; f = f->hnext)
		if (f->hash == h && tuple_match(&f->tuple, t, dir))
			return f;
	return NULL;
}

/* Slot of source sid in flow f, adding it if there is room; -1 otherwise. */
static inline int flow_slot(struct dedup *d, struct flow *f, uint32_t sid)
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

/* --- a direction's emitted ranges (kept by dedup_bytes.c) -------------------- */

static inline struct rng *dir_ranges(struct dir_state *ds)
{
	return ds->n > INLINE_RANGES ? ds->r.ext : ds->r.in;
}

/* One past the highest sequence number (byte, SYN or FIN) emitted in a direction; false
 * when nothing was. */
static inline bool dir_edge(const struct dir_state *ds, uint32_t *edge)
{
	if (!ds->n)
		return false;
	*edge = ds->n > INLINE_RANGES ? ds->r.ext[ds->n - 1].hi : ds->r.in[ds->n - 1].hi;
	return true;
}

/* How far the other direction's frames may acknowledge direction ds: the end of its
 * gap-free emitted prefix, where a hole counts as filled once it is given up (see
 * hole_give_up()). A real receiver acknowledges no byte behind a hole it still waits
 * for; past such an ACK, an analyser takes the hole's bytes for a retransmission of
 * acknowledged data and discards them (Suricata: stream.est_pkt_before_last_ack).
 * Holes more than STALE_SPAN behind the head count as given up (the ranges forget them
 * too), which also keeps gone within reach of serial arithmetic. */
static inline uint32_t ack_edge(const struct dir_state *ds)
{
	const struct rng *r = ds->n > INLINE_RANGES ? ds->r.ext : ds->r.in;
	unsigned i = 0;

	if (ds->n > 1 && (ds->flags & DIR_GONE) &&
	    sdiff(r[ds->n - 1].hi, ds->gone) <= (int32_t)STALE_SPAN)
		while (i + 1 < ds->n && sdiff(r[i + 1].lo, ds->gone) <= 0)
			i++;
	return r[i].hi;
}

/* The holes of direction ds below seq will not be filled (they are in every copy, or
 * the direction ended): acknowledgements may pass them. */
static inline void hole_give_up(struct dir_state *ds, uint32_t seq)
{
	if (!(ds->flags & DIR_GONE) || sdiff(seq, ds->gone) > 0) {
		ds->gone = seq;
		ds->flags |= DIR_GONE;
	}
}

/* Gives up every hole below the highest sequence number emitted in direction ds. */
static inline void holes_give_up(struct dir_state *ds)
{
	uint32_t edge;

	if (dir_edge(ds, &edge))
		hole_give_up(ds, edge);
}

/* --- hold (dedup_hold.c) ----------------------------------------------------- */

void held_set(struct dedup *d, struct flow *f, unsigned bits, bool on);
void held_drop(struct dedup *d, struct flow *f, unsigned bit);
void fin_drop_held(struct dedup *d, struct flow *f, int dir);
bool fin_should_hold(const struct dedup *d, const struct flow *f, int slot);
void seg_hold(struct dedup *d, struct flow *f, int dir, unsigned bit, const uint8_t *frame,
	      const struct pkt_info *info, uint32_t sid, uint64_t ts);
bool ack_waits_for_fin(const struct flow *f, int dir, const struct pkt_info *info);
void hold_release(struct dedup *d, struct flow *f, int dir, bool all);
void hold_discard(struct dedup *d, struct flow *f, int dir);
bool bytes_hold(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
		const struct pkt_info *info, uint32_t sid, int slot, uint64_t ts);
bool hold_fill(struct dedup *d, struct flow *f, int dir, const uint8_t *frame,
	       const struct pkt_info *info, const struct dedup_src *src, uint32_t sid, int slot,
	       uint64_t ts);
void held_release(struct dedup *d, struct flow *f, int dir, unsigned bit);
void held_release_due(struct dedup *d, struct flow *f, uint64_t now, bool all);

/* After direction dir emitted: the other direction's held ACK goes out once everything
 * it acknowledges has. */
static inline void ack_release_ready(struct dedup *d, struct flow *f, int dir)
{
	if (f->ext && (f->ext->held & HELD_ACK(!dir)) && f->dir[dir].n &&
	    sdiff(f->ext->ack[!dir].ack, ack_edge(&f->dir[dir])) <= 0)
		held_release(d, f, !dir, HELD_ACK(!dir));
}

/* --- digest modes (dedup_digest.c) ------------------------------------------- */

bool hset_seen(struct dedup *d, uint64_t key, uint32_t sid, bool other_src, uint64_t ts);
uint64_t packet_digest(const uint8_t *frame, const struct pkt_info *info);
uint64_t content_digest(const struct pkt_info *info);

/* --- emission: every path, through the instance's emit callback -------------- */

static inline void emit_frame(struct dedup *d, const uint8_t *frame, size_t len, uint64_t ts,
			      const struct dedup_src *src)
{
	d->st.emitted_packets++;
	d->st.emitted_bytes += len;
	d->emit(d->ctx, frame, len, ts, src);
}

/* Emits a frame whole (or drops it) and keeps the flow counters. */
static inline void pass_whole(struct dedup *d, struct flow *f, const uint8_t *frame, size_t len,
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
static inline void flow_emit(struct dedup *d, struct flow *f, const uint8_t *frame, size_t len,
			     uint64_t ts, const struct dedup_src *src)
{
	if (f->ext) {
		if (ts < f->ext->emit_ns)
			ts = f->ext->emit_ns;
		f->ext->emit_ns = ts;
	}
	emit_frame(d, frame, len, ts, src);
}

static inline void drop_whole(struct dedup *d, struct flow *f, const struct pkt_info *info)
{
	d->st.dropped_packets++;
	d->st.dup_bytes += info->payload_len;
	if (f) {
		f->pkts_dropped++;
		f->bytes_dropped += info->payload_len;
	}
}

#endif
