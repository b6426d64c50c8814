/* tests/unit/test_tvn_dedup.c - Check suite for tvn/dedup.c.
 *
 * Fixtures: every connection is synthesized here the way an agent does it (pkt_segment,
 * seq = ISN + 1 + offset, SYN/SYN-ACK/ACK, data as alternating request/response
 * messages, FINs), once per node copy with that copy's MTU, then the copies are merged
 * by timestamp and fed to the engine. The sink re-parses every emitted frame, checks its
 * checksums, and reassembles each direction by sequence number, counting how often each
 * byte, SYN and FIN was delivered: the tests assert "every byte exactly once, equal to
 * the original" plus the counters.
 *
 * A test reads as its scenario: run_setup() names the connection and what differs from
 * the default engine and node copies, run_gen*() makes the copies, the test loses or adds
 * frames, run_feed() (or run_both() for the copies as made) feeds them by time; then what
 * must have come out. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../tvn/dedup.h"
#include "check_run.h"
#include "isn.h"
#include "pkt.h"
#include "tuple.h"

#define SEC 1000000000ull
#define MS 1000000ull
#define MAX_CONNS 4

/* --- frame lists ---------------------------------------------------------- */

struct fr {
	uint8_t *b;
	size_t len;
	uint64_t ts;
	int src;
	int dir;
};

struct frl {
	struct fr *v;
	size_t n, cap;
};

static void frl_add(struct frl *l, const uint8_t *b, size_t len, uint64_t ts, int src, int dir)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		ck_assert_ptr_nonnull(l->v);
	}
	l->v[l->n].b = malloc(len);
	ck_assert_ptr_nonnull(l->v[l->n].b);
	memcpy(l->v[l->n].b, b, len);
	l->v[l->n].len = len;
	l->v[l->n].ts = ts;
	l->v[l->n].src = src;
	l->v[l->n].dir = dir;
	l->n++;
}

static void frl_free(struct frl *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].b);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void frl_remove(struct frl *l, size_t i)
{
	free(l->v[i].b);
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(l->v[0]));
	l->n--;
}

static int fr_cmp(const void *a, const void *b)
{
	const struct fr *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->src - y->src;
}

/* Moves every frame of src into dst, keeping dst sorted by time (then by source). */
static void frl_merge(struct frl *dst, struct frl *src)
{
	size_t i;

	for (i = 0; i < src->n; i++) {
		frl_add(dst, src->v[i].b, src->v[i].len, src->v[i].ts, src->v[i].src,
			src->v[i].dir);
	}
	frl_free(src);
	qsort(dst->v, dst->n, sizeof(dst->v[0]), fr_cmp);
}

/* --- connections and their synthesized copies ------------------------------ */

struct conn {
	struct ecv_tuple t[2]; /* [0] client -> server, [1] server -> client */
	uint32_t isn[2];
	uint8_t *data[2];
	size_t len[2];
};

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static void conn_init4(struct conn *c, const char *cli, uint16_t cport, const char *srv,
		       uint16_t sport, size_t c2s, size_t s2c, uint32_t seed)
{
	uint8_t a[16], b[16], fam;

	memset(c, 0, sizeof(*c));
	ck_assert_int_eq(tuple_addr_parse(cli, a, &fam), 0);
	ck_assert_int_eq(tuple_addr_parse(srv, b, &fam), 0);
	ck_assert_int_eq(tuple_init(&c->t[0], a, cport, b, sport, IPPROTO_TCP), 0);
	tuple_reverse(&c->t[1], &c->t[0]);
	c->isn[0] = isn_compute(&c->t[0]);
	c->isn[1] = isn_compute(&c->t[1]);
	c->len[0] = c2s;
	c->len[1] = s2c;
	c->data[0] = malloc(c2s + 1);
	c->data[1] = malloc(s2c + 1);
	fill_pattern(c->data[0], c2s, seed);
	fill_pattern(c->data[1], s2c, seed ^ 0x5a5a5a5a);
}

static void conn_free(struct conn *c)
{
	free(c->data[0]);
	free(c->data[1]);
}

/* How one node's copy of a connection is made. */
struct copy_opts {
	int src;	  /* index of the dedup_src it comes from */
	unsigned mtu;	  /* inner IP MTU: sets the segmentation */
	uint64_t t0;	  /* time of the first frame */
	uint64_t step;	  /* time between frames */
	bool handshake;	  /* SYN, SYN-ACK, ACK */
	bool fins;	  /* FIN from both sides, last ACK */
	size_t msg;	  /* bytes per application message (alternating directions) */
	size_t from[2];	  /* mid-stream: first offset per direction (0 = from the start) */
	uint8_t mac_last; /* distinguishes the node's MACs */
	uint8_t ttl;	  /* 0 = as built (64) */
	uint16_t vlan;	  /* 802.1Q tag on every frame, 0 = none */
	bool rst;	  /* end with a RST from the server instead of FINs */
};

struct gen_ctx {
	struct frl *out;
	uint64_t *ts;
	uint64_t step;
	int src, dir;
	uint8_t ttl;
};

static void set_ttl(uint8_t *b, size_t len, uint8_t ttl)
{
	struct pkt_info in;

	ck_assert_int_eq(pkt_parse(b, len, &in), 0);
	if (in.ethertype == 0x0800) {
		b[in.l3_off + 8] = ttl;
		b[in.l3_off + 10] = b[in.l3_off + 11] = 0;
		memcpy(b + in.l3_off + 10, (uint16_t[]){ pkt_csum(b + in.l3_off, 20) }, 2);
	} else {
		b[in.l3_off + 7] = ttl;
	}
}

static int gen_emit(void *ctx, const uint8_t *frame, size_t len)
{
	struct gen_ctx *g = ctx;

	frl_add(g->out, frame, len, *g->ts, g->src, g->dir);
	if (g->ttl)
		set_ttl(g->out->v[g->out->n - 1].b, len, g->ttl);
	*g->ts += g->step;
	return 0;
}

static void gen_seg(struct gen_ctx *g, const struct conn *c, const struct copy_opts *o, int dir,
		    uint32_t seq, uint32_t ack, uint8_t flags, const uint8_t *p, size_t n,
		    uint16_t *ip_id)
{
	struct pkt_l2 l2 = { .src = { 2, 0, 0, 0, dir, o->mac_last },
			     .dst = { 2, 0, 0, 0, !dir, o->mac_last },
			     .vlan = o->vlan };
	struct pkt_tcp tcp = { .seq = seq, .ack = ack, .flags = flags };

	g->dir = dir;
	ck_assert_int_eq(pkt_segment(&l2, &c->t[dir], &tcp, ip_id, o->mtu, p, n, gen_emit, g), 0);
}

/* Appends one node's copy of c to out. */
static void gen_copy(struct frl *out, const struct conn *c, const struct copy_opts *o)
{
	uint64_t ts = o->t0;
	struct gen_ctx g = { .out = out, .ts = &ts, .step = o->step, .src = o->src, .ttl = o->ttl };
	size_t off[2] = { o->from[0], o->from[1] };
	uint16_t ip_id = (uint16_t)(o->src * 1000 + 1);
	size_t msg = o->msg ? o->msg : 3000;
	int dir = 0;

#define SEQ(d) (c->isn[d] + 1 + (uint32_t)off[d])
	if (o->handshake) {
		/* Just before the first byte: a mid-stream copy's handshake is synthesized
		 * where its data starts, as the agent does. */
		gen_seg(&g, c, o, 0, SEQ(0) - 1, 0, PKT_TCP_SYN, NULL, 0, &ip_id);
		gen_seg(&g, c, o, 1, SEQ(1) - 1, SEQ(0), PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0,
			&ip_id);
		gen_seg(&g, c, o, 0, SEQ(0), SEQ(1), PKT_TCP_ACK, NULL, 0, &ip_id);
	}
	while (off[0] < c->len[0] || off[1] < c->len[1]) {
		size_t n = c->len[dir] - off[dir] < msg ? c->len[dir] - off[dir] : msg;

		if (n) {
			gen_seg(&g, c, o, dir, SEQ(dir), SEQ(!dir), PKT_TCP_ACK | PKT_TCP_PSH,
				c->data[dir] + off[dir], n, &ip_id);
			off[dir] += n;
		}
		dir = !dir;
	}
	if (o->rst) {
		gen_seg(&g, c, o, 1, SEQ(1), SEQ(0), PKT_TCP_RST | PKT_TCP_ACK, NULL, 0, &ip_id);
	} else if (o->fins) {
		gen_seg(&g, c, o, 0, SEQ(0), SEQ(1), PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0, &ip_id);
		gen_seg(&g, c, o, 1, SEQ(1), SEQ(0) + 1, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0,
			&ip_id);
		gen_seg(&g, c, o, 0, SEQ(0) + 1, SEQ(1) + 1, PKT_TCP_ACK, NULL, 0, &ip_id);
	}
#undef SEQ
}

/* --- the sink: what the tools would receive ------------------------------- */

struct sink {
	const struct conn *c[MAX_CONNS];
	unsigned nconns;
	uint8_t *got[MAX_CONNS][2];
	uint8_t *cnt[MAX_CONNS][2];
	unsigned syn[MAX_CONNS][2], fin[MAX_CONNS][2];
	size_t frames, bad_csum, other, out_of_range, rst, vlan_mismatch, fin_early;
	uint16_t want_vlan;
	size_t from_src[4];
	struct dedup_src srcs[4];
	/* end() reports */
	struct dedup_flow_info ended[8];
	unsigned nended;
	struct frl *log; /* when set, every emitted frame in order, with its timestamp */
};

static void sink_add(struct sink *s, const struct conn *c)
{
	unsigned i = s->nconns++, d;

	ck_assert_uint_le(s->nconns, MAX_CONNS);
	s->c[i] = c;
	for (d = 0; d < 2; d++) {
		s->got[i][d] = calloc(1, c->len[d] + 1);
		s->cnt[i][d] = calloc(1, c->len[d] + 1);
	}
}

static void sink_reset(struct sink *s)
{
	unsigned i, d;

	for (i = 0; i < s->nconns; i++) {
		for (d = 0; d < 2; d++) {
			free(s->got[i][d]);
			free(s->cnt[i][d]);
		}
	}
	s->nconns = 0;
	memset(s->syn, 0, sizeof(s->syn));
	memset(s->fin, 0, sizeof(s->fin));
	s->frames = s->bad_csum = s->other = s->out_of_range = 0;
	memset(s->from_src, 0, sizeof(s->from_src));
}

static void sink_emit(void *ctx, const uint8_t *frame, size_t len, uint64_t ts,
		      const struct dedup_src *src)
{
	struct sink *s = ctx;
	struct pkt_info in;
	unsigned i, d, k;

	s->frames++;
	if (s->log)
		frl_add(s->log, frame, len, ts, 0, 0);
	for (k = 0; k < 4; k++)
		if (!memcmp(src, &s->srcs[k], sizeof(*src)))
			s->from_src[k]++;
	if (pkt_parse(frame, len, &in) != 0) {
		s->other++;
		return;
	}
	if (!pkt_checksums_ok(frame, &in))
		s->bad_csum++;
	/* Rebuilt frames keep the original L2: the VLAN and MACs naming the node. */
	if (in.vlan != s->want_vlan || frame[0] != 2 || frame[6] != 2)
		s->vlan_mismatch++;
	if (in.tcp_flags & PKT_TCP_RST)
		s->rst++;
	for (i = 0; i < s->nconns; i++) {
		for (d = 0; d < 2; d++) {
			const struct conn *c = s->c[i];
			uint32_t syn = !!(in.tcp_flags & PKT_TCP_SYN), off;
			size_t j;

			if (!tuple_equal(&in.tuple, &c->t[d]))
				continue;
			s->syn[i][d] += syn;
			off = in.seq + syn - c->isn[d] - 1;
			for (j = 0; j < in.payload_len; j++) {
				if ((size_t)off + j >= c->len[d]) {
					s->out_of_range++;
					break;
				}
				s->got[i][d][off + j] = in.payload[j];
				s->cnt[i][d][off + j]++;
			}
			if (in.tcp_flags & PKT_TCP_FIN) {
				s->fin[i][d]++;
				/* A FIN anywhere but after the last byte cuts the stream short. */
				if ((size_t)off + in.payload_len != c->len[d])
					s->fin_early++;
			}
			return;
		}
	}
	s->other++;
}

static void sink_end(void *ctx, const struct dedup_flow_info *f)
{
	struct sink *s = ctx;

	if (s->nended < 8)
		s->ended[s->nended] = *f;
	s->nended++;
}

/* Every byte of connection i delivered exactly once and equal to the original; SYN and
 * FIN once per direction when expect_ctl. */
static void sink_assert_exact(const struct sink *s, unsigned i, bool expect_ctl)
{
	unsigned d;
	size_t j;

	ck_assert_uint_eq(s->bad_csum, 0);
	ck_assert_uint_eq(s->out_of_range, 0);
	ck_assert_uint_eq(s->vlan_mismatch, 0);
	ck_assert_uint_eq(s->fin_early, 0);
	for (d = 0; d < 2; d++) {
		const struct conn *c = s->c[i];

		for (j = 0; j < c->len[d]; j++) {
			if (s->cnt[i][d][j] != 1)
				ck_abort_msg("conn %u dir %u byte %zu delivered %u times", i, d, j,
					     s->cnt[i][d][j]);
		}
		ck_assert_mem_eq(s->got[i][d], c->data[d], c->len[d]);
		if (expect_ctl) {
			ck_assert_uint_eq(s->syn[i][d], 1);
			ck_assert_uint_eq(s->fin[i][d], 1);
		}
	}
}

/* --- engine harness ------------------------------------------------------- */

static struct dedup_cfg default_cfg(enum dedup_mode mode)
{
	struct dedup_cfg cfg = {
		.mode = mode,
		.max_flows = 1024,
		.max_flows_per_source = 0,
		.flow_timeout_ns = 30 * SEC,
		.skew_ns = 2 * SEC,
		.window_ns = 2 * SEC,
	};
	return cfg;
}

static void sink_init_srcs(struct sink *s)
{
	unsigned k;

	memset(s, 0, sizeof(*s));
	for (k = 0; k < 4; k++) {
		s->srcs[k].addr[10] = 0xff;
		s->srcs[k].addr[11] = 0xff;
		s->srcs[k].addr[12] = 192;
		s->srcs[k].addr[13] = 0;
		s->srcs[k].addr[14] = 2;
		s->srcs[k].addr[15] = (uint8_t)(10 + k);
		s->srcs[k].vni = 1;
	}
}

/* Frame f of a list, parsed (every frame the fixtures make parses). */
static void fr_parse(const struct fr *f, struct pkt_info *in)
{
	ck_assert_int_eq(pkt_parse(f->b, f->len, in), 0);
}

/* Hands frame f to the engine as its source sent it. */
static void input_frame(struct dedup *d, struct sink *s, const struct fr *f)
{
	struct pkt_info in;

	fr_parse(f, &in);
	dedup_input(d, f->b, f->len, &in, &s->srcs[f->src], f->ts);
}

/* Feeds frames [from, to) of l in order, without expiry. */
static void feed_range(struct dedup *d, struct sink *s, const struct frl *l, size_t from, size_t to)
{
	for (; from < to; from++)
		input_frame(d, s, &l->v[from]);
}

/* Feeds frames in order; with expire, calls dedup_expire(ts) before each, as the tvn
 * loop does. */
static void feed(struct dedup *d, struct sink *s, const struct frl *l, bool expire)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (expire)
			dedup_expire(d, l->v[i].ts);
		input_frame(d, s, &l->v[i]);
	}
}

static size_t count_src(const struct frl *l, int src)
{
	size_t i, n = 0;

	for (i = 0; i < l->n; i++)
		n += l->v[i].src == src;
	return n;
}

/* Keeps the first n frames of l: the node's agent stopped there. */
static void frl_truncate(struct frl *l, size_t n)
{
	while (l->n > n)
		frl_remove(l, l->n - 1);
}

static struct copy_opts copy_a(void)
{
	struct copy_opts o = { .src = 0,
			       .mtu = 1450,
			       .t0 = 1 * SEC,
			       .step = 10000,
			       .handshake = true,
			       .fins = true,
			       .mac_last = 0xa };
	return o;
}

static struct copy_opts copy_b(void)
{
	struct copy_opts o = { .src = 1,
			       .mtu = 1450,
			       .t0 = 1 * SEC + 5000,
			       .step = 10000,
			       .handshake = true,
			       .fins = true,
			       .mac_last = 0xb };
	return o;
}

/* What differs in one test's set-up from default_cfg(), copy_a(), copy_b() and the IPv4
 * addresses 10.0.0.1 -> 10.0.0.2 (zero fields, or no setup at all, keep those). */
struct setup {
	enum dedup_mode mode;
	const char *cli, *srv; /* other addresses */
	/* cfg: skew_ns, window_ns, max_flows, max_flows_per_source */
	uint64_t skew, window, max_flows, per_source;
	unsigned mtu_a, mtu_b;
	size_t msg;	/* both copies' message size */
	int64_t b_late; /* b.t0 - a.t0 */
	bool log;	/* keep every emitted frame in out */
};

/* A fresh engine, its sink and the connection c, and the node copies a and b of it that
 * a test sends (after adjusting them). */
struct run {
	struct dedup_cfg cfg;
	struct copy_opts a, b;
	struct sink s;
	struct dedup *d;
	struct dedup_stats st;
	struct conn c;
	struct conn cb;	   /* c as copy B's agent saw it, when run_flip_b() made it differ */
	struct frl la, lb; /* copies of c being prepared (frames lost, added) before run_merge() */
	struct frl all;	   /* what is fed, merged by time */
	struct frl out;	   /* with setup.log: every emitted frame in order */
};

/* A fresh engine and sink for the connection cli:cport -> srv:443 with c2s and s2c bytes
 * of seed's pattern (no cport: none, the test makes its own), set up as su says. */
static void run_setup(struct run *r, uint16_t cport, size_t c2s, size_t s2c, uint32_t seed,
		      const struct setup *su)
{
	static const struct setup none;

	if (!su)
		su = &none;
	memset(r, 0, sizeof(*r));
	r->cfg = default_cfg(su->mode);
	if (su->skew)
		r->cfg.skew_ns = su->skew;
	if (su->window)
		r->cfg.window_ns = su->window;
	if (su->max_flows)
		r->cfg.max_flows = su->max_flows;
	r->cfg.max_flows_per_source = su->per_source;
	r->a = copy_a();
	r->b = copy_b();
	if (su->mtu_a)
		r->a.mtu = su->mtu_a;
	if (su->mtu_b)
		r->b.mtu = su->mtu_b;
	if (su->msg)
		r->a.msg = r->b.msg = su->msg;
	if (su->b_late)
		r->b.t0 = (uint64_t)((int64_t)r->a.t0 + su->b_late);
	sink_init_srcs(&r->s);
	if (su->log)
		r->s.log = &r->out;
	r->d = dedup_new(&r->cfg, sink_emit, sink_end, &r->s);
	ck_assert_ptr_nonnull(r->d);
	if (cport) {
		conn_init4(&r->c, su->cli ? su->cli : "10.0.0.1", cport,
			   su->srv ? su->srv : "10.0.0.2", 443, c2s, s2c, seed);
		sink_add(&r->s, &r->c);
	}
}

/* n more connections 10.0.0.1:cport+i -> 10.0.0.2:443, len bytes each way of seed+i's
 * pattern, that the sink follows too. */
static void run_conns(struct run *r, struct conn *c, unsigned n, uint16_t cport, size_t len,
		      uint32_t seed)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		conn_init4(&c[i], "10.0.0.1", (uint16_t)(cport + i), "10.0.0.2", 443, len, len,
			   seed + i);
		sink_add(&r->s, &c[i]);
	}
}

/* Copy B's agent read byte `at` of the client's data differently (past the end: the same
 * bytes). */
static void run_flip_b(struct run *r, size_t at)
{
	r->cb = r->c;
	r->cb.data[0] = malloc(r->c.len[0] + 1);
	ck_assert_ptr_nonnull(r->cb.data[0]);
	memcpy(r->cb.data[0], r->c.data[0], r->c.len[0]);
	if (at < r->c.len[0])
		r->cb.data[0][at] ^= 0xff;
}

static void run_gen_a(struct run *r)
{
	gen_copy(&r->la, &r->c, &r->a);
}

static void run_gen_b(struct run *r)
{
	gen_copy(&r->lb, r->cb.data[0] ? &r->cb : &r->c, &r->b);
}

static void run_gen(struct run *r)
{
	run_gen_a(r);
	run_gen_b(r);
}

/* Copy o of connection c, merged by time into what is fed. */
static void run_copy(struct run *r, const struct conn *c, const struct copy_opts *o)
{
	struct frl l = { 0 };

	gen_copy(&l, c, o);
	frl_merge(&r->all, &l);
}

/* Both copies of connection c, merged into what is fed. */
static void run_copies(struct run *r, const struct conn *c)
{
	run_copy(r, c, &r->a);
	run_copy(r, c, &r->b);
}

static void run_finish(struct run *r)
{
	dedup_get_stats(r->d, &r->st);
}

/* Moves the prepared copies (A's, then B's) into what is fed, merged by time. */
static void run_merge(struct run *r)
{
	if (r->la.n)
		frl_merge(&r->all, &r->la);
	if (r->lb.n)
		frl_merge(&r->all, &r->lb);
}

/* Feeds the prepared copies and everything merged before them, in time order, and takes
 * the stats. */
static void run_feed(struct run *r, bool expire)
{
	run_merge(r);
	feed(r->d, &r->s, &r->all, expire);
	run_finish(r);
}

/* Copies a and b of the connection, merged by time and fed (expiring as tvn does). */
static void run_both(struct run *r)
{
	run_gen(r);
	run_feed(r, true);
}

static void run_flush(struct run *r)
{
	dedup_flush(r->d);
	run_finish(r);
}

static uint64_t run_last_ts(const struct run *r)
{
	return r->all.v[r->all.n - 1].ts;
}

/* What a connection held back for skew after its last frame (FINs waiting for the other
 * copy's) goes out; takes the stats. */
static void run_expire_past_skew(struct run *r)
{
	dedup_expire(r->d, run_last_ts(r) + r->cfg.skew_ns + 1);
	run_finish(r);
}

static void run_free(struct run *r)
{
	dedup_free(r->d);
	frl_free(&r->all);
	frl_free(&r->la);
	frl_free(&r->lb);
	frl_free(&r->out);
	sink_reset(&r->s);
	free(r->cb.data[0]);
}

static void run_end(struct run *r)
{
	run_free(r);
	conn_free(&r->c);
}

/* run_end() for a run that also followed the n connections of run_conns(). */
static void run_end_conns(struct run *r, struct conn *c, unsigned n)
{
	unsigned i;

	run_end(r);
	for (i = 0; i < n; i++)
		conn_free(&c[i]);
}

/* The connection ends at `at`: still in the table 1 ns before, ended 1 ns after. */
static void assert_ends_at(struct run *r, uint64_t at)
{
	dedup_expire(r->d, at - 1);
	ck_assert_uint_eq(r->s.nended, 0);
	dedup_expire(r->d, at + 1);
	ck_assert_uint_eq(r->s.nended, 1);
}

/* The connection left the table by expiry. */
static void assert_expired(struct run *r)
{
	dedup_get_stats(r->d, &r->st);
	ck_assert_uint_eq(r->st.flows_expired, 1);
	ck_assert_uint_eq(r->st.flows_active, 0);
}

static void assert_fins_once(const struct sink *s)
{
	ck_assert_uint_eq(s->fin[0][0], 1);
	ck_assert_uint_eq(s->fin[0][1], 1);
}

/* Announces the connection at the start of a copy: the agent's start record. */
static void meta_start(struct meta_flow *m, const struct ecv_tuple *t)
{
	memset(m, 0, sizeof(*m));
	m->event = META_START;
	m->tuple = *t;
}

/* Copy A's agent restarted: it announces the flow again as mid-stream and counts offsets
 * from its restart, `at` bytes into each direction. c2 is the connection as it sees it
 * (ISNs `at` lower), a2 its copy (the caller sets when it starts). */
static void restarted_copy(const struct run *r, size_t at, struct conn *c2, struct copy_opts *a2)
{
	*c2 = r->c;
	c2->isn[0] -= (uint32_t)at;
	c2->isn[1] -= (uint32_t)at;
	*a2 = r->a;
	a2->handshake = false;
	a2->from[0] = a2->from[1] = at;
}

/* Index of the first frame of l at or after ts. */
static size_t frl_first_at(const struct frl *l, uint64_t ts)
{
	size_t i;

	for (i = 0; i < l->n && l->v[i].ts < ts; i++)
		;
	return i;
}

/* --- tests: bytes mode ---------------------------------------------------- */

START_TEST(test_identical_copies)
{
	struct run r;

	run_setup(&r, 40000, 20000, 50000, 1, NULL);
	run_both(&r);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.rx_packets, r.all.n);
	ck_assert_uint_eq(r.st.emitted_packets, count_src(&r.all, 0));
	ck_assert_uint_eq(r.st.dropped_packets, count_src(&r.all, 1));
	ck_assert_uint_eq(r.st.trimmed_packets, 0);
	ck_assert_uint_eq(r.st.dup_bytes, 70000);
	ck_assert_uint_eq(r.st.overlap_conflicts, 0);
	/* Everything from A, except the FINs: A's wait for B's to confirm the end of the
	 * connection (an agent shutting down also sends FINs), and B's then go out. */
	ck_assert_uint_eq(r.s.from_src[0], count_src(&r.all, 0) - 2);
	ck_assert_uint_eq(r.s.from_src[1], 2);
	ck_assert_uint_eq(r.st.flows_active, 1);
	ck_assert_uint_eq(r.st.flows_total, 1);
	run_end(&r);
}
END_TEST

/* MSS 1000 vs 1400 and an odd 537: the normal case, not an edge case. The copies drift
 * against each other: B leads at first, then A overtakes. */
static void segmentation_case(unsigned mtu_a, unsigned mtu_b, size_t msg_a, size_t msg_b,
			      uint16_t vlan)
{
	struct run r;

	run_setup(&r, 40001, 31111, 77777, 2,
		  &(struct setup){ .mtu_a = mtu_a, .mtu_b = mtu_b, .b_late = -20000 });
	r.a.vlan = r.b.vlan = r.s.want_vlan = vlan;
	r.a.msg = msg_a;
	r.b.msg = msg_b;
	r.b.step = 13000;
	r.a.step = (uint64_t)(mtu_a - 40) * r.b.step * 5 / (6 * (mtu_b - 40));
	run_both(&r);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_gt(r.st.trimmed_packets, 0);
	ck_assert_uint_eq(r.st.emitted_packets, r.s.frames);
	ck_assert_uint_eq(r.st.dup_bytes, 31111 + 77777);
	ck_assert_uint_eq(r.st.overlap_conflicts, 0);
	/* Each input frame is either dropped or produces at least one output frame. */
	ck_assert_uint_le(r.st.dropped_packets + r.st.trimmed_packets, r.all.n);
	run_end(&r);
}

START_TEST(test_different_segmentation)
{
	segmentation_case(1040, 1440, 3000, 3000, 0);
}
END_TEST

START_TEST(test_odd_segmentation)
{
	segmentation_case(577, 1440, 2500, 7000, 0);
}
END_TEST

/* Trimmed frames keep the 802.1Q tag and MACs of the frame they came from. */
START_TEST(test_vlan_segmentation)
{
	segmentation_case(1040, 1440, 3000, 3000, 42);
}
END_TEST

/* B 3 s late, skew configured for it (4 s). */
START_TEST(test_late_copy_3s)
{
	struct run r;

	run_setup(&r, 40002, 10000, 30000, 3,
		  &(struct setup){ .skew = 4 * SEC, .mtu_a = 1040, .b_late = 3 * SEC });
	run_both(&r);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.flows_total, 1);
	ck_assert_uint_eq(r.st.emitted_packets, count_src(&r.all, 0));
	ck_assert_uint_eq(r.st.dup_bytes, 40000);
	/* Only B's FINs: they confirm A's held ones. */
	ck_assert_uint_eq(r.s.from_src[1], 2);
	/* The flow is closed and retained for skew after the late copy's last frame. */
	assert_ends_at(&r, run_last_ts(&r) + r.cfg.skew_ns);
	assert_expired(&r);
	run_end(&r);
}
END_TEST

/* Default skew (2 s): a copy 1.5 s late after the first copy closed is still matched. */
START_TEST(test_closed_flow_retained_for_skew)
{
	struct run r;

	run_setup(&r, 40003, 5000, 5000, 4, &(struct setup){ .b_late = 1500 * MS });
	run_both(&r);
	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.flows_total, 1);
	run_end(&r);
}
END_TEST

START_TEST(test_gaps_filled_by_other_copy)
{
	struct run r;
	size_t i, n0, lost = 0;

	run_setup(&r, 40004, 40000, 60000, 5, &(struct setup){ .mtu_a = 1040, .b_late = 1 * SEC });
	run_gen(&r);
	/* Copy A loses its SYN, frames 10..14, every 7th later frame and its last FIN. */
	n0 = r.la.n;
	for (i = n0; i-- > 0;) {
		if (i == 0 || (i >= 10 && i < 15) || (i > 20 && i % 7 == 0) || i == n0 - 2) {
			lost += r.la.v[i].len > 70;
			frl_remove(&r.la, i);
		}
	}
	ck_assert_uint_gt(lost, 5);
	run_feed(&r, true);
	/* B's server FIN has no confirmation from A (A lost it): out after skew. */
	ck_assert_uint_eq(r.s.fin[0][1], 0);
	run_expire_past_skew(&r);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_gt(r.s.from_src[1], lost);
	ck_assert_uint_eq(r.st.holes_abandoned, 0);
	run_end(&r);
}
END_TEST

/* More holes than the inline array holds: the spill path. */
START_TEST(test_many_holes)
{
	struct run r;
	size_t i;

	run_setup(&r, 40005, 40000, 100, 6,
		  &(struct setup){ .msg = 100000, .mtu_a = 1040, .b_late = 1 * SEC });
	run_gen(&r);
	/* 20 holes in copy A's client data (frames 3.. are 1000-byte segments). */
	for (i = 43; i >= 4; i -= 2)
		frl_remove(&r.la, i);
	run_feed(&r, true);
	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.holes_abandoned, 0);
	run_end(&r);
}
END_TEST

/* A single copy, where nothing is a duplicate: the run delivered exactly what it was fed
 * (every frame, and every byte, SYN and FIN of the connection as often as the input had
 * it), as a sink fed the input itself counts it. */
static void run_assert_as_input(const struct run *r)
{
	struct sink ref;
	unsigned d;
	size_t i;

	sink_init_srcs(&ref);
	sink_add(&ref, &r->c);
	for (i = 0; i < r->all.n; i++)
		sink_emit(&ref, r->all.v[i].b, r->all.v[i].len, r->all.v[i].ts,
			  &ref.srcs[r->all.v[i].src]);
	ck_assert_uint_eq(r->st.emitted_packets, r->all.n);
	ck_assert_uint_eq(r->st.dropped_packets, 0);
	ck_assert_uint_eq(r->st.trimmed_packets, 0);
	ck_assert_uint_eq(r->s.frames, ref.frames);
	ck_assert_uint_eq(r->s.bad_csum, 0);
	ck_assert_uint_eq(r->s.out_of_range, 0);
	ck_assert_uint_eq(r->s.other, 0);
	for (d = 0; d < 2; d++) {
		ck_assert_mem_eq(r->s.cnt[0][d], ref.cnt[0][d], r->c.len[d]);
		ck_assert_mem_eq(r->s.got[0][d], ref.got[0][d], r->c.len[d]);
		ck_assert_uint_eq(r->s.syn[0][d], ref.syn[0][d]);
		ck_assert_uint_eq(r->s.fin[0][d], ref.fin[0][d]);
	}
	sink_reset(&ref);
}

/* Beyond the hole bound the lowest holes are given up and counted, never silently; a
 * single copy still goes out whole: every frame it brought, once. */
START_TEST(test_too_many_holes_counted)
{
	struct run r;
	size_t i, holes = 0;

	/* 60-byte segments: more holes than MAX_RANGES (255) in 36 kB; 3000-byte messages:
	 * the server's reply is among the frames lost too. */
	run_setup(&r, 40006, 300000, 10, 7, &(struct setup){ .mtu_a = 100 });
	run_gen_a(&r);
	for (i = 603; i >= 4; i -= 2) {
		holes += r.la.v[i].dir == 0;
		frl_remove(&r.la, i);
	}
	ck_assert_uint_eq(holes, 299);
	run_feed(&r, true);
	run_flush(&r); /* a young one-copy flow's FINs wait for a copy that never comes */
	/* The SYN and the data before the first hole make one range: 254 holes fit. */
	ck_assert_uint_eq(r.st.holes_abandoned, holes - (255 - 1));
	run_assert_as_input(&r);
	assert_fins_once(&r.s);
	run_end(&r);
}
END_TEST

/* A single copy lost the server's only data segment: the client's last ACK (of the
 * server's FIN, past that hole) waits for the held FIN and goes out after it, whole,
 * instead of being cut below the hole and dropped as a duplicate ACK. */
START_TEST(test_last_ack_past_hole_kept)
{
	struct pkt_info fin, last;
	struct run r;
	size_t i;

	run_setup(&r, 40042, 6000, 10, 61, &(struct setup){ .log = true });
	run_gen_a(&r);
	for (i = 0; i < r.la.n && !(r.la.v[i].dir == 1 && r.la.v[i].len > 60); i++)
		;
	ck_assert_uint_lt(i, r.la.n);
	frl_remove(&r.la, i);
	run_feed(&r, true);
	run_flush(&r);
	run_assert_as_input(&r);
	/* The server's FIN, then the client's ACK of it with its ack as sent. */
	ck_assert_uint_eq(r.out.n, r.all.n);
	fr_parse(&r.out.v[r.out.n - 2], &fin);
	fr_parse(&r.out.v[r.out.n - 1], &last);
	ck_assert(tuple_equal(&fin.tuple, &r.c.t[1]));
	ck_assert(fin.tcp_flags & PKT_TCP_FIN);
	ck_assert(tuple_equal(&last.tuple, &r.c.t[0]));
	ck_assert_uint_eq(last.tcp_flags, PKT_TCP_ACK);
	ck_assert_uint_eq(last.ack, fin.seq + 1);
	run_end(&r);
}
END_TEST

/* Offset of the first payload byte of frame i of copy l in direction dir of c. */
static size_t frame_offset(const struct frl *l, size_t i, const struct conn *c, int *dir, size_t *n)
{
	struct pkt_info in;

	fr_parse(&l->v[i], &in);
	*dir = tuple_equal(&in.tuple, &c->t[0]) ? 0 : 1;
	*n = in.payload_len;
	return in.seq - c->isn[*dir] - 1;
}

/* Bytes [from, to) of direction dir delivered exactly `times` times each. */
static void assert_delivered(const struct sink *s, int dir, size_t from, size_t to, unsigned times)
{
	size_t j;

	for (j = from; j < to; j++)
		if (s->cnt[0][dir][j] != times)
			ck_abort_msg("dir %d byte %zu delivered %u times, not %u", dir, j,
				     s->cnt[0][dir][j], times);
}

/* Client bytes [off, off + n) never delivered, every other byte of both directions once. */
static void assert_hole_only(const struct run *r, size_t off, size_t n)
{
	assert_delivered(&r->s, 0, 0, off, 1);
	assert_delivered(&r->s, 0, off, off + n, 0);
	assert_delivered(&r->s, 0, off + n, r->c.len[0], 1);
	assert_delivered(&r->s, 1, 0, r->c.len[1], 1);
}

/* Both copies lost the same segment (identical segmentation, B 50 ms late): A's data
 * past the hole waits for B only until B's data runs past the hole too, then goes out,
 * long before skew; the hole stays a hole and everything else arrives once. */
START_TEST(test_hole_in_both_copies)
{
	size_t off, n, k = 20;
	struct run r;
	int dir;

	run_setup(&r, 40043, 30000, 1000, 62,
		  &(struct setup){ .mtu_a = 1040, .mtu_b = 1040, .b_late = 50 * MS });
	run_gen(&r);
	off = frame_offset(&r.la, k, &r.c, &dir, &n);
	ck_assert_int_eq(dir, 0);
	ck_assert_uint_eq(n, 1000);
	frl_remove(&r.la, k);
	frl_remove(&r.lb, k);
	run_feed(&r, true);
	/* Before any expiry past skew: out once B passed the hole. */
	ck_assert_uint_lt(run_last_ts(&r), r.a.t0 + r.cfg.skew_ns);
	assert_hole_only(&r, off, n);
	run_flush(&r);
	assert_fins_once(&r.s);
	ck_assert_uint_eq(r.s.bad_csum, 0);
	run_end(&r);
}
END_TEST

/* The ring keeps the last 64 KiB a direction emitted, wherever the flow's sequence
 * numbers start: a late copy that disagrees in those bytes is a conflict (once), one that
 * disagrees only in older bytes cannot be checked, and agreeing bytes never count. */
static uint64_t late_copy_conflicts(size_t flip_at)
{
	struct run r;
	uint64_t n;

	/* A has emitted all 200000 bytes when B comes */
	run_setup(&r, 40048, 200000, 3000, 67, &(struct setup){ .b_late = 100 * MS });
	run_flip_b(&r, flip_at);
	run_gen(&r);
	run_feed(&r, true);
	run_flush(&r);
	sink_assert_exact(&r.s, 0, true);
	n = r.st.overlap_conflicts;
	run_end(&r);
	return n;
}

START_TEST(test_conflict_in_ring_window)
{
	ck_assert_uint_eq(late_copy_conflicts((size_t)-1), 0);
	ck_assert_uint_eq(late_copy_conflicts(150000), 1);
	ck_assert_uint_eq(late_copy_conflicts(199999), 1);
	ck_assert_uint_eq(late_copy_conflicts(200000 - 65536 + 100), 1);
	ck_assert_uint_eq(late_copy_conflicts(100000), 0); /* older than the ring */
}
END_TEST

/* B (1500-byte segments, 100 ms late: A brings every byte it has first) fills a hole
 * in A (1000-byte segments): A loses its client data segment at an offset that is `at`
 * modulo 3000 (0: B's filler starts with the hole; 2000: 500 bytes before it), and B's
 * agent read the byte at that offset + flip differently. Fed and flushed. */
static void filler_conflict_run(struct run *r, uint16_t cport, uint32_t seed, size_t at, long flip)
{
	size_t off = 0, n = 0, k;
	int dir = 1;

	run_setup(r, cport, 30000, 1000, seed,
		  &(struct setup){ .mtu_a = 1040, .mtu_b = 1540, .b_late = 100 * MS });
	run_gen_a(r);
	for (k = 5; k < r->la.n; k++) {
		off = frame_offset(&r->la, k, &r->c, &dir, &n);
		if (dir == 0 && n == 1000 && off % 3000 == at && off + 3000 < r->c.len[0])
			break;
	}
	ck_assert_uint_lt(k, r->la.n);
	run_flip_b(r, (size_t)((long)off + flip));
	run_gen_b(r);
	frl_remove(&r->la, k);
	run_feed(r, true);
	run_flush(r);
}

/* Copy A lost a segment and its data past the hole is held; copy B, segmented
 * differently, fills the hole with a segment that runs into A's held data and disagrees
 * with it there. A brought those bytes first, so A's bytes go out (DESIGN §4: the first
 * copy wins) and the conflict is counted, the hole's bytes come from B, all once. */
START_TEST(test_hole_fill_conflict_first_copy_wins)
{
	uint64_t in_bytes = 0;
	struct run r;
	size_t k;

	/* The filler starts with the hole; the flip is in A's held segment after it. */
	filler_conflict_run(&r, 40047, 66, 0, 1000 + 100);
	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.overlap_conflicts, 1);
	ck_assert_uint_eq(r.s.bad_csum, 0);
	/* Every payload byte that came in either went out once or is counted a duplicate,
	 * and every frame either went out (whole or in pieces) or is counted dropped. */
	for (k = 0; k < r.all.n; k++) {
		struct pkt_info in;

		fr_parse(&r.all.v[k], &in);
		in_bytes += in.payload_len;
	}
	ck_assert_uint_eq(in_bytes, r.st.dup_bytes + r.c.len[0] + r.c.len[1]);
	ck_assert_uint_ge(r.st.emitted_packets + r.st.dropped_packets, r.all.n);
	run_end(&r);
}
END_TEST

/* Copy A lost a segment; copy B, segmented differently, fills the hole with a segment
 * that starts 500 bytes before it, in bytes A already delivered, and disagrees with A
 * there. Those covered bytes are checked against what went out: a conflict, counted
 * once, A's bytes kept; the hole's bytes come from B; every byte once. */
START_TEST(test_partial_overlap_conflict)
{
	struct run r;

	/* The filler starts 500 bytes early; the flip is 200 bytes before the hole. */
	filler_conflict_run(&r, 40049, 68, 2000, -200);
	sink_assert_exact(&r.s, 0, true);
	assert_delivered(&r.s, 0, 0, r.c.len[0], 1);
	ck_assert_uint_eq(r.st.overlap_conflicts, 1);
	ck_assert_uint_eq(r.s.ended[0].overlap_conflicts, 1);
	ck_assert_uint_eq(r.s.bad_csum, 0);
	run_end(&r);
}
END_TEST

/* Copy B stops after the handshake (its agent died) and copy A has a hole: A's data past
 * the hole is held for skew, then dedup_expire() delivers it, once. */
START_TEST(test_hole_released_after_skew)
{
	size_t off, n, k = 10;
	uint64_t held_at;
	struct run r;
	int dir;

	run_setup(&r, 40044, 20000, 1000, 63, &(struct setup){ .mtu_a = 1040 });
	run_gen(&r);
	frl_truncate(&r.lb, 3);
	off = frame_offset(&r.la, k, &r.c, &dir, &n);
	ck_assert_int_eq(dir, 0);
	held_at = r.la.v[k + 1].ts;
	frl_remove(&r.la, k);
	run_feed(&r, true);
	assert_delivered(&r.s, 0, 0, off, 1);
	assert_delivered(&r.s, 0, off, r.c.len[0], 0);
	dedup_expire(r.d, held_at + r.cfg.skew_ns - 1);
	assert_delivered(&r.s, 0, off + n, r.c.len[0], 0);
	dedup_expire(r.d, held_at + r.cfg.skew_ns + 1);
	assert_hole_only(&r, off, n);
	run_flush(&r);
	assert_fins_once(&r.s);
	ck_assert_uint_eq(r.st.rx_packets, r.all.n);
	ck_assert_uint_eq(r.st.emitted_packets + r.st.dropped_packets, r.all.n);
	run_end(&r);
}
END_TEST

/* Copy B starts mid-flow (agent started late, no metadata): not absolute, so the flow
 * falls back to keeping copy A. */
START_TEST(test_mid_stream_copy)
{
	struct run r;

	run_setup(&r, 40007, 20000, 40000, 8, &(struct setup){ .mtu_a = 1040, .b_late = 200 * MS });
	r.b.handshake = false;
	r.b.from[0] = 9000;
	r.b.from[1] = 21000;
	run_both(&r);
	dedup_flush(r.d);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.s.from_src[1], 0);
	ck_assert_uint_eq(r.st.dropped_packets, count_src(&r.all, 1));
	ck_assert_uint_eq(r.s.nended, 1);
	ck_assert(r.s.ended[0].mid_stream);
	ck_assert_int_eq(r.s.ended[0].kept_source, 0);
	ck_assert_uint_eq(r.s.ended[0].n_sources, 2);
	ck_assert_mem_eq(&r.s.ended[0].sources[1], &r.s.srcs[1], sizeof(struct dedup_src));
	run_end(&r);
}
END_TEST

/* Copy A's agent is stopped (SIGTERM) mid-transfer: it closes its view of the flow with
 * FINs at its current offsets while B's copy goes on. Those FINs must not reach the
 * tools before the end of the data (a tool stops reading there), nor take the sequence
 * byte the data needs. */
START_TEST(test_agent_shutdown_fins_held)
{
	struct run r;
	uint32_t end[2] = { 0, 0 };
	size_t i;

	run_setup(&r, 40034, 20000, 30000, 54, &(struct setup){ .mtu_a = 1040, .b_late = 50 * MS });
	run_gen(&r);
	frl_truncate(&r.la, 14);
	for (i = 0; i < r.la.n; i++) {
		struct pkt_info in;

		fr_parse(&r.la.v[i], &in);
		if (in.payload_len)
			end[r.la.v[i].dir] = in.seq + in.payload_len;
	}
	ck_assert_uint_ne(end[0], 0);
	ck_assert_uint_ne(end[1], 0);
	/* The shutdown FINs, as the agent sends them, after A's last frame. */
	{
		struct copy_opts o = r.a;
		struct gen_ctx g = { .out = &r.la, .ts = &o.t0, .step = 1000, .src = 0 };
		uint16_t ip_id = 900;

		o.t0 = r.la.v[r.la.n - 1].ts + 1000;
		gen_seg(&g, &r.c, &o, 0, end[0], end[1], PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0,
			&ip_id);
		gen_seg(&g, &r.c, &o, 1, end[1], end[0] + 1, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0,
			&ip_id);
	}
	run_feed(&r, true);
	/* B's real FINs are the only ones; they wait for a confirmation that cannot come
	 * (A is gone) and go out after skew. */
	ck_assert_uint_eq(r.s.fin[0][0] + r.s.fin[0][1], 0);
	run_expire_past_skew(&r);
	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.overlap_conflicts, 0);
	run_end(&r);
}
END_TEST

/* Copy A's agent restarts halfway: it announces the flow again as mid-stream and counts
 * offsets from its restart. The flow falls back to keeping the copy with absolute
 * offsets (B), so the stream stays exact. */
START_TEST(test_agent_restart_mid_flow)
{
	struct copy_opts a2;
	struct conn c2;
	struct meta_flow m;
	struct run r;
	uint64_t restart;
	size_t i;

	run_setup(&r, 40032, 20000, 20000, 52, &(struct setup){ .msg = 4000, .b_late = 30000 });
	run_gen(&r);
	/* A's first life ends after its handshake and three data frames... */
	frl_truncate(&r.la, 6);
	restart = r.b.t0 + 100000;
	/* ...its second life sends from offset 12000 each way, counted from 0. */
	restarted_copy(&r, 12000, &c2, &a2);
	a2.t0 = restart + 1000;
	gen_copy(&r.la, &c2, &a2);
	run_merge(&r);

	meta_start(&m, &r.c.t[0]);
	i = frl_first_at(&r.all, restart);
	feed_range(r.d, &r.s, &r.all, 0, i);
	dedup_meta(r.d, &m, &r.s.srcs[0], restart);
	feed_range(r.d, &r.s, &r.all, i, r.all.n);
	run_finish(&r);
	sink_assert_exact(&r.s, 0, true);
	/* A's second life is discarded whole, not mistaken for disagreeing bytes. */
	ck_assert_uint_eq(r.st.overlap_conflicts, 0);
	dedup_flush(r.d);
	ck_assert(r.s.ended[0].mid_stream);
	ck_assert_int_eq(r.s.ended[0].kept_source, 1);
	run_end(&r);
}
END_TEST

/* The same with the restarted agent's synthesized handshake (agents give a flow they see
 * mid-stream one, for analysers): announced mid-stream, its SYN does not make its
 * offsets absolute, its second life is still discarded whole and the flow log says
 * mid_stream. */
START_TEST(test_agent_restart_with_handshake)
{
	struct copy_opts a2;
	struct conn c2;
	struct meta_flow m;
	struct run r;
	uint64_t restart;
	size_t i;

	run_setup(&r, 40033, 20000, 20000, 53, &(struct setup){ .msg = 4000, .b_late = 30000 });
	run_gen(&r);
	frl_truncate(&r.la, 6);
	restart = r.b.t0 + 100000;
	restarted_copy(&r, 12000, &c2, &a2);
	a2.handshake = true;
	a2.t0 = restart + 1000;
	gen_copy(&r.la, &c2, &a2);
	run_merge(&r);

	meta_start(&m, &r.c.t[0]);
	i = frl_first_at(&r.all, restart);
	feed_range(r.d, &r.s, &r.all, 0, i);
	dedup_meta(r.d, &m, &r.s.srcs[0], restart);
	feed_range(r.d, &r.s, &r.all, i, r.all.n);
	run_finish(&r);
	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.overlap_conflicts, 0);
	dedup_flush(r.d);
	ck_assert_uint_eq(r.s.nended, 1);
	ck_assert(r.s.ended[0].mid_stream);
	ck_assert_int_eq(r.s.ended[0].kept_source, 1);
	run_end(&r);
}
END_TEST

/* A copy announced mid-stream from its first frame, with its synthesized handshake,
 * beside a copy followed from the start: flow mode keeps the absolute copy. */
START_TEST(test_mid_stream_handshake_not_absolute)
{
	struct meta_flow m;
	struct run r;
	size_t i;

	run_setup(&r, 40034, 20000, 40000, 54,
		  &(struct setup){ .mtu_a = 1040, .b_late = 200 * MS });
	r.b.from[0] = 9000;
	r.b.from[1] = 21000;
	run_gen(&r);
	run_merge(&r);
	meta_start(&m, &r.c.t[0]);
	i = frl_first_at(&r.all, r.b.t0);
	feed_range(r.d, &r.s, &r.all, 0, i);
	dedup_meta(r.d, &m, &r.s.srcs[1], r.b.t0);
	feed_range(r.d, &r.s, &r.all, i, r.all.n);
	run_finish(&r);
	dedup_flush(r.d);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.s.from_src[1], 0);
	ck_assert_uint_eq(r.st.overlap_conflicts, 0);
	ck_assert(r.s.ended[0].mid_stream);
	ck_assert_int_eq(r.s.ended[0].kept_source, 0);
	run_end(&r);
}
END_TEST

/* The same restart seen from that node's copy alone: the restarted agent's relative
 * offsets are never laid over the absolute stream already delivered, so every byte
 * delivered is at its position and none twice. */
static void restart_single_case(bool ended)
{
	struct frl l2 = { 0 };
	struct copy_opts a2;
	struct conn c2;
	struct meta_flow m;
	struct run r;
	size_t n1, j, got[2] = { 0, 0 };

	run_setup(&r, 40033, 20000, 20000, 53, &(struct setup){ .msg = 4000 });
	run_gen_a(&r);
	frl_truncate(&r.la, 9);
	n1 = r.la.n;
	restarted_copy(&r, 12000, &c2, &a2);
	a2.t0 = 2 * SEC;
	if (ended) /* the restart took longer than the flow timeout */
		a2.t0 = r.la.v[r.la.n - 1].ts + r.cfg.flow_timeout_ns + 1 * SEC;
	gen_copy(&l2, &c2, &a2);
	meta_start(&m, &r.c.t[0]);
	feed_range(r.d, &r.s, &r.la, 0, r.la.n);
	if (ended) {
		dedup_expire(r.d, r.la.v[r.la.n - 1].ts + r.cfg.flow_timeout_ns + 1);
		ck_assert_uint_eq(r.s.nended, 1);
	}
	dedup_meta(r.d, &m, &r.s.srcs[0], a2.t0 - 1000);
	feed_range(r.d, &r.s, &l2, 0, l2.n);
	run_finish(&r);
	ck_assert_uint_eq(r.s.bad_csum, 0);
	ck_assert_uint_eq(r.s.out_of_range, 0);
	for (j = 0; j < 2; j++) {
		size_t k;

		for (k = 0; k < r.c.len[j]; k++) {
			ck_assert_uint_le(r.s.cnt[0][j][k], 1);
			if (r.s.cnt[0][j][k]) {
				ck_assert_uint_eq(r.s.got[0][j][k], r.c.data[j][k]);
				got[j]++;
			}
		}
	}
	ck_assert_uint_eq(got[0], 4000);
	ck_assert_uint_eq(got[1], 4000);
	ck_assert_uint_eq(r.st.emitted_packets, n1);
	ck_assert_uint_eq(r.st.dropped_packets, l2.n);
	ck_assert_uint_eq(r.s.fin[0][0] + r.s.fin[0][1], 0);
	frl_free(&l2);
	run_end(&r);
}

START_TEST(test_agent_restart_single_copy)
{
	restart_single_case(false);
}
END_TEST

/* The same after the first flow entry expired during the restart: the tuple is
 * remembered, so the restarted copy still is not laid over what was delivered. */
START_TEST(test_agent_restart_after_expiry)
{
	restart_single_case(true);
}
END_TEST

/* A copy without SYN whose metadata says from_start is absolute: its holes are filled
 * from the other copy byte by byte instead of falling back. */
START_TEST(test_meta_from_start_is_absolute)
{
	struct meta_flow m;
	struct run r;
	size_t i;

	run_setup(&r, 40008, 20000, 20000, 9, &(struct setup){ .mtu_a = 1040, .b_late = 500 * MS });
	run_gen(&r);
	frl_remove(&r.la, 10);
	frl_remove(&r.la, 2); /* the handshake ACK */
	frl_remove(&r.la, 1); /* SYN-ACK */
	frl_remove(&r.la, 0); /* SYN */
	meta_start(&m, &r.c.t[0]);
	m.isn[0] = r.c.isn[0];
	m.isn[1] = r.c.isn[1];
	m.from_start = true;
	strcpy(m.role, "client");
	strcpy(m.comm, "curl");
	dedup_meta(r.d, &m, &r.s.srcs[0], r.a.t0 - 1000);
	run_feed(&r, true);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.meta_frames, 1);
	dedup_flush(r.d);
	ck_assert_uint_eq(r.s.nended, 1);
	ck_assert(!r.s.ended[0].mid_stream);
	ck_assert(r.s.ended[0].have_meta);
	ck_assert_str_eq(r.s.ended[0].meta.comm, "curl");
	ck_assert_int_eq(r.s.ended[0].kept_source, -1);
	for (i = 0; i < 2; i++)
		ck_assert_uint_eq(r.s.ended[0].isn[i], r.c.isn[i]);
	run_end(&r);
}
END_TEST

/* Retransmissions inside one copy (the same frame again, and a re-segmented resend
 * spanning several earlier segments) are delivered once. */
START_TEST(test_retransmits_within_copy)
{
	struct run r;
	size_t i, n;

	run_setup(&r, 40009, 15000, 15000, 10, &(struct setup){ .mtu_a = 1040 });
	run_gen_a(&r);
	n = r.la.n;
	/* Resend frames 3..8 later, same bytes. */
	for (i = 3; i < 9; i++)
		frl_add(&r.la, r.la.v[i].b, r.la.v[i].len, r.la.v[i].ts + 50 * MS, 0,
			r.la.v[i].dir);
	/* And the client's first 2500 bytes again as one 1440-MSS resegmentation. */
	{
		struct copy_opts o = r.a;
		struct conn c2 = r.c;

		c2.len[0] = 2500;
		c2.len[1] = 0;
		o.handshake = o.fins = false;
		o.mtu = 1480;
		o.t0 = r.a.t0 + 80 * MS;
		gen_copy(&r.la, &c2, &o);
	}
	run_feed(&r, true);
	run_flush(&r);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.emitted_packets, n);
	ck_assert_uint_eq(r.st.dropped_packets, r.all.n - n);
	ck_assert_uint_eq(r.st.overlap_conflicts, 0);
	run_end(&r);
}
END_TEST

/* Sequence numbers wrap past 2^32 in the middle of both directions. */
START_TEST(test_seq_wraparound)
{
	struct run r;

	run_setup(&r, 40010, 30000, 30000, 11,
		  &(struct setup){ .mtu_a = 1040, .mtu_b = 1300, .b_late = 300 * MS });
	r.c.isn[0] = 0xffffff00u;
	r.c.isn[1] = 0xffff9000u;
	run_gen(&r);
	ck_assert_uint_eq(r.la.v[6].len, 14 + 20 + 20 + 1000);
	frl_remove(&r.la, 6); /* a hole right around the wrap, filled from B */
	run_feed(&r, true);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_gt(r.st.trimmed_packets, 0);
	ck_assert_uint_eq(r.st.dup_bytes, 60000 - 1000);
	run_end(&r);
}
END_TEST

/* A second connection on the same 5-tuple after the first ended starts a fresh flow,
 * whether its ISN is the same (ISN derived from the tuple) or not. */
static void reuse_case(uint32_t isn_shift)
{
	struct conn c2;
	struct run r;

	run_setup(&r, 40011, 8000, 9000, 12, &(struct setup){ .b_late = 20 * MS });
	conn_init4(&c2, "10.0.0.1", 40011, "10.0.0.2", 443, 7000, 11000, 13);
	c2.isn[0] += isn_shift;
	c2.isn[1] += isn_shift;
	run_both(&r);
	sink_assert_exact(&r.s, 0, true);
	frl_free(&r.all);

	/* 0.5 s later, well within skew: the same tuple again. */
	sink_reset(&r.s);
	sink_add(&r.s, &c2);
	r.a.t0 = r.b.t0 + 500 * MS;
	r.b.t0 = r.a.t0 + 20 * MS;
	run_copies(&r, &c2);
	run_feed(&r, true);
	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.flows_total, 2);
	ck_assert_uint_eq(r.st.flows_active, 1);
	ck_assert_uint_eq(r.s.nended, 1);
	ck_assert_uint_eq(r.s.ended[0].bytes_out, 17000);
	ck_assert_uint_eq(r.s.ended[0].bytes_dropped, 17000);
	run_end_conns(&r, &c2, 1);
}

START_TEST(test_tuple_reuse_same_isn)
{
	reuse_case(0);
}
END_TEST

START_TEST(test_tuple_reuse_new_isn)
{
	reuse_case(0x12345678u);
}
END_TEST

/* Two different connections whose ISNs collide stay apart: identity is the 5-tuple. */
START_TEST(test_isn_collision_kept_apart)
{
	struct conn c2;
	struct run r;

	run_setup(&r, 40012, 12000, 24000, 14, &(struct setup){ .mtu_a = 1040 });
	conn_init4(&c2, "10.0.0.3", 50000, "10.0.0.2", 443, 13000, 22000, 15);
	c2.isn[0] = r.c.isn[0];
	c2.isn[1] = r.c.isn[1];
	sink_add(&r.s, &c2);
	run_copies(&r, &r.c);
	r.a.t0 += 3000;
	r.b.t0 += 3000;
	run_copies(&r, &c2);
	run_feed(&r, true);
	sink_assert_exact(&r.s, 0, true);
	sink_assert_exact(&r.s, 1, true);
	ck_assert_uint_eq(r.st.flows_total, 2);
	ck_assert_uint_eq(r.st.overlap_conflicts, 0);
	run_end_conns(&r, &c2, 1);
}
END_TEST

START_TEST(test_ipv6)
{
	struct run r;

	run_setup(&r, 55555, 25000, 35000, 16,
		  &(struct setup){ .cli = "2001:db8::1",
				   .srv = "2001:db8::2",
				   .mtu_a = 1280,
				   .mtu_b = 1500,
				   .b_late = -100000 });
	r.b.step = 13000;
	ck_assert_int_eq(r.c.t[0].family, AF_INET6);
	run_both(&r);
	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_gt(r.st.trimmed_packets, 0);
	ck_assert_uint_eq(r.st.dup_bytes, 60000);
	run_end(&r);
}
END_TEST

/* Copy B disagrees on some bytes: first copy wins, the conflict is counted. */
START_TEST(test_overlap_conflict)
{
	struct run r;

	/* B 100 ms late: A brings every byte first */
	run_setup(&r, 40013, 9000, 9000, 17, &(struct setup){ .mtu_a = 1040, .b_late = 100 * MS });
	run_flip_b(&r, 4321);
	run_both(&r);
	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.overlap_conflicts, 1);
	dedup_flush(r.d);
	ck_assert_uint_eq(r.s.ended[0].overlap_conflicts, 1);
	run_end(&r);
}
END_TEST

START_TEST(test_table_full_passes_through)
{
	struct conn c[3];
	struct run r;
	size_t before;

	run_setup(&r, 0, 0, 0, 0, &(struct setup){ .max_flows = 2 });
	run_conns(&r, c, 3, 41000, 3000, 20);
	run_copies(&r, &c[0]);
	run_copies(&r, &c[1]);
	before = r.all.n;
	r.a.t0 += 1 * SEC;
	r.b.t0 += 1 * SEC;
	run_copies(&r, &c[2]);
	run_feed(&r, false);
	sink_assert_exact(&r.s, 0, true);
	sink_assert_exact(&r.s, 1, true);
	/* Flow 3: both copies delivered un-deduplicated, every frame counted. */
	ck_assert_uint_eq(r.st.table_full, r.all.n - before);
	ck_assert_uint_eq(r.s.syn[2][0], 2);
	ck_assert_uint_eq(r.s.cnt[2][1][0], 2);
	ck_assert_uint_eq(r.st.flows_active, 2);
	run_end_conns(&r, c, 3);
}
END_TEST

START_TEST(test_per_source_limit)
{
	struct conn c[3];
	struct run r;
	size_t n1;

	run_setup(&r, 0, 0, 0, 0, &(struct setup){ .per_source = 1 });
	run_conns(&r, c, 3, 42000, 2000, 30);
	/* A owns flow 0, B owns flow 1 (B's copy comes first): both deduplicated. */
	run_copies(&r, &c[0]);
	r.a.t0 += 1 * SEC;
	r.b.t0 = r.a.t0 - 2000;
	run_copies(&r, &c[1]);
	n1 = r.all.n;
	/* Flow 2 only from A, which already owns one flow. */
	r.a.t0 += 1 * SEC;
	run_copy(&r, &c[2], &r.a);
	run_feed(&r, false);
	sink_assert_exact(&r.s, 0, true);
	sink_assert_exact(&r.s, 1, true);
	sink_assert_exact(&r.s, 2, true);
	ck_assert_uint_eq(r.st.source_limited, r.all.n - n1);
	ck_assert_uint_eq(r.st.flows_active, 2);
	run_end_conns(&r, c, 3);
}
END_TEST

/* A connection reset: one RST reaches the tools, the flow is closed and ends skew after
 * its last frame rather than after the idle timeout. */
START_TEST(test_rst_once)
{
	struct run r;

	run_setup(&r, 40030, 5000, 5000, 50, &(struct setup){ .b_late = 300 * MS });
	r.a.rst = r.b.rst = true;
	run_both(&r);
	sink_assert_exact(&r.s, 0, false);
	ck_assert_uint_eq(r.s.rst, 1);
	assert_ends_at(&r, run_last_ts(&r) + r.cfg.skew_ns);
	run_end(&r);
}
END_TEST

/* More distinct sources than the registry holds: ids are recycled without confusing
 * the source a flow keeps. */
START_TEST(test_many_sources)
{
	struct dedup_src other;
	struct pkt_info in;
	struct run r;
	size_t half;
	uint32_t k;

	run_setup(&r, 40031, 20000, 100, 51, &(struct setup){ .mode = DEDUP_FLOW });
	run_gen_a(&r);
	half = r.la.n / 2;
	feed_range(r.d, &r.s, &r.la, 0, half);
	/* 70000 strangers replay frame 5 (one client data segment). */
	fr_parse(&r.la.v[5], &in);
	memset(&other, 0, sizeof(other));
	for (k = 0; k < 70000; k++) {
		other.vni = 100 + k;
		dedup_input(r.d, r.la.v[5].b, r.la.v[5].len, &in, &other, r.la.v[half].ts);
	}
	feed_range(r.d, &r.s, &r.la, half, r.la.n);
	run_finish(&r);
	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.dropped_packets, 70000);
	ck_assert_uint_eq(r.s.from_src[0], r.la.n);
	dedup_flush(r.d);
	ck_assert_uint_eq(r.s.ended[0].n_sources, DEDUP_MAX_SOURCES);
	ck_assert_int_eq(r.s.ended[0].kept_source, 0);
	run_end(&r);
}
END_TEST

/* A long flow (2.5 GiB each way through the 2^32 wrap and past 2^31 from its start),
 * two copies segmented 60000 vs 45000 and leapfrogging: the output must be one gapless,
 * in-order stream whose bytes sit at the right sequence numbers (byte(seq) = seq & 0xff,
 * so any misalignment shows up as a conflict or a wrong byte). */
struct long_sink {
	uint32_t next;
	uint64_t bytes, frames, errors;
};

static void long_emit(void *ctx, const uint8_t *frame, size_t len, uint64_t ts,
		      const struct dedup_src *src)
{
	struct long_sink *ls = ctx;
	struct pkt_info in;

	(void)ts;
	(void)src;
	ls->frames++;
	if (pkt_parse(frame, len, &in) != 0 || in.seq != ls->next) {
		ls->errors++;
		return;
	}
	if (in.payload_len &&
	    (in.payload[0] != (uint8_t)in.seq ||
	     in.payload[in.payload_len - 1] != (uint8_t)(in.seq + in.payload_len - 1)))
		ls->errors++;
	if (ls->frames % 64 == 0 && !pkt_checksums_ok(frame, &in))
		ls->errors++;
	ls->next += in.payload_len + !!(in.tcp_flags & PKT_TCP_SYN);
	ls->bytes += in.payload_len;
}

START_TEST(test_long_flow)
{
	struct dedup_cfg cfg = default_cfg(DEDUP_BYTES);
	const uint64_t total = 2500ull << 20;
	const size_t seg[2] = { 60000, 45000 };
	static uint8_t pat[65536 + 256];
	struct long_sink ls = { 0 };
	struct dedup_src srcs[2] = { { .addr = { 1 } }, { .addr = { 2 } } };
	struct ecv_tuple t;
	struct dedup_stats st;
	struct dedup *d;
	uint64_t off[2] = { 0, 0 }, ts = SEC;
	uint8_t a[16], b[16], fam, *frame = malloc(PKT_MAX_FRAME);
	uint32_t isn = 0xfff00000u;
	size_t i;

	for (i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)i;
	tuple_addr_parse("10.0.0.1", a, &fam);
	tuple_addr_parse("10.0.0.2", b, &fam);
	tuple_init(&t, a, 40040, b, 443, IPPROTO_TCP);
	ls.next = isn;
	d = dedup_new(&cfg, long_emit, NULL, &ls);
	ck_assert_ptr_nonnull(d);
	for (i = 0; i < 2; i++) {
		/* Both copies from the start: byte-level dedup, not the flow fallback. */
		struct pkt_tcp syn = { .seq = isn, .flags = PKT_TCP_SYN };
		struct pkt_info in;
		int k = pkt_build(frame, PKT_MAX_FRAME, NULL, &t, &syn, 1, NULL, 0);

		ck_assert_int_eq(pkt_parse(frame, (size_t)k, &in), 0);
		dedup_input(d, frame, (size_t)k, &in, &srcs[i], ts += 1000);
	}
	while (off[0] < total || off[1] < total) {
		/* The copy that is behind sends next: they keep overtaking each other. */
		int c = off[0] < total && (off[1] >= total || off[0] <= off[1]) ? 0 : 1;
		uint32_t seq = isn + 1 + (uint32_t)off[c];
		size_t n = total - off[c] < seg[c] ? (size_t)(total - off[c]) : seg[c];
		struct pkt_tcp tcp = { .seq = seq, .ack = 1, .flags = PKT_TCP_ACK };
		struct pkt_info in;
		int k = pkt_build(frame, PKT_MAX_FRAME, NULL, &t, &tcp, 1, pat + (seq & 0xff), n);

		ck_assert_int_gt(k, 0);
		ck_assert_int_eq(pkt_parse(frame, (size_t)k, &in), 0);
		dedup_input(d, frame, (size_t)k, &in, &srcs[c], ts += 1000);
		off[c] += n;
	}
	dedup_get_stats(d, &st);
	ck_assert_uint_eq(ls.errors, 0);
	ck_assert_uint_eq(ls.bytes, total);
	ck_assert_uint_eq(st.dup_bytes, total);
	ck_assert_uint_gt(st.trimmed_packets, 1000);
	ck_assert_uint_eq(st.overlap_conflicts, 0);
	ck_assert_uint_eq(st.holes_abandoned, 0);
	dedup_free(d);
	free(frame);
}
END_TEST

/* --- other modes ------------------------------------------------------------ */

/* flow mode keeps source A whole and discards B without looking at it: A's hole stays a
 * hole and B's different bytes are not even noticed. */
START_TEST(test_flow_mode_keeps_first_source)
{
	struct run r;
	size_t removed_len;

	run_setup(&r, 40014, 9000, 9000, 18,
		  &(struct setup){ .mode = DEDUP_FLOW, .mtu_a = 1040, .b_late = 100 * MS });
	run_flip_b(&r, 100);
	run_gen(&r);
	ck_assert_uint_gt(r.la.v[5].len, 1000);
	removed_len = r.la.v[5].len;
	frl_remove(&r.la, 5);
	run_feed(&r, true);

	ck_assert_uint_eq(r.s.from_src[1], 0);
	ck_assert_uint_eq(r.st.dropped_packets, count_src(&r.all, 1));
	ck_assert_uint_eq(r.st.overlap_conflicts, 0);
	ck_assert_uint_eq(r.s.bad_csum, 0);
	ck_assert_uint_eq(r.st.trimmed_packets, 0);
	/* The hole in A is not filled. */
	ck_assert_uint_gt(removed_len, 0);
	{
		size_t j, missing = 0;

		for (j = 0; j < r.c.len[0]; j++)
			missing += r.s.cnt[0][0][j] == 0;
		for (j = 0; j < r.c.len[1]; j++)
			missing += r.s.cnt[0][1][j] == 0;
		ck_assert_uint_eq(missing, 1000);
	}
	dedup_flush(r.d);
	ck_assert_int_eq(r.s.ended[0].kept_source, 0);
	run_end(&r);
}
END_TEST

/* flow mode: the kept source's agent dies mid-transfer; after skew of silence the other
 * copy takes over from the next byte not yet emitted. */
START_TEST(test_flow_mode_failover)
{
	struct run r;

	run_setup(&r, 40015, 9000, 9000, 19,
		  &(struct setup){
			  .mode = DEDUP_FLOW, .skew = 500 * MS, .mtu_a = 1040, .b_late = 1 * SEC });
	r.b.step = 100 * MS; /* slow enough that A's silence exceeds skew mid-stream */
	run_gen(&r);
	frl_truncate(&r.la, 12);
	run_feed(&r, true);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_gt(r.s.from_src[1], 0);
	dedup_flush(r.d);
	ck_assert_int_eq(r.s.ended[0].kept_source, 1);
	run_end(&r);
}
END_TEST

/* content mode: the same payload from another source inside the window is dropped even
 * though its headers (IP id, MACs, TTL) differ; a repeat from the same source is not,
 * and neither is a repeat after the window. */
START_TEST(test_content_mode)
{
	struct frl late = { 0 };
	struct run r;
	size_t na;

	run_setup(&r, 40016, 9000, 9000, 20,
		  &(struct setup){ .mode = DEDUP_CONTENT, .window = 1 * SEC });
	r.b.ttl = 61;
	run_copies(&r, &r.c);
	na = count_src(&r.all, 0);
	/* A retransmits its first data frame (same source), and C repeats it 5 s later. */
	frl_add(&late, r.all.v[6].b, r.all.v[6].len, 2 * SEC, 0, 0);
	ck_assert_int_eq(r.all.v[6].src, 0);
	frl_add(&late, r.all.v[6].b, r.all.v[6].len, 7 * SEC, 2, 0);
	frl_merge(&r.all, &late);
	run_feed(&r, false);
	ck_assert_uint_eq(r.st.emitted_packets, na + 2);
	ck_assert_uint_eq(r.st.dropped_packets, count_src(&r.all, 1));
	ck_assert_uint_eq(r.s.from_src[1], 0);
	run_end(&r);
}
END_TEST

/* content mode cannot see through different segmentation (that is what bytes is for). */
START_TEST(test_content_mode_segmentation_differs)
{
	struct run r;

	run_setup(&r, 40017, 9000, 9000, 21,
		  &(struct setup){ .mode = DEDUP_CONTENT, .mtu_a = 1040 });
	run_gen(&r);
	run_feed(&r, false);
	ck_assert_uint_gt(r.s.from_src[1], 6);
	run_end(&r);
}
END_TEST

/* packet mode drops frames that differ only in MACs, TTL and checksums, keeps frames
 * that differ in anything else (here the IP id), and forgets after the window. */
START_TEST(test_packet_mode)
{
	struct frl extra = { 0 };
	struct run r;
	size_t i, na;

	run_setup(&r, 40018, 6000, 6000, 22,
		  &(struct setup){ .mode = DEDUP_PACKET, .window = 1 * SEC });
	run_copy(&r, &r.c, &r.a);
	na = r.all.n;
	/* B = A's frames with other MACs and TTL (checksum recomputed), same IP ids. */
	for (i = 0; i < na; i++) {
		frl_add(&r.lb, r.all.v[i].b, r.all.v[i].len, r.all.v[i].ts + 1000, 1, 0);
		r.lb.v[i].b[5] ^= 0x33;
		r.lb.v[i].b[11] ^= 0x44;
		set_ttl(r.lb.v[i].b, r.lb.v[i].len, 60);
	}
	/* One frame with a different IP id, and one exact repeat after the window. */
	frl_add(&extra, r.all.v[4].b, r.all.v[4].len, 1 * SEC + 500 * MS, 1, 0);
	extra.v[0].b[18] ^= 1;
	set_ttl(extra.v[0].b, extra.v[0].len, 64);
	frl_add(&extra, r.all.v[4].b, r.all.v[4].len, 9 * SEC, 1, 0);
	run_merge(&r);
	frl_merge(&r.all, &extra);
	run_feed(&r, false);
	ck_assert_uint_eq(r.st.dropped_packets, na);
	ck_assert_uint_eq(r.st.emitted_packets, na + 2);
	ck_assert_uint_eq(r.s.from_src[1], 2);
	ck_assert_uint_eq(r.s.bad_csum, 0);
	run_end(&r);
}
END_TEST

START_TEST(test_off_mode)
{
	struct run r;

	run_setup(&r, 40019, 6000, 6000, 23, &(struct setup){ .mode = DEDUP_OFF });
	run_gen(&r);
	run_feed(&r, false);
	ck_assert_uint_eq(r.st.emitted_packets, r.all.n);
	ck_assert_uint_eq(r.st.dropped_packets, 0);
	ck_assert_uint_eq(r.s.cnt[0][0][0], 2);
	ck_assert_uint_eq(r.s.fin[0][1], 2);
	/* Still accounted per flow, and ended with the connection (skew after its FINs). */
	run_expire_past_skew(&r);
	ck_assert_uint_eq(r.s.nended, 1);
	ck_assert_uint_eq(r.s.ended[0].pkts_in, r.all.n);
	ck_assert_uint_eq(r.s.ended[0].pkts_out, r.all.n);
	ck_assert_uint_eq(r.s.ended[0].n_sources, 2);
	run_end(&r);
}
END_TEST

/* UDP has no sequence space: bytes mode passes it through. */
START_TEST(test_udp_passes_through)
{
	struct dedup_cfg cfg = default_cfg(DEDUP_BYTES);
	struct sink s;
	struct dedup *d;
	struct ecv_tuple t;
	struct dedup_stats st;
	struct pkt_info in;
	uint8_t a[16], b[16], fam, frame[256];
	int n;

	sink_init_srcs(&s);
	d = dedup_new(&cfg, sink_emit, sink_end, &s);
	ck_assert_ptr_nonnull(d);
	tuple_addr_parse("10.0.0.1", a, &fam);
	tuple_addr_parse("10.0.0.53", b, &fam);
	tuple_init(&t, a, 5353, b, 53, IPPROTO_UDP);
	n = pkt_build(frame, sizeof(frame), NULL, &t, NULL, 1, "query", 5);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(pkt_parse(frame, (size_t)n, &in), 0);
	dedup_input(d, frame, (size_t)n, &in, &s.srcs[0], 1);
	dedup_input(d, frame, (size_t)n, &in, &s.srcs[1], 2);
	dedup_get_stats(d, &st);
	ck_assert_uint_eq(st.emitted_packets, 2);
	ck_assert_uint_eq(s.frames, 2);
	ck_assert_uint_eq(st.flows_active, 0);
	dedup_free(d);
}
END_TEST

/* --- lifecycle ------------------------------------------------------------ */

/* An open flow expires after flow_timeout of silence with its counters reported. */
START_TEST(test_expiry_reports_counters)
{
	struct run r;
	uint64_t last;

	run_setup(&r, 40020, 7000, 11000, 24, &(struct setup){ .mtu_a = 1040 });
	r.a.fins = r.b.fins = false;
	run_both(&r);
	last = run_last_ts(&r);
	assert_ends_at(&r, last + r.cfg.flow_timeout_ns);
	{
		const struct dedup_flow_info *f = &r.s.ended[0];

		ck_assert(tuple_equal(&f->tuple, &r.c.t[0]));
		ck_assert_uint_eq(f->isn[0], r.c.isn[0]);
		ck_assert_uint_eq(f->isn[1], r.c.isn[1]);
		ck_assert_uint_eq(f->n_sources, 2);
		ck_assert_uint_eq(f->pkts_in, r.all.n);
		ck_assert_uint_eq(f->bytes_in, 2 * 18000);
		ck_assert_uint_eq(f->bytes_out, 18000);
		ck_assert_uint_eq(f->bytes_dropped, 18000);
		ck_assert_uint_eq(f->pkts_out, r.st.emitted_packets);
		ck_assert_uint_eq(f->pkts_dropped, r.st.dropped_packets);
		ck_assert_uint_eq(f->first_ns, r.all.v[0].ts);
		ck_assert_uint_eq(f->last_ns, last);
		ck_assert(!f->mid_stream);
		ck_assert(!f->have_meta);
	}
	assert_expired(&r);
	run_end(&r);
}
END_TEST

/* The flow is reported client -> server even when the server's copy of a SYN-ACK is the
 * first frame seen. */
START_TEST(test_orientation_from_syn)
{
	struct run r;

	run_setup(&r, 40021, 3000, 3000, 25, NULL);
	run_gen_a(&r);
	r.la.v[1].ts = r.la.v[0].ts - 1; /* SYN-ACK first */
	run_feed(&r, false);
	dedup_flush(r.d);
	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.s.nended, 1);
	ck_assert(tuple_equal(&r.s.ended[0].tuple, &r.c.t[0]));
	ck_assert_uint_eq(r.s.ended[0].isn[0], r.c.isn[0]);
	run_end(&r);
}
END_TEST

static int count_flows(void *ctx, const struct dedup_flow_info *f)
{
	unsigned *n = ctx;

	(void)f;
	return ++*n == 2 ? 7 : 0;
}

START_TEST(test_foreach_and_flush)
{
	struct conn c[3];
	struct run r;
	unsigned i, n = 0;

	run_setup(&r, 0, 0, 0, 0, NULL);
	r.a.fins = false;
	run_conns(&r, c, 3, 43000, 100, 40);
	for (i = 0; i < 3; i++)
		run_copy(&r, &c[i], &r.a);
	run_feed(&r, false);
	ck_assert_int_eq(dedup_foreach(r.d, count_flows, &n), 7);
	ck_assert_uint_eq(n, 2);
	dedup_flush(r.d);
	ck_assert_uint_eq(r.s.nended, 3);
	run_finish(&r);
	ck_assert_uint_eq(r.st.flows_active, 0);
	ck_assert_uint_eq(r.st.flows_expired, 0);
	n = 0;
	ck_assert_int_eq(dedup_foreach(r.d, count_flows, &n), 0);
	ck_assert_uint_eq(n, 0);
	run_end_conns(&r, c, 3);
}
END_TEST

START_TEST(test_api_basics)
{
	struct dedup_cfg cfg = default_cfg(DEDUP_BYTES);
	enum dedup_mode m;
	unsigned i;

	for (i = DEDUP_BYTES; i <= DEDUP_OFF; i++) {
		ck_assert_int_eq(dedup_mode_parse(dedup_mode_name(i), &m), 0);
		ck_assert_int_eq(m, i);
	}
	ck_assert_str_eq(dedup_mode_name(DEDUP_BYTES), "bytes");
	ck_assert_int_eq(dedup_mode_parse("flows", &m), -EINVAL);
	ck_assert_int_eq(dedup_mode_parse(NULL, &m), -EINVAL);
	ck_assert_uint_le(dedup_flow_bytes(), 256);
	errno = 0;
	ck_assert_ptr_null(dedup_new(&cfg, NULL, NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	cfg.max_flows = 0;
	errno = 0;
	ck_assert_ptr_null(dedup_new(&cfg, sink_emit, NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	dedup_free(NULL);
}
END_TEST

/* --- tests: the output reads as one clean TCP conversation ------------------ */

/* Feeds frames the way the tvn's live loop does: dedup_expire() every tick of frame
 * time (not before every frame), and on until `until` after the last frame. */
static void feed_live(struct dedup *d, struct sink *s, const struct frl *l, uint64_t tick,
		      uint64_t until)
{
	uint64_t now = l->n ? l->v[0].ts : 0;
	size_t i;

	for (i = 0; i < l->n; i++) {
		struct pkt_info in;

		while (now + tick <= l->v[i].ts) {
			now += tick;
			dedup_expire(d, now);
		}
		ck_assert_int_eq(pkt_parse(l->v[i].b, l->v[i].len, &in), 0);
		dedup_input(d, l->v[i].b, l->v[i].len, &in, &s->srcs[l->v[i].src], l->v[i].ts);
	}
	while (now < until) {
		now += tick;
		dedup_expire(d, now);
	}
}

/* What a TCP analyser relies on, frame by frame in output order: no frame acknowledges
 * sequence space of the other direction that was not emitted before it (tshark: "ACKed
 * unseen segment"), sequence numbers never go back within a direction (tshark:
 * retransmission / out of order), timestamps never go back within the flow. */
static void assert_tcp_order(const struct frl *out, const struct conn *c)
{
	uint32_t next[2] = { 0, 0 }, last_seq[2] = { 0, 0 };
	bool seen[2] = { false, false };
	uint64_t last_ts = 0;
	size_t i;

	for (i = 0; i < out->n; i++) {
		struct pkt_info in;
		uint32_t end;
		int dir;

		ck_assert_int_eq(pkt_parse(out->v[i].b, out->v[i].len, &in), 0);
		ck_assert(tuple_equal(&in.tuple, &c->t[0]) || tuple_equal(&in.tuple, &c->t[1]));
		dir = tuple_equal(&in.tuple, &c->t[0]) ? 0 : 1;
		end = in.seq + !!(in.tcp_flags & PKT_TCP_SYN) + (uint32_t)in.payload_len +
		      !!(in.tcp_flags & PKT_TCP_FIN);
		if (seen[dir])
			ck_assert_msg((int32_t)(in.seq - last_seq[dir]) >= 0,
				      "frame %zu (dir %d): seq %u after seq %u", i, dir, in.seq,
				      last_seq[dir]);
		last_seq[dir] = in.seq;
		if (!seen[dir] || (int32_t)(end - next[dir]) > 0)
			next[dir] = end;
		seen[dir] = true;
		if (in.tcp_flags & PKT_TCP_ACK)
			ck_assert_msg(
				seen[!dir] && (int32_t)(in.ack - next[!dir]) <= 0,
				"frame %zu (dir %d, flags 0x%x): ack %u beyond the %u emitted "
				"in the other direction",
				i, dir, in.tcp_flags, in.ack, next[!dir]);
		ck_assert_msg(out->v[i].ts >= last_ts, "frame %zu: time %llu before %llu", i,
			      (unsigned long long)out->v[i].ts, (unsigned long long)last_ts);
		last_ts = out->v[i].ts;
	}
	ck_assert(seen[0] && seen[1]);
}

/* Writes the frames to a nanosecond pcap and has tshark (Wireshark's TCP analysis, not
 * our parser) read it with checksum validation on: any bad checksum or TCP analysis flag
 * (ACKed unseen segment, retransmission, out of order, duplicate ACK, ...) is printed
 * and fails the test. Skips only when tshark is not installed. */
static void assert_tshark_clean(const struct frl *out)
{
	char path[] = "/tmp/ecvr-dedup-XXXXXX", cmd[512], line[512], flagged[4096] = "";
	pcap_dumper_t *dumper;
	size_t i, nflagged = 0;
	pcap_t *p;
	FILE *fp;
	int fd, status;

	if (system("command -v tshark >/dev/null 2>&1") != 0) {
		fprintf(stderr, "skip: tshark not installed, TCP analysis check not run\n");
		return;
	}
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	p = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_NANO);
	ck_assert_ptr_nonnull(p);
	dumper = pcap_dump_open(p, path);
	ck_assert_ptr_nonnull(dumper);
	for (i = 0; i < out->n; i++) {
		struct pcap_pkthdr h = { 0 };

		h.ts.tv_sec = (time_t)(out->v[i].ts / SEC);
		h.ts.tv_usec = (suseconds_t)(out->v[i].ts % SEC); /* ns: nano precision */
		h.caplen = h.len = (bpf_u_int32)out->v[i].len;
		pcap_dump((u_char *)dumper, &h, out->v[i].b);
	}
	pcap_dump_close(dumper);
	pcap_close(p);
	snprintf(cmd, sizeof(cmd),
		 "tshark -n -r %s -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE "
		 "-Y 'tcp.checksum.status==0 || ip.checksum.status==0 || tcp.analysis.flags' "
		 "2>/dev/null",
		 path);
	fp = popen(cmd, "r");
	ck_assert_ptr_nonnull(fp);
	while (fgets(line, sizeof(line), fp)) {
		if (strlen(flagged) + strlen(line) < sizeof(flagged))
			strcat(flagged, line);
		nflagged++;
	}
	status = pclose(fp);
	unlink(path);
	ck_assert_msg(status == 0, "tshark failed (status %d): %s", status, flagged);
	ck_assert_msg(nflagged == 0, "tshark flags %zu of %zu frames:\n%s", nflagged, out->n,
		      flagged);
}

/* Removes every nth data frame (a frame with payload) of a copy: lost perf samples. */
static void lose_data(struct frl *l, size_t nth)
{
	size_t i, k = 0;

	for (i = l->n; nth && i-- > 0;) {
		struct pkt_info in;

		ck_assert_int_eq(pkt_parse(l->v[i].b, l->v[i].len, &in), 0);
		if (in.payload_len && ++k % nth == 0)
			frl_remove(l, i);
	}
}

/* The run's output, frame by frame, reads as one clean TCP conversation: to our parser
 * and to tshark. */
static void assert_clean_conversation(const struct run *r)
{
	assert_tcp_order(&r->out, &r->c);
	assert_tshark_clean(&r->out);
}

/* Two node copies of one conversation as the agents synthesize it (SYN, SYN-ACK, ACK,
 * data both ways, FIN/ACK from each side, last ACK), differently segmented, the second
 * `late` behind the first (late 0: one node's copy only), the first missing every
 * lose_a-th data frame (0: none) that the second brings. live: dedup_expire() every
 * 100 ms, for 10 s after the last frame; else offline: all frames, then dedup_flush().
 * The output must be every byte once and read as a clean conversation. */
static void conversation_case(uint64_t late, uint64_t skew, unsigned mtu_a, unsigned mtu_b,
			      bool live, uint16_t cport, size_t lose_a)
{
	struct run r;

	run_setup(&r, cport, 12000, 40000, cport,
		  &(struct setup){ .skew = skew,
				   .mtu_a = mtu_a,
				   .mtu_b = mtu_b,
				   .msg = 2500,
				   .b_late = (int64_t)late,
				   .log = true });
	run_gen_a(&r);
	lose_data(&r.la, lose_a);
	if (late)
		run_gen_b(&r);
	run_merge(&r);
	if (live) {
		feed_live(r.d, &r.s, &r.all, 100 * MS, run_last_ts(&r) + skew + 5 * SEC);
	} else {
		feed(r.d, &r.s, &r.all, false);
		dedup_flush(r.d);
	}
	run_finish(&r);

	sink_assert_exact(&r.s, 0, true);
	ck_assert_uint_eq(r.st.flows_total, 1);
	ck_assert_uint_eq(r.st.flows_active, 0); /* the flow ended (expiry or flush) */
	assert_clean_conversation(&r);
	run_end(&r);
}

/* The copies interleave (5 us apart): each FIN of the first copy is held until the
 * second's confirms it; the last ACK must not overtake the FIN it acknowledges. */
START_TEST(test_conversation_clean_interleaved)
{
	conversation_case(5000, 2 * SEC, 1000, 1450, true, 41001, 0);
	conversation_case(5000, 2 * SEC, 1450, 1000, true, 41002, 0);
}
END_TEST

/* Second copy 1.5 s late (default skew 2 s), and 3 s late with skew 4 s: the first
 * copy's FINs and last ACK wait for it. */
START_TEST(test_conversation_clean_late_copy)
{
	conversation_case(1500 * MS, 2 * SEC, 1000, 1450, true, 41003, 0);
	conversation_case(1500 * MS, 2 * SEC, 1450, 1000, true, 41004, 0);
	conversation_case(3 * SEC, 4 * SEC, 1000, 1450, true, 41005, 0);
}
END_TEST

/* One node's copy only, a young flow: dedup_expire() delivers the held FINs after skew,
 * in order, not earlier in time than what the flow already emitted, then the last ACK. */
START_TEST(test_conversation_clean_fins_expired)
{
	conversation_case(0, 2 * SEC, 1000, 1000, true, 41006, 0);
	conversation_case(0, 2 * SEC, 1450, 1450, true, 41007, 0);
}
END_TEST

/* Offline (--read, then flush): whatever is still held goes out at the flush. */
START_TEST(test_conversation_clean_offline)
{
	conversation_case(5000, 2 * SEC, 1000, 1450, false, 41008, 0);
	conversation_case(1500 * MS, 2 * SEC, 1450, 1000, false, 41009, 0);
	conversation_case(0, 2 * SEC, 1000, 1000, false, 41010, 0);
}
END_TEST

/* The first copy loses data frames the second brings (interleaved, 50 ms and 1.5 s
 * later): what the first copy sends past such a hole waits for the filler instead of
 * reaching the tools ahead of it (analysers: "previous segment not captured", then the
 * filler as a retransmission). */
START_TEST(test_conversation_clean_holes_filled)
{
	conversation_case(5000, 2 * SEC, 1000, 1450, true, 41011, 5);
	conversation_case(50 * MS, 2 * SEC, 1450, 1000, true, 41012, 4);
	conversation_case(50 * MS, 2 * SEC, 1000, 1450, false, 41013, 3);
	conversation_case(1500 * MS, 2 * SEC, 1450, 1000, true, 41014, 7);
}
END_TEST

/* Half-close, one node's copy (a young flow: its FINs are held for skew): the server
 * goes on sending after the client's FIN, acknowledging it. While that FIN is held
 * those segments go out with their ack cut to what the client direction emitted
 * (checksum fixed); the FINs and the last ACK follow in order. */
START_TEST(test_conversation_clean_half_close)
{
	const struct copy_opts *o;
	struct gen_ctx g;
	uint16_t ip_id = 1;
	struct run r;
	uint32_t c1, s1;
	uint64_t ts;

	run_setup(&r, 41011, 3000, 8000, 11, &(struct setup){ .log = true });
	o = &r.a;
	ts = o->t0;
	g = (struct gen_ctx){ .out = &r.la, .ts = &ts, .step = o->step, .src = o->src };
	c1 = r.c.isn[0] + 1;
	s1 = r.c.isn[1] + 1;
	gen_seg(&g, &r.c, o, 0, r.c.isn[0], 0, PKT_TCP_SYN, NULL, 0, &ip_id);
	gen_seg(&g, &r.c, o, 1, r.c.isn[1], c1, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0, &ip_id);
	gen_seg(&g, &r.c, o, 0, c1, s1, PKT_TCP_ACK, NULL, 0, &ip_id);
	gen_seg(&g, &r.c, o, 0, c1, s1, PKT_TCP_ACK | PKT_TCP_PSH, r.c.data[0], 3000, &ip_id);
	gen_seg(&g, &r.c, o, 1, s1, c1 + 3000, PKT_TCP_ACK | PKT_TCP_PSH, r.c.data[1], 5000,
		&ip_id);
	gen_seg(&g, &r.c, o, 0, c1 + 3000, s1 + 5000, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0, &ip_id);
	gen_seg(&g, &r.c, o, 1, s1 + 5000, c1 + 3001, PKT_TCP_ACK | PKT_TCP_PSH, r.c.data[1] + 5000,
		3000, &ip_id);
	gen_seg(&g, &r.c, o, 1, s1 + 8000, c1 + 3001, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0, &ip_id);
	gen_seg(&g, &r.c, o, 0, c1 + 3001, s1 + 8001, PKT_TCP_ACK, NULL, 0, &ip_id);
	run_merge(&r);
	feed_live(r.d, &r.s, &r.all, 100 * MS, run_last_ts(&r) + 5 * SEC);
	run_finish(&r);

	sink_assert_exact(&r.s, 0, true); /* includes: every checksum valid */
	/* Every frame went out once: the cut ones too, nothing was dropped. */
	ck_assert_uint_eq(r.st.emitted_packets, r.all.n);
	ck_assert_uint_eq(r.st.dropped_packets, 0);
	assert_clean_conversation(&r);
	run_end(&r);
}
END_TEST

static Suite *dedup_suite(void)
{
	Suite *s = suite_create("tvn_dedup");
	TCase *b = tcase_create("bytes"), *o = tcase_create("modes"), *l = tcase_create("life"),
	      *lg = tcase_create("long"), *cv = tcase_create("conversation");

	tcase_add_test(b, test_identical_copies);
	tcase_add_test(b, test_different_segmentation);
	tcase_add_test(b, test_odd_segmentation);
	tcase_add_test(b, test_vlan_segmentation);
	tcase_add_test(b, test_late_copy_3s);
	tcase_add_test(b, test_rst_once);
	tcase_add_test(o, test_many_sources);
	tcase_add_test(b, test_closed_flow_retained_for_skew);
	tcase_add_test(b, test_gaps_filled_by_other_copy);
	tcase_add_test(b, test_many_holes);
	tcase_add_test(b, test_too_many_holes_counted);
	tcase_add_test(b, test_last_ack_past_hole_kept);
	tcase_add_test(b, test_hole_in_both_copies);
	tcase_add_test(b, test_hole_released_after_skew);
	tcase_add_test(b, test_hole_fill_conflict_first_copy_wins);
	tcase_add_test(b, test_partial_overlap_conflict);
	tcase_add_test(b, test_conflict_in_ring_window);
	tcase_add_test(b, test_mid_stream_copy);
	tcase_add_test(b, test_mid_stream_handshake_not_absolute);
	tcase_add_test(b, test_meta_from_start_is_absolute);
	tcase_add_test(b, test_agent_shutdown_fins_held);
	tcase_add_test(b, test_agent_restart_mid_flow);
	tcase_add_test(b, test_agent_restart_with_handshake);
	tcase_add_test(b, test_agent_restart_single_copy);
	tcase_add_test(b, test_agent_restart_after_expiry);
	tcase_add_test(b, test_retransmits_within_copy);
	tcase_add_test(b, test_seq_wraparound);
	tcase_add_test(b, test_tuple_reuse_same_isn);
	tcase_add_test(b, test_tuple_reuse_new_isn);
	tcase_add_test(b, test_isn_collision_kept_apart);
	tcase_add_test(b, test_ipv6);
	tcase_add_test(b, test_overlap_conflict);
	tcase_add_test(b, test_table_full_passes_through);
	tcase_add_test(b, test_per_source_limit);
	tcase_add_test(o, test_flow_mode_keeps_first_source);
	tcase_add_test(o, test_flow_mode_failover);
	tcase_add_test(o, test_content_mode);
	tcase_add_test(o, test_content_mode_segmentation_differs);
	tcase_add_test(o, test_packet_mode);
	tcase_add_test(o, test_off_mode);
	tcase_add_test(o, test_udp_passes_through);
	tcase_add_test(l, test_expiry_reports_counters);
	tcase_add_test(l, test_orientation_from_syn);
	tcase_add_test(l, test_foreach_and_flush);
	tcase_add_test(l, test_api_basics);
	suite_add_tcase(s, b);
	suite_add_tcase(s, o);
	suite_add_tcase(s, l);
	/* Each case runs tshark a few times (about a second each, more under ASan). */
	tcase_set_timeout(cv, 120);
	tcase_add_test(cv, test_conversation_clean_interleaved);
	tcase_add_test(cv, test_conversation_clean_late_copy);
	tcase_add_test(cv, test_conversation_clean_fins_expired);
	tcase_add_test(cv, test_conversation_clean_offline);
	tcase_add_test(cv, test_conversation_clean_half_close);
	tcase_add_test(cv, test_conversation_clean_holes_filled);
	suite_add_tcase(s, cv);
	/* ~5 GB of checksummed frames: seconds, more under ASan. */
	tcase_set_timeout(lg, 300);
	tcase_add_test(lg, test_long_flow);
	suite_add_tcase(s, lg);
	return s;
}

int main(void)
{
	return check_run(dedup_suite());
}
