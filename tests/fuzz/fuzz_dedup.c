/* tests/fuzz/fuzz_dedup.c - libFuzzer harness for the dedup engine (tvn/dedup*.c).
 *
 * The input is a program: its first byte picks the mode and tiny table bounds, then each
 * 12-byte record is one operation on a handful of tuples and sources: a TCP segment with
 * fuzzed seq/ack/flags/length (seq and ack as offsets into each direction's sequence
 * space, payload from a fixed pattern, so copies agree unless the record says
 * otherwise), a UDP datagram, a metadata message, expire or flush. Every frame the engine
 * emits must re-parse and carry valid checksums, the frames of one connection must never
 * go back in time (the input's time only moves forward), and the counters must agree
 * with what was emitted and listed. In bytes mode every payload byte of a connection
 * goes out at most once, unless the flow fell back to flow mode (mid-stream copies may
 * repeat bytes, documented) or frames passed undeduplicated (table full, source limit);
 * RST payload is not tracked (it goes out as received).
 *
 * Seeds (tests/fuzz/corpus/dedup/): the 20 largest inputs of the corpus grown by about
 * six minutes of this harness from an empty one; they reach the bytes, flow, held-FIN and
 * hash-set paths at once. Written by hand: held-ack-confirmed (a close whose FINs the
 * second copy confirms, each peer ACK held until its FIN went out), held-ack-expired
 * (one copy: both FINs and the last ACK held, then released in order by expiry) and
 * hole-fill-conflict (copy A's data past a hole held, copy B's differently cut, differing
 * segment fills the hole and runs into it: split by hold_fill()). */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../tvn/dedup.h"
#include "isn.h"
#include "pkt.h"
#include "tuple.h"

#define NTUPLES 3
#define NSRCS 6
/* Payload positions per tuple and direction: 16-bit offsets past the ISN plus a segment. */
#define SPAN (65536 + 1602)

struct fz {
	uint64_t emitted;
	const struct ecv_tuple *t;  /* NTUPLES */
	uint64_t last_ts[NTUPLES];  /* latest time emitted for the connection on t[i] */
	const uint32_t *isn;	    /* NTUPLES: direction 0's; direction 1's is ^ 0x5555 */
	uint8_t (*cnt)[2][SPAN];    /* NTUPLES: times each payload byte went out */
	uint32_t dirty[NTUPLES][2]; /* cnt[i][dir][0, dirty) may be non-zero */
	struct dedup *d;
	bool bytes_mode;
};

/* Index of the test tuple a frame or flow belongs to (either direction), or -1. */
static int fz_tuple(const struct fz *z, const struct ecv_tuple *t)
{
	struct ecv_tuple rev;
	int i;

	tuple_reverse(&rev, t);
	for (i = 0; i < NTUPLES; i++)
		if (tuple_equal(t, &z->t[i]) || tuple_equal(&rev, &z->t[i]))
			return i;
	return -1;
}

static void fz_emit(void *ctx, const uint8_t *frame, size_t len, uint64_t ts,
		    const struct dedup_src *src)
{
	struct fz *z = ctx;
	struct pkt_info in;
	int r, i;

	(void)src;
	z->emitted++;
	r = pkt_parse(frame, len, &in);
	if (r != 0 || !pkt_checksums_ok(frame, &in))
		abort();
	if (in.tuple.proto != IPPROTO_TCP)
		return;
	i = fz_tuple(z, &in.tuple);
	if (i < 0)
		return;
	/* A held segment released later must not carry an earlier time than what the
	 * connection emitted before it. */
	if (ts < z->last_ts[i])
		abort();
	z->last_ts[i] = ts;
	if (in.tcp_flags & PKT_TCP_RST)
		return;
	for (r = 0; r < (int)in.payload_len; r++) {
		int dir = !tuple_equal(&in.tuple, &z->t[i]);
		uint32_t pos = in.seq + !!(in.tcp_flags & PKT_TCP_SYN) + (uint32_t)r -
			       (dir ? z->isn[i] ^ 0x5555 : z->isn[i]);

		if (pos < SPAN && z->cnt[i][dir][pos] < 255) {
			z->cnt[i][dir][pos]++;
			if (pos >= z->dirty[i][dir])
				z->dirty[i][dir] = pos + 1;
		}
	}
}

/* At a connection's end: no payload byte went out twice where bytes mode promises it. */
static void fz_check_once(struct fz *z, int i, bool mid)
{
	struct dedup_stats st;
	unsigned dir, pos;

	dedup_get_stats(z->d, &st);
	for (dir = 0; dir < 2; dir++) {
		if (z->bytes_mode && !mid && !st.table_full && !st.source_limited)
			for (pos = 0; pos < z->dirty[i][dir]; pos++)
				if (z->cnt[i][dir][pos] > 1)
					abort();
		memset(z->cnt[i][dir], 0, z->dirty[i][dir]);
		z->dirty[i][dir] = 0;
	}
}

static void fz_end(void *ctx, const struct dedup_flow_info *f)
{
	struct fz *z = ctx;
	int i;

	if (f->n_sources > DEDUP_MAX_SOURCES || f->kept_source >= (int)f->n_sources)
		abort();
	/* The next connection on this tuple starts its own timeline. */
	i = fz_tuple(z, &f->tuple);
	if (i >= 0) {
		z->last_ts[i] = 0;
		fz_check_once(z, i, f->mid_stream);
	}
}

static int fz_count(void *ctx, const struct dedup_flow_info *f)
{
	(void)f;
	++*(unsigned *)ctx;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pattern[4096], frame[PKT_MAX_FRAME], cnt[NTUPLES][2][SPAN];
	struct ecv_tuple t[NTUPLES];
	struct dedup_src src[NSRCS];
	struct dedup_cfg cfg;
	struct dedup_stats st;
	struct dedup *d;
	struct fz z = { 0 };
	uint64_t ts = 1000000000ull;
	unsigned i, j, nflows = 0;
	uint32_t isn[NTUPLES];

	if (size < 1)
		return 0;
	for (i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + 3);
	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = (enum dedup_mode)(data[0] % 5);
	cfg.max_flows = 1 + (data[0] >> 3 & 3);
	cfg.max_flows_per_source = data[0] >> 5 & 1;
	cfg.flow_timeout_ns = 5000000000ull;
	cfg.skew_ns = 2000000000ull;
	cfg.window_ns = 1000000000ull;
	z.t = t;
	z.isn = isn;
	z.cnt = cnt;
	z.bytes_mode = cfg.mode == DEDUP_BYTES;
	d = dedup_new(&cfg, fz_emit, fz_end, &z);
	if (!d)
		abort();
	z.d = d;
	for (i = 0; i < NTUPLES; i++) {
		uint8_t a[16] = { 0 }, b[16] = { 0 };

		if (i == 2) {
			a[0] = b[0] = 0x20;
			a[15] = 1;
			b[15] = 2;
		} else {
			uint8_t v4a[4] = { 10, 0, 0, (uint8_t)(1 + i) }, v4b[4] = { 10, 0, 0, 9 };

			tuple_addr_from_v4(a, v4a);
			tuple_addr_from_v4(b, v4b);
		}
		tuple_init(&t[i], a, (uint16_t)(40000 + i), b, 443, IPPROTO_TCP);
		isn[i] = i == 1 ? 0xfffff000u : isn_compute(&t[i]);
	}
	memset(src, 0, sizeof(src));
	for (i = 0; i < NSRCS; i++) {
		src[i].addr[15] = (uint8_t)i;
		src[i].vni = 1;
	}

	for (data++, size--; size >= 12; data += 12, size -= 12) {
		unsigned op = data[0] & 7, ti = (data[0] >> 3) % NTUPLES, rev = data[0] >> 5 & 1;
		unsigned si = data[1] % NSRCS;
		uint32_t off = (uint32_t)data[2] << 8 | data[3];
		uint32_t aoff = (uint32_t)data[4] << 8 | data[5];
		uint16_t plen = (uint16_t)(((uint16_t)data[6] << 8 | data[7]) % 1600);
		uint8_t flags = data[8];
		struct ecv_tuple tt;
		struct pkt_info in;
		int n;

		ts += (uint64_t)data[9] * 10000000ull;
		if (rev)
			tuple_reverse(&tt, &t[ti]);
		else
			tt = t[ti];
		switch (op) {
		case 0:
		case 1:
		case 2:
		case 3: {
			struct pkt_tcp tcp = {
				.seq = (rev ? isn[ti] ^ 0x5555 : isn[ti]) + off,
				.ack = (rev ? isn[ti] : isn[ti] ^ 0x5555) + aoff,
				.flags = flags,
				.window = data[10],
			};
			struct pkt_l2 l2 = { .src = { 2, 0, 0, 0, 0, (uint8_t)si },
					     .vlan = (uint16_t)(data[11] & 1 ? 7 : 0) };
			size_t po = (off + (data[11] >> 1)) % (sizeof(pattern) - 1600);

			n = pkt_build(frame, sizeof(frame), &l2, &tt, &tcp, data[10], pattern + po,
				      plen);
			if (n <= 0)
				break;
			if (pkt_parse(frame, (size_t)n, &in) != 0)
				abort();
			dedup_input(d, frame, (size_t)n, &in, &src[si], ts);
			break;
		}
		case 4: {
			struct ecv_tuple u = tt;

			u.proto = IPPROTO_UDP;
			n = pkt_build(frame, sizeof(frame), NULL, &u, NULL, 1, pattern, plen % 512);
			if (n > 0 && pkt_parse(frame, (size_t)n, &in) == 0)
				dedup_input(d, frame, (size_t)n, &in, &src[si], ts);
			break;
		}
		case 5: {
			struct meta_flow m;

			memset(&m, 0, sizeof(m));
			m.event = flags & 1 ? META_END : META_START;
			m.tuple = tt;
			m.from_start = flags & 2;
			if (flags & 4)
				strcpy(m.role, "client");
			dedup_meta(d, &m, &src[si], ts);
			break;
		}
		case 6:
			dedup_expire(d, ts + (uint64_t)data[10] * 100000000ull);
			break;
		case 7:
			if (flags & 1)
				dedup_flush(d);
			break;
		}
	}
	dedup_foreach(d, fz_count, &nflows);
	dedup_get_stats(d, &st);
	if (st.flows_active != nflows || st.emitted_packets != z.emitted)
		abort();
	dedup_flush(d);
	dedup_get_stats(d, &st);
	/* A frame split into pieces still counts once as dropped at most. */
	if (st.flows_active || st.dropped_packets > st.rx_packets || st.dup_bytes > st.rx_bytes)
		abort();
	dedup_free(d);
	for (i = 0; i < NTUPLES; i++) /* tuples whose frames passed without a flow */
		for (j = 0; j < 2; j++)
			memset(cnt[i][j], 0, z.dirty[i][j]);
	return 0;
}
