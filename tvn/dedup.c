/* tvn/dedup.c - flow-level duplicate suppression (DESIGN §4 "Dedup modes"): the public
 * API, dispatch by mode, and the TCP path.
 *
 * Owns: the instance (dedup_new/free, stats, foreach, mode names), what happens to each
 * frame and metadata message before a mode's engine sees it (source id, flow lookup or
 * creation, orientation, classification of a copy's offsets as absolute or relative),
 * the choice between byte-by-byte dedup and keeping one copy (flow mode, and the
 * fallback of flows with mid-stream copies), and expiry.
 * Does not own: the flow table's structures (dedup_flow.c), sequence ranges and rings
 * (dedup_bytes.c), what is held back for the other copy (dedup_hold.c), digests
 * (dedup_digest.c): it calls them. The layout is in dedup_int.h.
 *
 * Copies without absolute offsets (no SYN from that source and no metadata saying
 * from_start; or an agent that restarted mid-flow and announced the flow again as not
 * from_start) cannot be aligned with the other copy byte by byte, so their flow falls
 * back to flow mode: the first source with absolute offsets, else the first source, is
 * kept (still range-tracked so its own retransmissions are removed) and the others are
 * discarded. flow mode does the same for every flow. Relative offsets are never laid
 * over a stream that absolute ones already delivered: such packets are dropped (also
 * after the flow entry ended: the tombstones of dedup_flow.c). If the kept source stays
 * silent for more than skew while another source still sends, the other source becomes
 * the kept one and continues from the next byte not yet emitted; when nothing absolute
 * went out yet, the ranges are reset instead (the new copy's position in the stream is
 * unknown: some bytes may repeat or be missing).
 *
 * Flow entries are kept for accounting (/flows, the flow log) in every mode, TCP only.
 *
 * Limits: trimmed pieces are rebuilt by pkt_build(), so they carry the original MACs,
 * outer VLAN, addresses, ports, IP id, ack, window and flags, but TTL 64, no IP or TCP
 * options and no second VLAN tag. A 5-tuple reused within skew of its previous
 * connection's end, while that connection's late copy is still arriving, cannot be told
 * from it (same ISN): the late copy then meets the new flow's ranges. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dedup_bytes.h"
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
		f->dir[i].flags &= ~(DIR_ACK | DIR_NORING | DIR_GONE);
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

/* Records who the end of m's role is; fields m leaves empty keep their earlier value. */
static void end_update(struct dedup_end ends[2], const struct meta_flow *m)
{
	struct dedup_end *e;

	if (!strcmp(m->role, "client"))
		e = &ends[0];
	else if (!strcmp(m->role, "server"))
		e = &ends[1];
	else
		return;
	if (m->pid)
		e->pid = m->pid;
	if (m->comm[0])
		snprintf(e->comm, sizeof(e->comm), "%s", m->comm);
	if (m->container[0])
		snprintf(e->container, sizeof(e->container), "%s", m->container);
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
	end_update(f->ext->ends, m);
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
