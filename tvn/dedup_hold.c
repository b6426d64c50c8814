/* tvn/dedup_hold.c - the dedup engine's hold: what bytes mode keeps back for the other
 * copy, and why.
 *
 * Owns: held FINs and the peer's ACK of them (struct held_seg), data frames held behind
 * a fresh hole (struct held_frame), the held list of the instance, the rules that decide
 * to hold, and the release of all of them (at once, when the other copy confirms or
 * contradicts, after skew, at the flow's end).
 * Does not own: the ranges and the emitted edge (dedup_bytes.c: released segments go back
 * through bytes_input() with slot -2, never held again), the flow's lifetime
 * (dedup_flow.c), which copy is kept (dedup.c).
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
 * ACKs: no frame may go out acknowledging sequence space of the other direction that was
 * not emitted before it (analysers call that "ACKed unseen segment", then flag the FIN as
 * a retransmission; the general ack cut is dedup_bytes.c's): the peer's bare ACK of a
 * held FIN (ack = FIN + 1, the last ACK of a close) is held with it and goes out right
 * after it, or is dropped with it (that close did not happen). Held FINs are
 * released in the order they were held, and a released segment never goes out with a
 * time earlier than what its flow already emitted.
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
 * bounds (HOLD_DIR_MAX per direction, HOLD_BUDGET in total) say no. Released for any
 * reason but the bounds, the hole is given up (hole_give_up()): acknowledgements may
 * pass it from then on; released for the bounds, they stay below it, so that a late
 * filler still reads as the missing segment rather than as data already acknowledged.
 * A hole with no other copy to wait for is given up at once. The bytes still come
 * from whichever copy brought them first; only their order changes: another copy's
 * segment that fills the hole and runs on into the held frames goes out in pieces, each
 * ending where the oldest held frame starts (hold_fill()). Latency: data past a hole
 * waits for the lag between the copies (at most skew). */
#include <stdlib.h>
#include <string.h>

#include "dedup_bytes.h"
/* Sets or clears held segments (HELD_* bits), keeping the held list in step. */
void held_set(struct dedup *d, struct flow *f, unsigned bits, bool on)
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
void held_drop(struct dedup *d, struct flow *f, unsigned bit)
{
	d->st.dropped_packets++;
	f->pkts_dropped++;
	held_set(d, f, bit, false);
}

/* A held FIN turned out to be no end of the connection (another copy's data ran past
 * it, or its copy is not the one kept): it is dropped, and so is the peer's ACK held
 * for it (ack_waits_for_fin()), which belongs to the same close that did not happen:
 * released, its sequence number would count the dropped FIN of its own direction too,
 * a byte beyond anything emitted there ("previous segment not captured", then every
 * later ACK a keep-alive). */
void fin_drop_held(struct dedup *d, struct flow *f, int dir)
{
	struct flow_ext *x = f->ext;

	if ((x->held & HELD_ACK(!dir)) && x->ack[!dir].ack == x->fin[dir].seq + 1)
		held_drop(d, f, HELD_ACK(!dir));
	held_drop(d, f, HELD_FIN(dir));
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

bool fin_should_hold(const struct dedup *d, const struct flow *f, int slot)
{
	if (d->cfg.mode != DEDUP_BYTES || (f->flags & FL_MID))
		return false;
	return other_copy_sends(f, slot) || d->clock - f->first_ns <= d->cfg.skew_ns;
}

/* Keeps the header of a FIN (bit HELD_FIN) or bare ACK (HELD_ACK) of direction dir. */
void seg_hold(struct dedup *d, struct flow *f, int dir, unsigned bit, const uint8_t *frame,
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
bool ack_waits_for_fin(const struct flow *f, int dir, const struct pkt_info *info)
{
	return f->ext && (f->ext->held & HELD_FIN(!dir)) && (info->tcp_flags & PKT_TCP_ACK) &&
	       info->ack == f->ext->fin[!dir].seq + 1;
}

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
__attribute__((noinline)) void hold_release(struct dedup *d, struct flow *f, int dir, bool all)
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
void hold_discard(struct dedup *d, struct flow *f, int dir)
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
bool bytes_hold(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
		const struct pkt_info *info, uint32_t sid, int slot, uint64_t ts)
{
	bool queued = f->ext && (f->ext->held & HELD_DATA(dir));
	struct held_frame *h;
	uint32_t edge;

	if (!dir_edge(&f->dir[dir], &edge) || sdiff(info->seq, edge) <= 0 ||
	    d->cfg.mode != DEDUP_BYTES || (f->flags & FL_MID) || slot == -2 || (slot < 0 && queued))
		return false;
	if (queued && f->ext->qsrc[dir] != sid) {
		/* Another copy jumps past the edge too: the hole is in both. */
		hold_release(d, f, dir, true);
		holes_give_up(&f->dir[dir]);
		return false;
	}
	if (!queued && (slot < 0 || !fin_should_hold(d, f, slot))) {
		/* No other copy to wait for: the hole stays one. */
		hole_give_up(&f->dir[dir], info->seq);
		return false;
	}
	if (HOLD_COST(len) > HOLD_DIR_MAX - (queued ? f->ext->qbytes[dir] : 0) ||
	    d->hold_bytes + HOLD_COST(len) > HOLD_BUDGET || !flow_ext(f) ||
	    !(h = malloc(sizeof(*h) + len))) {
		/* Out of room, not out of hope: the other copy may still fill the hole, so
		 * acknowledgements stay below it (ack_edge()). */
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
__attribute__((noinline)) bool hold_fill(struct dedup *d, struct flow *f, int dir,
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

/* Delivers a held segment (bit HELD_FIN(dir) or HELD_ACK(dir)) as it was received,
 * through the same range bookkeeping; its time is no earlier than the flow's output. */
void held_release(struct dedup *d, struct flow *f, int dir, unsigned bit)
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
void held_release_due(struct dedup *d, struct flow *f, uint64_t now, bool all)
{
	int i, pick;

	/* Data held behind a hole first: it comes before any FIN of its direction. */
	for (i = 0; f->ext && i < 2; i++) {
		if ((f->ext->held & HELD_DATA(i)) &&
		    (all || sat_add(f->ext->q[i]->ts, d->cfg.skew_ns) < now)) {
			hold_release(d, f, i, true);
			holes_give_up(&f->dir[i]);
		}
	}
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
