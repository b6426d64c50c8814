/* tools/ecv-flowgen.c - generates the two node copies of many synthetic TLS-plaintext
 * flows, the way two ECV agents would ship them, for tests and benchmarks.
 *
 * Every flow is an HTTP-like exchange (requests and responses of random sizes) with the
 * synthesized handshake and FINs of DESIGN §2/§3 (hash-derived ISNs). Copy A is what
 * the client's node sends, copy B the server's node: segmented differently (its own
 * MTU, random segment sizes, some segments coalesced), optionally late (--skew) and
 * with holes (--loss). Output: DIR/a.pcap and DIR/b.pcap (inner frames, or VxLAN
 * datagrams from 192.168.0.1 / 192.168.0.2 with --vxlan) and, per flow and direction,
 * the exact payload the tools must see: DIR/expected/CLIENT_CPORT_SERVER_SPORT.{c2s,s2c}.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "cli.h"
#include "isn.h"
#include "log.h"
#include "meta.h"
#include "pkt.h"
#include "tuple.h"
#include "vxlan.h"

#define GROUP 64 /* flows generated (and interleaved in time) together */

struct opts {
	uint64_t flows, seed, min_size, max_size, exchanges, mtu_a, mtu_b, loss_pct, skew_us,
		garbage, vni, coalesce_pct, ipv6_pct;
	bool vxlan, meta, quiet, loss_in_a;
	const char *dir;
};

struct gpkt {
	uint64_t ts;
	uint64_t order; /* tie-break: generation order */
	int copy;	/* 0 = A, 1 = B */
	uint32_t len;
	uint8_t *data;
};

struct gen {
	struct opts o;
	uint64_t rng;
	struct gpkt *pkts;
	size_t n, cap;
	uint64_t order;
	uint64_t max_ts;
	pcap_t *dead;
	pcap_dumper_t *dump[2];
	uint16_t ip_id[2];
	uint64_t written[2];
	uint8_t frame[PKT_MAX_FRAME], outer[PKT_MAX_FRAME + 64];
};

static uint64_t rnd(struct gen *g)
{
	/* xorshift64*: reproducible across libcs for a given --seed. */
	g->rng ^= g->rng >> 12;
	g->rng ^= g->rng << 25;
	g->rng ^= g->rng >> 27;
	return g->rng * 2685821657736338717ull;
}

static uint64_t rnd_range(struct gen *g, uint64_t lo, uint64_t hi)
{
	return hi <= lo ? lo : lo + rnd(g) % (hi - lo + 1);
}

static int add_pkt(struct gen *g, int copy, uint64_t ts, const uint8_t *frame, size_t len)
{
	struct gpkt *p;

	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 4096;
		struct gpkt *np = realloc(g->pkts, cap * sizeof(*np));

		if (!np)
			return -ENOMEM;
		g->pkts = np;
		g->cap = cap;
	}
	p = &g->pkts[g->n];
	p->data = malloc(len);
	if (!p->data)
		return -ENOMEM;
	memcpy(p->data, frame, len);
	p->len = (uint32_t)len;
	p->ts = ts;
	if (ts > g->max_ts)
		g->max_ts = ts;
	p->copy = copy;
	p->order = g->order++;
	g->n++;
	return 0;
}

/* One segment of direction dir (0 = client -> server) as copy `copy` sees it. */
static int emit_seg(struct gen *g, int copy, uint64_t ts, const struct ecv_tuple *t,
		    const uint32_t isn[2], int dir, uint8_t flags, uint32_t seq, uint32_t ack,
		    const uint8_t *payload, size_t len)
{
	static const struct pkt_l2 l2c = { .src = { 0x02, 0xec, 0, 0, 0, 1 },
					   .dst = { 0x02, 0xec, 0, 0, 0, 2 } };
	static const struct pkt_l2 l2s = { .src = { 0x02, 0xec, 0, 0, 0, 2 },
					   .dst = { 0x02, 0xec, 0, 0, 0, 1 } };
	struct pkt_tcp tcp = { .seq = seq, .ack = ack, .flags = flags };
	struct ecv_tuple rt;
	int n;

	(void)isn;
	if (dir)
		tuple_reverse(&rt, t);
	n = pkt_build(g->frame, sizeof(g->frame), dir ? &l2s : &l2c, dir ? &rt : t, &tcp,
		      g->ip_id[copy]++, payload, len);
	if (n < 0)
		return n;
	return add_pkt(g, copy, ts, g->frame, (size_t)n);
}

static void fill_http(struct gen *g, uint8_t *buf, size_t len, bool request, uint64_t id)
{
	char head[160];
	size_t i, h;

	if (request)
		h = (size_t)snprintf(
			head, sizeof(head),
			"GET /obj/%llu HTTP/1.1\r\nHost: svc\r\nContent-Length: %zu\r\n\r\n",
			(unsigned long long)id, len);
	else
		h = (size_t)snprintf(head, sizeof(head),
				     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)('a' + rnd(g) % 26);
	memcpy(buf, head, h < len ? h : len);
}

/* Segments one message into copy A (MTU a, full segments) and copy B (random sizes up
 * to its MSS, some coalesced pairs, some lost). */
static int emit_message(struct gen *g, uint64_t *ts, const struct ecv_tuple *t,
			const uint32_t isn[2], int dir, uint64_t off[2], const uint8_t *msg,
			size_t len)
{
	size_t mss_a = pkt_mss((unsigned)g->o.mtu_a, t->family);
	size_t mss_b = pkt_mss((unsigned)g->o.mtu_b, t->family);
	uint32_t ack = isn[!dir] + 1 + (uint32_t)off[!dir];
	uint32_t base = isn[dir] + 1 + (uint32_t)off[dir];
	size_t pos, seg;
	uint64_t t0 = *ts;
	int err;

	for (pos = 0; pos < len; pos += seg) {
		seg = len - pos < mss_a ? len - pos : mss_a;
		if (g->o.loss_in_a && rnd(g) % 100 < g->o.loss_pct) {
			*ts += 2000;
			continue; /* a hole in the first copy: the late one must fill it */
		}
		err = emit_seg(g, 0, *ts, t, isn, dir, PKT_TCP_ACK | PKT_TCP_PSH,
			       base + (uint32_t)pos, ack, msg + pos, seg);
		if (err)
			return err;
		*ts += 2000;
	}
	for (pos = 0; pos < len; pos += seg) {
		seg = rnd_range(g, mss_b / 2 ? mss_b / 2 : 1, mss_b);
		if (rnd(g) % 100 < g->o.coalesce_pct)
			seg += rnd_range(g, 1, mss_b); /* two writes in one segment */
		if (seg > len - pos)
			seg = len - pos;
		if (!g->o.loss_in_a && rnd(g) % 100 < g->o.loss_pct) {
			t0 += 1500;
			continue; /* a hole: copy A must fill it */
		}
		err = emit_seg(g, 1, t0 + g->o.skew_us * 1000 + rnd_range(g, 0, 900), t, isn, dir,
			       PKT_TCP_ACK | PKT_TCP_PSH, base + (uint32_t)pos, ack, msg + pos,
			       seg);
		if (err)
			return err;
		t0 += 1500;
	}
	off[dir] += len;
	if (*ts < t0)
		*ts = t0;
	return 0;
}

/* Same control segment in both copies (copy B late by the skew). */
static int emit_both(struct gen *g, uint64_t *ts, const struct ecv_tuple *t, const uint32_t isn[2],
		     int dir, uint8_t flags, uint32_t seq, uint32_t ack)
{
	int err = emit_seg(g, 0, *ts, t, isn, dir, flags, seq, ack, NULL, 0);

	if (!err)
		err = emit_seg(g, 1, *ts + g->o.skew_us * 1000 + rnd_range(g, 0, 900), t, isn, dir,
			       flags, seq, ack, NULL, 0);
	*ts += 3000;
	return err;
}

static int emit_meta(struct gen *g, int copy, uint64_t ts, const struct ecv_tuple *t,
		     const uint32_t isn[2], enum meta_event ev, const uint64_t bytes[2])
{
	static const struct pkt_l2 l2 = { .src = { 0x02, 0xec, 0, 0, 0, 9 },
					  .dst = { 0x02, 0xec, 0, 0, 0, 8 } };
	struct meta_flow m = { .event = ev, .tuple = *t, .from_start = true, .pid = 4242 };
	int n;

	m.isn[0] = isn[0];
	m.isn[1] = isn[1];
	m.bytes[0] = bytes[0];
	m.bytes[1] = bytes[1];
	snprintf(m.node, sizeof(m.node), "node-%c", copy ? 'b' : 'a');
	snprintf(m.role, sizeof(m.role), "%s", copy ? "server" : "client");
	snprintf(m.comm, sizeof(m.comm), "%s", copy ? "nginx" : "curl");
	n = meta_build_frame(g->frame, sizeof(g->frame), &l2, &m);
	if (n < 0)
		return n;
	return add_pkt(g, copy, ts, g->frame, (size_t)n);
}

static int write_file(const char *dir, const char *name, const char *ext, const uint8_t *buf,
		      size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/expected/%s.%s", dir, name, ext);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	if (len && fwrite(buf, 1, len, f) != len) {
		fclose(f);
		return -EIO;
	}
	return fclose(f) ? -errno : 0;
}

static int gen_flow(struct gen *g, uint64_t i, uint64_t start_ts, FILE *list)
{
	uint8_t caddr[16], saddr[16], v4[4];
	uint8_t *exp[2] = { NULL, NULL }, *msg = NULL;
	size_t exp_len[2] = { 0, 0 }, exp_cap[2] = { 0, 0 };
	uint64_t off[2] = { 0, 0 }, ts = start_ts, k, n_ex;
	char name[128], a[TUPLE_ADDR_STRLEN], b[TUPLE_ADDR_STRLEN];
	struct ecv_tuple t, rt;
	uint32_t isn[2];
	int err = 0, dir;

	if (rnd(g) % 100 < g->o.ipv6_pct) {
		/* fd00:1::<i> -> fd00:200::<1..8> */
		memset(caddr, 0, 16);
		caddr[0] = 0xfd, caddr[3] = 1;
		caddr[12] = (uint8_t)(i >> 24), caddr[13] = (uint8_t)(i >> 16);
		caddr[14] = (uint8_t)(i >> 8), caddr[15] = (uint8_t)i;
		memset(saddr, 0, 16);
		saddr[0] = 0xfd, saddr[2] = 2;
		saddr[15] = (uint8_t)(1 + i % 8);
	} else {
		v4[0] = 10;
		v4[1] = (uint8_t)(1 + i / 65536);
		v4[2] = (uint8_t)(i / 256);
		v4[3] = (uint8_t)i;
		tuple_addr_from_v4(caddr, v4);
		v4[1] = 200;
		v4[2] = 0;
		v4[3] = (uint8_t)(1 + i % 8);
		tuple_addr_from_v4(saddr, v4);
	}
	tuple_init(&t, caddr, (uint16_t)(20000 + i % 40000), saddr, 443, IPPROTO_TCP);
	tuple_reverse(&rt, &t);
	isn[0] = isn_compute(&t);
	isn[1] = isn_compute(&rt);

	if (g->o.meta) {
		err = emit_meta(g, 0, ts, &t, isn, META_START, off);
		if (!err)
			err = emit_meta(g, 1, ts + g->o.skew_us * 1000, &t, isn, META_START, off);
		if (err)
			goto cleanup;
	}
	err = emit_both(g, &ts, &t, isn, 0, PKT_TCP_SYN, isn[0], 0);
	if (!err)
		err = emit_both(g, &ts, &t, isn, 1, PKT_TCP_SYN | PKT_TCP_ACK, isn[1], isn[0] + 1);
	if (!err)
		err = emit_both(g, &ts, &t, isn, 0, PKT_TCP_ACK, isn[0] + 1, isn[1] + 1);
	if (err)
		goto cleanup;
	n_ex = rnd_range(g, 1, g->o.exchanges);
	for (k = 0; k < 2 * n_ex; k++) {
		size_t len = rnd_range(g, g->o.min_size, g->o.max_size);

		dir = (int)(k & 1);
		msg = realloc(msg, len ? len : 1);
		if (!msg) {
			err = -ENOMEM;
			goto cleanup;
		}
		fill_http(g, msg, len, dir == 0, i * 100 + k);
		if (exp_len[dir] + len > exp_cap[dir]) {
			uint8_t *ne = realloc(exp[dir], exp_len[dir] + len + 65536);

			if (!ne) {
				err = -ENOMEM;
				goto cleanup;
			}
			exp[dir] = ne;
			exp_cap[dir] = exp_len[dir] + len + 65536;
		}
		memcpy(exp[dir] + exp_len[dir], msg, len);
		exp_len[dir] += len;
		err = emit_message(g, &ts, &t, isn, dir, off, msg, len);
		if (err)
			goto cleanup;
	}
	err = emit_both(g, &ts, &t, isn, 0, PKT_TCP_FIN | PKT_TCP_ACK,
			isn[0] + 1 + (uint32_t)off[0], isn[1] + 1 + (uint32_t)off[1]);
	if (!err)
		err = emit_both(g, &ts, &t, isn, 1, PKT_TCP_FIN | PKT_TCP_ACK,
				isn[1] + 1 + (uint32_t)off[1], isn[0] + 2 + (uint32_t)off[0]);
	if (!err && g->o.meta) {
		err = emit_meta(g, 0, ts, &t, isn, META_END, off);
		if (!err)
			err = emit_meta(g, 1, ts + g->o.skew_us * 1000, &t, isn, META_END, off);
	}
	if (err)
		goto cleanup;
	if (g->o.dir) {
		snprintf(name, sizeof(name), "%s_%u_%s_%u", tuple_addr_str(t.saddr, a), t.sport,
			 tuple_addr_str(t.daddr, b), t.dport);
		err = write_file(g->o.dir, name, "c2s", exp[0], exp_len[0]);
		if (!err)
			err = write_file(g->o.dir, name, "s2c", exp[1], exp_len[1]);
		if (!err && list)
			fprintf(list, "%s %zu %zu\n", name, exp_len[0], exp_len[1]);
	}
cleanup:
	free(exp[0]);
	free(exp[1]);
	free(msg);
	return err;
}

static int cmp_pkt(const void *x, const void *y)
{
	const struct gpkt *a = x, *b = y;

	if (a->ts != b->ts)
		return a->ts < b->ts ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

static void dump_one(struct gen *g, int copy, uint64_t ts, const uint8_t *frame, size_t len)
{
	static const struct pkt_l2 outer_l2 = { .src = { 0x02, 0xec, 0, 0, 1, 0 },
						.dst = { 0x02, 0xec, 0, 0, 1, 1 } };
	struct pcap_pkthdr h;
	const uint8_t *out = frame;
	size_t out_len = len;

	if (g->o.vxlan) {
		uint8_t src[16], dst[16], v4[4] = { 192, 168, 0, (uint8_t)(1 + copy) };
		struct ecv_tuple ot;
		struct pkt_info info;
		uint8_t inner[PKT_MAX_FRAME + VXLAN_HDR_LEN];
		int n;

		tuple_addr_from_v4(src, v4);
		v4[3] = 100;
		tuple_addr_from_v4(dst, v4);
		vxlan_encode(inner, (uint32_t)g->o.vni);
		memcpy(inner + VXLAN_HDR_LEN, frame, len);
		/* Outer source port from the inner flow hash, as the agent does. */
		if (pkt_parse(frame, len, &info) == 0)
			tuple_init(&ot, src, vxlan_src_port(tuple_hash(&info.tuple)), dst,
				   VXLAN_PORT, IPPROTO_UDP);
		else
			tuple_init(&ot, src, 49152, dst, VXLAN_PORT, IPPROTO_UDP);
		n = pkt_build(g->outer, sizeof(g->outer), &outer_l2, &ot, NULL, g->ip_id[copy]++,
			      inner, len + VXLAN_HDR_LEN);
		if (n < 0)
			return;
		out = g->outer;
		out_len = (size_t)n;
	}
	h.ts.tv_sec = (time_t)(ts / 1000000000ull);
	h.ts.tv_usec = (suseconds_t)(ts % 1000000000ull);
	h.caplen = h.len = (uint32_t)out_len;
	pcap_dump((u_char *)g->dump[copy], &h, out);
	g->written[copy]++;
}

static void flush_group(struct gen *g)
{
	size_t i;

	qsort(g->pkts, g->n, sizeof(*g->pkts), cmp_pkt);
	for (i = 0; i < g->n; i++) {
		dump_one(g, g->pkts[i].copy, g->pkts[i].ts, g->pkts[i].data, g->pkts[i].len);
		free(g->pkts[i].data);
	}
	g->n = 0;
}

/* Garbage in copy A: what a hostile or broken sender might put on the wire. */
static void dump_garbage(struct gen *g, uint64_t ts, uint64_t k)
{
	uint8_t buf[256];
	size_t len, i;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rnd(g);
	switch (k % 4) {
	case 0: /* too short for a VxLAN header */
		len = 5;
		break;
	case 1: /* I flag missing */
		buf[0] = 0;
		len = 64;
		break;
	case 2: /* valid VxLAN, inner Ethernet cut off */
		vxlan_encode(buf, (uint32_t)g->o.vni);
		len = VXLAN_HDR_LEN + 9;
		break;
	default: /* valid VxLAN, IPv4 with a lying IHL */
		vxlan_encode(buf, (uint32_t)g->o.vni);
		buf[VXLAN_HDR_LEN + 12] = 0x08;
		buf[VXLAN_HDR_LEN + 13] = 0x00;
		buf[VXLAN_HDR_LEN + 14] = 0x4f;
		len = VXLAN_HDR_LEN + 14 + 24;
		break;
	}
	if (!g->o.vxlan) {
		/* Inner-frame captures: a frame of unknown EtherType. */
		buf[12] = 0x12;
		buf[13] = 0x34;
		dump_one(g, 0, ts, buf, 60);
		return;
	}
	{
		static const struct pkt_l2 l2 = { .src = { 0x02, 0xec, 0, 0, 1, 0 },
						  .dst = { 0x02, 0xec, 0, 0, 1, 1 } };
		uint8_t src[16], dst[16], v4[4] = { 192, 168, 0, 1 };
		struct ecv_tuple ot;
		struct pcap_pkthdr h;
		int n;

		tuple_addr_from_v4(src, v4);
		v4[3] = 100;
		tuple_addr_from_v4(dst, v4);
		tuple_init(&ot, src, 50000, dst, VXLAN_PORT, IPPROTO_UDP);
		n = pkt_build(g->outer, sizeof(g->outer), &l2, &ot, NULL, 0, buf, len);
		if (n < 0)
			return;
		h.ts.tv_sec = (time_t)(ts / 1000000000ull);
		h.ts.tv_usec = (suseconds_t)(ts % 1000000000ull);
		h.caplen = h.len = (uint32_t)n;
		pcap_dump((u_char *)g->dump[0], &h, g->outer);
		g->written[0]++;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ecv-flowgen --dir DIR [OPTIONS]\n"
		"Writes DIR/a.pcap (client node copy), DIR/b.pcap (server node copy),\n"
		"DIR/expected/<flow>.c2s|.s2c (exact payload per direction), DIR/flows.txt.\n"
		"  --flows N          number of flows (default 100)\n"
		"  --seed N           PRNG seed (default 1)\n"
		"  --min-size N       smallest message (default 1)\n"
		"  --max-size N       largest message (default 20000)\n"
		"  --exchanges N      request/response pairs per flow, 1..N (default 3)\n"
		"  --mtu-a N          copy A inner MTU (default 1450)\n"
		"  --mtu-b N          copy B inner MTU (default 1000)\n"
		"  --coalesce PCT     copy B segments merged with the next write (default 20)\n"
		"  --loss PCT         copy B data segments lost: holes (default 0)\n"
		"  --loss-in-a        the holes are in copy A (the earlier one) instead\n"
		"  --skew DURATION    copy B later than copy A (default 50ms)\n"
		"  --garbage N        garbage datagrams mixed into copy A (default 0)\n"
		"  --ipv6 PCT         share of IPv6 flows (default 0)\n"
		"  --vxlan            write VxLAN datagrams (outer 192.168.0.1/.2 -> .100:4789)\n"
		"  --vni N            VNI with --vxlan (default 1)\n"
		"  --meta             add agent metadata frames (0x88B5) at flow start and end\n"
		"  --quiet            no summary line\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "flows", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "min-size", required_argument, NULL, 1 },
		{ "max-size", required_argument, NULL, 2 },
		{ "exchanges", required_argument, NULL, 3 },
		{ "mtu-a", required_argument, NULL, 4 },
		{ "mtu-b", required_argument, NULL, 5 },
		{ "loss", required_argument, NULL, 6 },
		{ "skew", required_argument, NULL, 7 },
		{ "garbage", required_argument, NULL, 8 },
		{ "vxlan", no_argument, NULL, 9 },
		{ "vni", required_argument, NULL, 10 },
		{ "meta", no_argument, NULL, 11 },
		{ "coalesce", required_argument, NULL, 12 },
		{ "ipv6", required_argument, NULL, 13 },
		{ "loss-in-a", no_argument, NULL, 14 },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct gen g;
	char path[1024];
	uint64_t i, k, v, ts0 = 1700000000ull * 1000000000ull;
	FILE *list = NULL;
	int opt, err = 0, c;

	log_set_ident("ecv-flowgen");
	g.o = (struct opts){ .flows = 100,
			     .seed = 1,
			     .min_size = 1,
			     .max_size = 20000,
			     .exchanges = 3,
			     .mtu_a = 1450,
			     .mtu_b = 1000,
			     .skew_us = 50000,
			     .vni = 1,
			     .coalesce_pct = 20 };
	while ((opt = getopt_long(argc, argv, "d:n:s:qh", lo, NULL)) != -1) {
		int bad = 0;

		switch (opt) {
		case 'd':
			g.o.dir = optarg;
			break;
		case 'n':
			bad = args_parse_u64(optarg, 1, 10000000, &g.o.flows);
			break;
		case 's':
			bad = args_parse_u64(optarg, 0, UINT64_MAX, &g.o.seed);
			break;
		case 1:
			bad = args_parse_size(optarg, 0, 1 << 24, &g.o.min_size);
			break;
		case 2:
			bad = args_parse_size(optarg, 0, 1 << 24, &g.o.max_size);
			break;
		case 3:
			bad = args_parse_u64(optarg, 1, 1000, &g.o.exchanges);
			break;
		case 4:
			bad = args_parse_u64(optarg, 100, 9000, &g.o.mtu_a);
			break;
		case 5:
			bad = args_parse_u64(optarg, 100, 9000, &g.o.mtu_b);
			break;
		case 6:
			bad = args_parse_u64(optarg, 0, 100, &g.o.loss_pct);
			break;
		case 7:
			bad = args_parse_duration_ms(optarg, 0, 3600000, &v);
			g.o.skew_us = v * 1000;
			break;
		case 8:
			bad = args_parse_u64(optarg, 0, 10000000, &g.o.garbage);
			break;
		case 9:
			g.o.vxlan = true;
			break;
		case 10:
			bad = args_parse_u64(optarg, 0, VXLAN_VNI_MAX, &g.o.vni);
			break;
		case 11:
			g.o.meta = true;
			break;
		case 12:
			bad = args_parse_u64(optarg, 0, 100, &g.o.coalesce_pct);
			break;
		case 13:
			bad = args_parse_u64(optarg, 0, 100, &g.o.ipv6_pct);
			break;
		case 14:
			g.o.loss_in_a = true;
			break;
		case 'q':
			g.o.quiet = true;
			break;
		case 'h':
		default:
			return cli_help_or_usage_error(opt, usage);
		}
		if (bad)
			return cli_invalid_value("ecv-flowgen", optarg, usage);
	}
	if (!g.o.dir || optind < argc || g.o.min_size > g.o.max_size)
		return cli_usage_error(usage);
	g.rng = g.o.seed * 0x9e3779b97f4a7c15ull + 1;
	snprintf(path, sizeof(path), "%s/expected", g.o.dir);
	if ((mkdir(g.o.dir, 0755) && errno != EEXIST) || (mkdir(path, 0755) && errno != EEXIST)) {
		log_err("failed to create %s: %s", path, strerror(errno));
		return 1;
	}
	g.dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 262144,
						      PCAP_TSTAMP_PRECISION_NANO);
	for (c = 0; c < 2; c++) {
		snprintf(path, sizeof(path), "%s/%c.pcap", g.o.dir, c ? 'b' : 'a');
		g.dump[c] = pcap_dump_open(g.dead, path);
		if (!g.dump[c]) {
			log_err("failed to open %s: %s", path, pcap_geterr(g.dead));
			err = -EIO;
			goto cleanup;
		}
	}
	snprintf(path, sizeof(path), "%s/flows.txt", g.o.dir);
	list = fopen(path, "w");
	if (!list) {
		err = -errno;
		goto cleanup;
	}
	for (i = 0, k = 0; i < g.o.flows && !err; i++) {
		/* Flows of a group overlap in time: a few microseconds apart. */
		err = gen_flow(&g, i, ts0 + (i % GROUP) * 7000, list);
		if ((i + 1) % GROUP == 0 || i + 1 == g.o.flows) {
			flush_group(&g);
			ts0 = g.max_ts + 1000000;
			/* Garbage between groups: mixed into the traffic, not after it. */
			for (; k < g.o.garbage * (i + 1) / g.o.flows; k++)
				dump_garbage(&g, ts0 + k * 1000, k);
			ts0 += g.o.garbage * 1000 + 1000000;
		}
	}
	if (err)
		log_err("failed to generate flows: %s", strerror(-err));
	else if (!g.o.quiet)
		fprintf(stderr,
			"ecv-flowgen: %llu flows, copy A %llu packets, copy B %llu packets\n",
			(unsigned long long)g.o.flows, (unsigned long long)g.written[0],
			(unsigned long long)g.written[1]);
cleanup:
	for (c = 0; c < 2; c++)
		if (g.dump[c])
			pcap_dump_close(g.dump[c]);
	if (list)
		fclose(list);
	if (g.dead)
		pcap_close(g.dead);
	free(g.pkts);
	return err ? 1 : 0;
}
