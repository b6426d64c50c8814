/* tvn/dedup_bytes.h - the byte engine's interface (dedup_bytes.c), and its per-packet
 * path.
 *
 * Owns: what the other files of the engine may call in the byte engine, and the paths
 * that most TCP segments take through it: bytes_input() (the entry: which path a segment
 * takes), bytes_next() (payload at the emitted edge: the first copy, in order),
 * bytes_covered() (a segment the last range covers whole: the second copy), the ack cut
 * (ack_allowed()) and the ring comparison. They are static inline, as they were when the
 * engine was one file: the TCP path (dedup.c) and the releases of the hold
 * (dedup_hold.c) run them in line; everything else of the byte engine is in
 * dedup_bytes.c, where its comments are.
 * Does not own: anything not in the byte engine (see dedup_int.h). */
#ifndef TVN_DEDUP_BYTES_H
#define TVN_DEDUP_BYTES_H

#include "dedup_int.h"

/* --- defined in dedup_bytes.c ----------------------------------------------------- */

void dir_ranges_free(struct dir_state *ds);
void dir_ring_free(struct dedup *d, struct dir_state *ds);
int build_piece(struct dedup *d, const uint8_t *frame, const struct pkt_info *info, uint32_t ack,
		int64_t ps, int64_t pe, unsigned syn, unsigned fin, int64_t seglen);
const uint8_t *frame_with_ack(struct dedup *d, const uint8_t *frame, size_t len,
			      const struct pkt_info *info, uint32_t ack);
void ring_keep(struct dedup *d, struct dir_state *ds, uint32_t seq, const uint8_t *p, uint32_t n,
	       uint32_t head);
void bytes_syn(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
	       const struct pkt_info *info, const struct dedup_src *src, uint64_t ts);
void bytes_ctl(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
	       const struct pkt_info *info, const struct dedup_src *src, uint32_t sid, int slot,
	       uint64_t ts);
void bytes_merge(struct dedup *d, struct flow *f, int dir, const uint8_t *frame, size_t len,
		 const struct pkt_info *info, const struct dedup_src *src, uint32_t sid, int slot,
		 uint64_t ts);

/* --- the per-packet path ---------------------------------------------------------- */

static inline bool ring_differs(const struct ring *rg, uint32_t seq, const uint8_t *p, size_t n)
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

/* Records the ack a frame went out with (ack: as emitted, see ack_allowed()). */
static inline void note_ack(struct dir_state *ds, const struct pkt_info *info, uint32_t ack)
{
	if (!(info->tcp_flags & PKT_TCP_ACK))
		return;
	if (!(ds->flags & DIR_ACK) || sdiff(ack, ds->max_ack) > 0) {
		ds->max_ack = ack;
		ds->flags |= DIR_ACK;
	}
}

/* The ack a frame of direction dir goes out with. Output must read as one TCP
 * conversation: a frame must not acknowledge sequence space of the other direction that
 * has not been emitted (a held FIN, a copy's tail still to come, a hole another copy
 * is still expected to fill), or analysers report an "ACKed unseen segment" and then
 * take the segment itself for a retransmission of acknowledged data (Suricata discards
 * it: stream.est_pkt_before_last_ack). So the ack is cut to the other direction's
 * gap-free emitted edge (ack_edge()). Only in bytes mode with absolute offsets:
 * elsewhere one copy's frames go out as they are. */
HOT uint32_t ack_allowed(const struct dedup *d, const struct flow *f, int dir,
			 const struct pkt_info *info)
{
	const struct dir_state *os = &f->dir[!dir];
	uint32_t edge;

	if (!(info->tcp_flags & PKT_TCP_ACK) || d->cfg.mode != DEDUP_BYTES || (f->flags & FL_MID) ||
	    !os->n)
		return info->ack;
	edge = ack_edge(os);
	return sdiff(info->ack, edge) <= 0 ? info->ack : edge;
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

#endif
