/* tvn/dedup_bytes.c - the dedup engine's byte engine (bytes mode, and the kept copy's
 * own retransmissions in flow mode).
 *
 * Owns: per direction, the sequence ranges already emitted, what of a segment goes out
 * (whole, trimmed into rebuilt pieces, or dropped), the ack a frame goes out with (cut to
 * what the other direction emitted), the SYN/FIN/RST/ACK bookkeeping of a direction, and
 * the overlap-conflict rings with their pool.
 * Does not own: whether a segment waits for the other copy (dedup_hold.c decides and
 * releases through bytes_input()), which copy is kept (dedup.c), flows and their lists
 * (dedup_flow.c).
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
 * The output must read as one TCP conversation, so in bytes mode no frame goes out
 * acknowledging sequence space of the other direction that was not emitted before it: a
 * frame acknowledging more than went out has its ack cut to the other direction's
 * gap-free emitted edge (ack_allowed(), ack_edge(); checksum fixed incrementally, the
 * frame otherwise as received), unless it is the peer's last ACK of a held FIN
 * (dedup_hold.c). A hole stops that edge while a copy may still fill it; once it is
 * given up (in every copy, past skew, its direction ended: hole_give_up()) the edge
 * passes it, as a capture that lost a segment reads.
 *
 * Overlap conflicts: each direction that carries payload gets (while the global budget
 * RING_BUDGET lasts) a RING_SIZE ring of the most recently emitted bytes, indexed by
 * sequence number. A duplicate's covered bytes that still lie in the ring are compared
 * with what was emitted; older bytes, and directions without a ring, are not checked.
 * With the defaults that is the last 64 KiB of 4096 concurrent directions. */
#include <stdlib.h>
#include <string.h>

#include "dedup_bytes.h"
/* --- ranges and rings --------------------------------------------------------- */

void dir_ranges_free(struct dir_state *ds)
{
	if (ds->n > INLINE_RANGES)
		free(ds->r.ext);
	ds->n = 0;
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

void dir_ring_free(struct dedup *d, struct dir_state *ds)
{
	if (ds->ring) {
		ds->ring->next = d->ring_free;
		d->ring_free = ds->ring;
		ds->ring = NULL;
	}
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

/* Remembers payload p[0..n), emitted at sequence number seq, for conflict checks: starts
 * the direction's ring on its first payload (while the budget lasts) and keeps only what
 * lies within RING_SIZE of head (one past the highest sequence number emitted), so
 * ring->from stays within reach of serial arithmetic on long flows. */
void ring_keep(struct dedup *d, struct dir_state *ds, uint32_t seq, const uint8_t *p, uint32_t n,
	       uint32_t head)
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

/* One's complement update of a checksum at p for a 32-bit field going from old to new
 * (RFC 1624, eqn. 3), so a frame whose ack changes keeps everything else as it was. */
/* --- rebuilt frames: ack cut, pieces ------------------------------------------ */

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

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* The frame with its TCP seq and ack set to seq and ack: the frame itself when that
 * changes nothing, else a copy in d->buf with the checksum fixed. */
static const uint8_t *frame_with(struct dedup *d, const uint8_t *frame, size_t len,
				 const struct pkt_info *info, uint32_t seq, uint32_t ack)
{
	uint8_t *th = d->buf + info->l4_off;

	if ((seq == info->seq && ack == info->ack) || len > sizeof(d->buf) ||
	    (size_t)info->l4_off + 20 > len)
		return frame;
	memcpy(d->buf, frame, len);
	put32(th + 4, seq);
	put32(th + 8, ack);
	csum_replace32(th + 16, info->seq, seq);
	csum_replace32(th + 16, info->ack, ack);
	return d->buf;
}

/* The frame with its TCP ack set to ack (see frame_with()). */
const uint8_t *frame_with_ack(struct dedup *d, const uint8_t *frame, size_t len,
			      const struct pkt_info *info, uint32_t ack)
{
	return frame_with(d, frame, len, info, info->seq, ack);
}

/* Rebuilds the part [ps, pe) (positions relative to the segment's first sequence number)
 * of a TCP segment with its original L2, tuple, ack, window and flags; SYN stays only on
 * the piece that starts the segment, FIN only on the one that ends it. */
int build_piece(struct dedup *d, const uint8_t *frame, const struct pkt_info *info, uint32_t ack,
		int64_t ps, int64_t pe, unsigned syn, unsigned fin, int64_t seglen)
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

/* The first SYN of a direction (nothing emitted there yet, nothing held): it goes out
 * whole and starts the ranges. */
/* --- segments ----------------------------------------------------------------- */

void bytes_syn(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
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
 * a bare ACK (news only if it acknowledges more than was already sent). A bare ACK goes
 * out at its direction's emitted edge, whatever its copy's sequence number said: a copy
 * that lags the one whose bytes went out has its ACKs numbered behind that edge (the
 * direction's sequence numbers would go back), and one whose data waits behind a hole
 * numbers them past it (tshark: "previous segment not captured"). */
void bytes_ctl(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
	       const struct pkt_info *info, const struct dedup_src *src, uint32_t sid, int slot,
	       uint64_t ts)
{
	struct dir_state *ds = &f->dir[dir];
	uint32_t ack = ack_allowed(d, f, dir, info), seq = info->seq;

	if (info->tcp_flags & PKT_TCP_RST) {
		if (ds->flags & DIR_RST) {
			drop_whole(d, f, info);
			return;
		}
		/* The connection ends here: data held behind a hole goes out before. */
		if (f->ext && (f->ext->held & HELD_DATA(dir))) {
			hold_release(d, f, dir, true);
			holes_give_up(ds);
		}
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
	if (d->cfg.mode == DEDUP_BYTES && !(f->flags & FL_MID))
		dir_edge(ds, &seq);
	note_ack(ds, info, ack);
	flow_emit(d, f, frame_with(d, frame, len, info, seq, ack), len, ts, src);
	f->pkts_out++;
}

/* Everything else that takes sequence space: the parts of the segment no range covers go
 * out (trimmed when that is not all of it), with SYN/FIN handling, held FINs and ACKs,
 * and range upkeep. Out of line: its range arrays make a large stack frame. */
__attribute__((noinline)) void bytes_merge(struct dedup *d, struct flow *f, int dir,
					   const uint8_t *frame, size_t len,
					   const struct pkt_info *info, const struct dedup_src *src,
					   uint32_t sid, int slot, uint64_t ts)
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
			/* A second copy confirms it: this FIN goes out, the held one never
			 * (the ACK held for it follows this one). */
			held_drop(d, f, HELD_FIN(dir));
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
		if (fin && b == seglen) {
			/* The direction ends here: its holes will not be filled. */
			ds->flags |= DIR_FIN;
			holes_give_up(ds);
		}
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
