/* tvn/dedup_flow.c - the dedup engine's flow table.
 *
 * Owns: the source registry (ids for the copies' outer addresses and VNIs, recycled when
 * no flow refers to them), the flow pool, the hash buckets, the open and closed lists,
 * tombstones, the flow extension (struct flow_ext, allocated on demand), the flow info
 * reported to end and dedup_foreach(), and a flow's end (what it holds is released or
 * freed, its memory returns to the pools).
 * Does not own: what a flow's per-direction state means (dedup_bytes.c: ranges, rings;
 * dedup_hold.c: held segments and frames): flow_end() and flow_flip() only hand those
 * on, release or swap them. Per-packet lookups (src_id(), flow_lookup(), flow_touch(),
 * flow_slot()) are inline in dedup_int.h.
 *
 * Flow table: chained hash on flow_hash() (symmetric, so both directions of a connection
 * land in one entry), identity = the full 5-tuple compared with memcmp; the ISN is never
 * used to identify a flow. Entries come from a pool grown in chunks (no malloc per packet,
 * one per POOL_CHUNK new flows) and sit on one of two lists ordered by last activity:
 * open flows (expire after flow_timeout idle) and closed flows (both FINs or a RST
 * delivered: expire after skew idle, so a late copy's handshake/FINs still meet them).
 *
 * A restarted agent's copy (relative offsets) is never laid over absolute output, even
 * after the flow entry ended: a connection that delivered absolute offsets leaves a
 * tombstone (its tuple hash, for flow_timeout); a flow recreated for that tuple without
 * a SYN is treated as having absolute output already, so relative copies are dropped. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dedup_bytes.h"
#include "isn.h"
/* --- source registry ---------------------------------------------------------- */

static uint32_t src_hash(const struct dedup_src *s)
{
	uint64_t a0, a1;

	memcpy(&a0, s->addr, 8);
	memcpy(&a1, s->addr + 8, 8);
	return (uint32_t)hash_mix64((a0 ^ rotl64(a1, 29)) * 0x9e3779b97f4a7c15ull + s->vni);
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
uint32_t src_find(struct dedup *d, const struct dedup_src *s)
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

/* --- flow pool, tombstones, flow entries -------------------------------------- */

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

bool tomb_hit(const struct dedup *d, const struct ecv_tuple *t)
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

struct flow_ext *flow_ext(struct flow *f)
{
	if (!f->ext) {
		f->ext = calloc(1, sizeof(*f->ext));
		/* Every frame emitted so far carried a time no later than this. */
		if (f->ext)
			f->ext->emit_ns = f->last_ns;
	}
	return f->ext;
}

void flow_info_fill(const struct flow *f, const struct dedup *d, struct dedup_flow_info *fi)
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
void flow_end(struct dedup *d, struct flow *f, bool report)
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

/* Creates a flow owned by source sid. Returns NULL when a bound says no (the caller
 * passes the frame through and counts it). */
struct flow *flow_create(struct dedup *d, const struct ecv_tuple *t, uint32_t h, uint32_t sid,
			 uint64_t ts, uint64_t *limited)
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

/* Makes the flow's tuple the reverse of what it was (client -> server learnt late). */
void flow_flip(struct flow *f)
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

void flow_check_closed(struct dedup *d, struct flow *f)
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
