/* tests/unit/dedup_harness.c - the dedup suites' fixtures, sink and scenario steps (what
 * they are: dedup_harness.h). */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dedup_harness.h"
#include "isn.h"

void frl_add(struct frl *l, const uint8_t *b, size_t len, uint64_t ts, int src, int dir)
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

void frl_free(struct frl *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].b);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

void frl_remove(struct frl *l, size_t i)
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
void frl_merge(struct frl *dst, struct frl *src)
{
	size_t i;

	for (i = 0; i < src->n; i++) {
		frl_add(dst, src->v[i].b, src->v[i].len, src->v[i].ts, src->v[i].src,
			src->v[i].dir);
	}
	frl_free(src);
	qsort(dst->v, dst->n, sizeof(dst->v[0]), fr_cmp);
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

void conn_init4(struct conn *c, const char *cli, uint16_t cport, const char *srv, uint16_t sport,
		size_t c2s, size_t s2c, uint32_t seed)
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

void set_ttl(uint8_t *b, size_t len, uint8_t ttl)
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

void gen_seg(struct gen_ctx *g, const struct conn *c, const struct copy_opts *o, int dir,
	     uint32_t seq, uint32_t ack, uint8_t flags, const uint8_t *p, size_t n, uint16_t *ip_id)
{
	struct pkt_l2 l2 = { .src = { 2, 0, 0, 0, dir, o->mac_last },
			     .dst = { 2, 0, 0, 0, !dir, o->mac_last },
			     .vlan = o->vlan };
	struct pkt_tcp tcp = { .seq = seq, .ack = ack, .flags = flags };

	if (o->agent && (flags & PKT_TCP_SYN)) {
		tcp.mss = (uint16_t)pkt_mss(o->mtu, c->t[dir].family);
		tcp.wscale = 14;
	}
	g->dir = dir;
	ck_assert_int_eq(pkt_segment(&l2, &c->t[dir], &tcp, ip_id, o->mtu, p, n, gen_emit, g), 0);
}

/* Appends one node's copy of c to out. */
void gen_copy(struct frl *out, const struct conn *c, const struct copy_opts *o)
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
			if (o->agent)
				gen_seg(&g, c, o, !dir, SEQ(!dir), SEQ(dir), PKT_TCP_ACK, NULL, 0,
					&ip_id);
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

void sink_add(struct sink *s, const struct conn *c)
{
	unsigned i = s->nconns++, d;

	ck_assert_uint_le(s->nconns, MAX_CONNS);
	s->c[i] = c;
	for (d = 0; d < 2; d++) {
		s->got[i][d] = calloc(1, c->len[d] + 1);
		s->cnt[i][d] = calloc(1, c->len[d] + 1);
	}
}

void sink_reset(struct sink *s)
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

void sink_emit(void *ctx, const uint8_t *frame, size_t len, uint64_t ts,
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

void sink_end(void *ctx, const struct dedup_flow_info *f)
{
	struct sink *s = ctx;

	if (s->nended < 8)
		s->ended[s->nended] = *f;
	s->nended++;
}

/* Every byte of connection i delivered exactly once and equal to the original; SYN and
 * FIN once per direction when expect_ctl. */
void sink_assert_exact(const struct sink *s, unsigned i, bool expect_ctl)
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

struct dedup_cfg default_cfg(enum dedup_mode mode)
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

void sink_init_srcs(struct sink *s)
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
void fr_parse(const struct fr *f, struct pkt_info *in)
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
void feed_range(struct dedup *d, struct sink *s, const struct frl *l, size_t from, size_t to)
{
	for (; from < to; from++)
		input_frame(d, s, &l->v[from]);
}

/* Feeds frames in order; with expire, calls dedup_expire(ts) before each, as the tvn
 * loop does. */
void feed(struct dedup *d, struct sink *s, const struct frl *l, bool expire)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (expire)
			dedup_expire(d, l->v[i].ts);
		input_frame(d, s, &l->v[i]);
	}
}

size_t count_src(const struct frl *l, int src)
{
	size_t i, n = 0;

	for (i = 0; i < l->n; i++)
		n += l->v[i].src == src;
	return n;
}

/* Keeps the first n frames of l: the node's agent stopped there. */
void frl_truncate(struct frl *l, size_t n)
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

/* A fresh engine and sink for the connection cli:cport -> srv:443 with c2s and s2c bytes
 * of seed's pattern (no cport: none, the test makes its own), set up as su says. */
void run_setup(struct run *r, uint16_t cport, size_t c2s, size_t s2c, uint32_t seed,
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
	r->a.agent = r->b.agent = su->agent;
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
void run_conns(struct run *r, struct conn *c, unsigned n, uint16_t cport, size_t len, uint32_t seed)
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
void run_flip_b(struct run *r, size_t at)
{
	r->cb = r->c;
	r->cb.data[0] = malloc(r->c.len[0] + 1);
	ck_assert_ptr_nonnull(r->cb.data[0]);
	memcpy(r->cb.data[0], r->c.data[0], r->c.len[0]);
	if (at < r->c.len[0])
		r->cb.data[0][at] ^= 0xff;
}

void run_gen_a(struct run *r)
{
	gen_copy(&r->la, &r->c, &r->a);
}

void run_gen_b(struct run *r)
{
	gen_copy(&r->lb, r->cb.data[0] ? &r->cb : &r->c, &r->b);
}

void run_gen(struct run *r)
{
	run_gen_a(r);
	run_gen_b(r);
}

/* Copy o of connection c, merged by time into what is fed. */
void run_copy(struct run *r, const struct conn *c, const struct copy_opts *o)
{
	struct frl l = { 0 };

	gen_copy(&l, c, o);
	frl_merge(&r->all, &l);
}

/* Both copies of connection c, merged into what is fed. */
void run_copies(struct run *r, const struct conn *c)
{
	run_copy(r, c, &r->a);
	run_copy(r, c, &r->b);
}

void run_finish(struct run *r)
{
	dedup_get_stats(r->d, &r->st);
}

/* Moves the prepared copies (A's, then B's) into what is fed, merged by time. */
void run_merge(struct run *r)
{
	if (r->la.n)
		frl_merge(&r->all, &r->la);
	if (r->lb.n)
		frl_merge(&r->all, &r->lb);
}

/* Feeds the prepared copies and everything merged before them, in time order, and takes
 * the stats. */
void run_feed(struct run *r, bool expire)
{
	run_merge(r);
	feed(r->d, &r->s, &r->all, expire);
	run_finish(r);
}

/* Copies a and b of the connection, merged by time and fed (expiring as tvn does). */
void run_both(struct run *r)
{
	run_gen(r);
	run_feed(r, true);
}

void run_flush(struct run *r)
{
	dedup_flush(r->d);
	run_finish(r);
}

uint64_t run_last_ts(const struct run *r)
{
	return r->all.v[r->all.n - 1].ts;
}

/* What a connection held back for skew after its last frame (FINs waiting for the other
 * copy's) goes out; takes the stats. */
void run_expire_past_skew(struct run *r)
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

void run_end(struct run *r)
{
	run_free(r);
	conn_free(&r->c);
}

/* run_end() for a run that also followed the n connections of run_conns(). */
void run_end_conns(struct run *r, struct conn *c, unsigned n)
{
	unsigned i;

	run_end(r);
	for (i = 0; i < n; i++)
		conn_free(&c[i]);
}

/* The connection ends at `at`: still in the table 1 ns before, ended 1 ns after. */
void assert_ends_at(struct run *r, uint64_t at)
{
	dedup_expire(r->d, at - 1);
	ck_assert_uint_eq(r->s.nended, 0);
	dedup_expire(r->d, at + 1);
	ck_assert_uint_eq(r->s.nended, 1);
}

/* The connection left the table by expiry. */
void assert_expired(struct run *r)
{
	dedup_get_stats(r->d, &r->st);
	ck_assert_uint_eq(r->st.flows_expired, 1);
	ck_assert_uint_eq(r->st.flows_active, 0);
}

void assert_fins_once(const struct sink *s)
{
	ck_assert_uint_eq(s->fin[0][0], 1);
	ck_assert_uint_eq(s->fin[0][1], 1);
}

/* Announces the connection at the start of a copy: the agent's start record. */
void meta_start(struct meta_flow *m, const struct ecv_tuple *t)
{
	memset(m, 0, sizeof(*m));
	m->event = META_START;
	m->tuple = *t;
}

/* Copy A's agent restarted: it announces the flow again as mid-stream and counts offsets
 * from its restart, `at` bytes into each direction. c2 is the connection as it sees it
 * (ISNs `at` lower), a2 its copy (the caller sets when it starts). */
void restarted_copy(const struct run *r, size_t at, struct conn *c2, struct copy_opts *a2)
{
	*c2 = r->c;
	c2->isn[0] -= (uint32_t)at;
	c2->isn[1] -= (uint32_t)at;
	*a2 = r->a;
	a2->handshake = false;
	a2->from[0] = a2->from[1] = at;
}

/* Index of the first frame of l at or after ts. */
size_t frl_first_at(const struct frl *l, uint64_t ts)
{
	size_t i;

	for (i = 0; i < l->n && l->v[i].ts < ts; i++)
		;
	return i;
}

/* A single copy, where nothing is a duplicate: the run delivered exactly what it was fed
 * (every frame, and every byte, SYN and FIN of the connection as often as the input had
 * it), as a sink fed the input itself counts it. */
void run_assert_as_input(const struct run *r)
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
