/* tvn/dedup_digest.c - the dedup engine's content and packet modes.
 *
 * Owns: the frame digests (packet: the frame without what a hop changes; content: the
 * flow direction and payload) and the time-windowed hash set that remembers them.
 * Does not own: flows (dedup.c still keeps entries for accounting in these modes),
 * emission and counters (the caller drops or passes the frame).
 *
 * content and packet modes use a bucketed hash set (HSET_BUCKETS x HSET_WAYS = 1 Mi
 * entries, 16 MiB, oldest way replaced) of 64-bit digests stamped with time (~1 us
 * resolution) and source; a digest older than window_ns is ignored. When more than
 * about a million frames arrive within one window, the oldest are forgotten early and
 * their repeats pass (the drop counters then fall short; nothing is lost). */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dedup_int.h"
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

/* True if key was seen within the window (from another source when other_src). Records
 * the key (and refreshes its time) otherwise. */
bool hset_seen(struct dedup *d, uint64_t key, uint32_t sid, bool other_src, uint64_t ts)
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
uint64_t packet_digest(const uint8_t *frame, const struct pkt_info *info)
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
uint64_t content_digest(const struct pkt_info *info)
{
	uint64_t h = hash_bytes(0xc0de, (const uint8_t *)&info->tuple, sizeof(info->tuple));

	if (info->payload_len)
		return hash_mix64(hash_bytes(h, info->payload, info->payload_len));
	h = hash_bytes(h, &info->tcp_flags, 1);
	h = hash_bytes(h, (const uint8_t *)&info->seq, 4);
	return hash_mix64(hash_bytes(h, (const uint8_t *)&info->ack, 4));
}
