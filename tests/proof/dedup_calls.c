/* tests/proof/dedup_calls.c - logs every call into tvn/dedup.h, for refactors that must
 * not change what dedup does (tests/proof/dedup_calls.sh).
 *
 * Linked into a dedup unit suite or fuzz_dedup with -Wl,--wrap=dedup_new,... (and, in a
 * unit suite, --wrap=_tcase_add_test): every call of the public API is written to the
 * file named by $DEDUP_CALLS_LOG with its arguments (frames in hex) and what it returned,
 * every frame handed to emit, every flow handed to end or to a dedup_foreach() callback
 * (all fields), and the counters after each input, metadata, expiry and flush. In a unit
 * suite each test's calls follow a line "== test NAME", so logs of suites that were cut
 * differently can be compared test by test. Nothing here changes what is passed on. */
#include <check.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tvn/dedup.h"

static FILE *out;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	va_list ap;

	if (!out) {
		const char *p = getenv("DEDUP_CALLS_LOG");

		out = fopen(p ? p : "/dev/null", "a");
		if (!out)
			abort();
	}
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
}

static void hex(const char *what, const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	logf_(" %s=", what);
	for (i = 0; i < n; i++) {
		putc("0123456789abcdef"[b[i] >> 4], out);
		putc("0123456789abcdef"[b[i] & 15], out);
	}
}

/* A frame: its first 64 bytes (the headers) in hex and a SHA-256 of all of it (a long
 * flow's payload in hex would be gigabytes). */
static void log_frame(const uint8_t *frame, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	hex("frame", frame, len < 64 ? len : 64);
	if (!EVP_Digest(frame, len, md, &mdlen, EVP_sha256(), NULL))
		abort();
	hex("sha256", md, mdlen);
}

static void log_src(const struct dedup_src *s)
{
	if (s) {
		hex("src", s->addr, sizeof(s->addr));
		logf_("/%u", s->vni);
	} else {
		logf_(" src=NULL");
	}
}

static void log_stats(const struct dedup *d);

static void log_info(const char *what, const struct dedup_flow_info *f)
{
	unsigned i;

	logf_("  %s", what);
	hex("tuple", &f->tuple, sizeof(f->tuple));
	logf_(" isn=%u,%u first=%llu last=%llu n_sources=%u kept=%d", f->isn[0], f->isn[1],
	      (unsigned long long)f->first_ns, (unsigned long long)f->last_ns, f->n_sources,
	      f->kept_source);
	for (i = 0; i < f->n_sources && i < DEDUP_MAX_SOURCES; i++)
		log_src(&f->sources[i]);
	logf_(" in=%llu/%llu out=%llu/%llu dropped=%llu/%llu conflicts=%llu mid=%d meta=%d",
	      (unsigned long long)f->pkts_in, (unsigned long long)f->bytes_in,
	      (unsigned long long)f->pkts_out, (unsigned long long)f->bytes_out,
	      (unsigned long long)f->pkts_dropped, (unsigned long long)f->bytes_dropped,
	      (unsigned long long)f->overlap_conflicts, f->mid_stream, f->have_meta);
	if (f->have_meta)
		logf_(" meta=%d,%d,%u,%u,%llu,%llu,%llu,%lld,%.64s,%.16s,%.16s", f->meta.event,
		      f->meta.from_start, f->meta.isn[0], f->meta.isn[1],
		      (unsigned long long)f->meta.bytes[0], (unsigned long long)f->meta.bytes[1],
		      (unsigned long long)f->meta.lost, (long long)f->meta.pid, f->meta.node,
		      f->meta.role, f->meta.comm);
	logf_("\n");
}

/* What dedup_new() was given, kept per instance so emit and end can be logged. */
struct wrapped {
	dedup_emit_fn emit;
	dedup_end_fn end;
	void *ctx;
	struct dedup *d;
};

static void w_emit(void *ctx, const uint8_t *frame, size_t len, uint64_t ts,
		   const struct dedup_src *src)
{
	struct wrapped *w = ctx;

	logf_("  emit len=%zu ts=%llu", len, (unsigned long long)ts);
	log_src(src);
	log_frame(frame, len);
	logf_("\n");
	w->emit(w->ctx, frame, len, ts, src);
}

static void w_end(void *ctx, const struct dedup_flow_info *f)
{
	struct wrapped *w = ctx;

	log_info("end", f);
	w->end(w->ctx, f);
}

#define MAX_INST 64
static struct wrapped *inst[MAX_INST];

struct dedup *__real_dedup_new(const struct dedup_cfg *cfg, dedup_emit_fn emit, dedup_end_fn end,
			       void *ctx);
struct dedup *__wrap_dedup_new(const struct dedup_cfg *cfg, dedup_emit_fn emit, dedup_end_fn end,
			       void *ctx)
{
	struct wrapped *w = calloc(1, sizeof(*w));
	struct dedup *d;
	unsigned i;

	if (!w)
		abort();
	if (cfg)
		logf_("dedup_new mode=%d max_flows=%llu per_source=%llu timeout=%llu skew=%llu "
		      "window=%llu emit=%d end=%d",
		      cfg->mode, (unsigned long long)cfg->max_flows,
		      (unsigned long long)cfg->max_flows_per_source,
		      (unsigned long long)cfg->flow_timeout_ns, (unsigned long long)cfg->skew_ns,
		      (unsigned long long)cfg->window_ns, !!emit, !!end);
	else
		logf_("dedup_new cfg=NULL");
	w->emit = emit;
	w->end = end;
	w->ctx = ctx;
	d = __real_dedup_new(cfg, emit ? w_emit : NULL, end ? w_end : NULL, w);
	logf_(" -> %s\n", d ? "ok" : "NULL");
	if (!d) {
		free(w);
		return NULL;
	}
	w->d = d;
	for (i = 0; i < MAX_INST && inst[i]; i++)
		;
	if (i == MAX_INST)
		abort();
	inst[i] = w;
	return d;
}

void __real_dedup_free(struct dedup *d);
void __wrap_dedup_free(struct dedup *d)
{
	unsigned i;

	logf_("dedup_free%s\n", d ? "" : " NULL");
	__real_dedup_free(d);
	for (i = 0; d && i < MAX_INST; i++) {
		if (inst[i] && inst[i]->d == d) {
			free(inst[i]);
			inst[i] = NULL;
		}
	}
}

void __real_dedup_input(struct dedup *d, const uint8_t *frame, size_t len,
			const struct pkt_info *info, const struct dedup_src *src, uint64_t ts_ns);
void __wrap_dedup_input(struct dedup *d, const uint8_t *frame, size_t len,
			const struct pkt_info *info, const struct dedup_src *src, uint64_t ts_ns)
{
	logf_("dedup_input len=%zu ts=%llu info=%d", len, (unsigned long long)ts_ns, !!info);
	log_src(src);
	if (frame)
		log_frame(frame, len);
	logf_("\n");
	__real_dedup_input(d, frame, len, info, src, ts_ns);
	log_stats(d);
}

void __real_dedup_meta(struct dedup *d, const struct meta_flow *m, const struct dedup_src *src,
		       uint64_t ts_ns);
void __wrap_dedup_meta(struct dedup *d, const struct meta_flow *m, const struct dedup_src *src,
		       uint64_t ts_ns)
{
	logf_("dedup_meta ts=%llu", (unsigned long long)ts_ns);
	log_src(src);
	if (m) {
		hex("tuple", &m->tuple, sizeof(m->tuple));
		logf_(" event=%d from_start=%d isn=%u,%u role=%.16s node=%.64s", m->event,
		      m->from_start, m->isn[0], m->isn[1], m->role, m->node);
	}
	logf_("\n");
	__real_dedup_meta(d, m, src, ts_ns);
	log_stats(d);
}

void __real_dedup_expire(struct dedup *d, uint64_t now_ns);
void __wrap_dedup_expire(struct dedup *d, uint64_t now_ns)
{
	logf_("dedup_expire now=%llu\n", (unsigned long long)now_ns);
	__real_dedup_expire(d, now_ns);
	log_stats(d);
}

void __real_dedup_flush(struct dedup *d);
void __wrap_dedup_flush(struct dedup *d)
{
	logf_("dedup_flush\n");
	__real_dedup_flush(d);
	log_stats(d);
}

void __real_dedup_get_stats(const struct dedup *d, struct dedup_stats *st);
static void log_stats(const struct dedup *d)
{
	struct dedup_stats st;

	if (!d)
		return;
	__real_dedup_get_stats(d, &st);
	hex("  stats", &st, sizeof(st));
	logf_("\n");
}

void __wrap_dedup_get_stats(const struct dedup *d, struct dedup_stats *st)
{
	logf_("dedup_get_stats\n");
	__real_dedup_get_stats(d, st);
	if (st)
		hex("  ->", st, sizeof(*st));
	logf_("\n");
}

struct fe {
	int (*fn)(void *ctx, const struct dedup_flow_info *f);
	void *ctx;
};

static int w_each(void *ctx, const struct dedup_flow_info *f)
{
	struct fe *e = ctx;
	int r;

	log_info("each", f);
	r = e->fn(e->ctx, f);
	logf_("  each -> %d\n", r);
	return r;
}

int __real_dedup_foreach(const struct dedup *d,
			 int (*fn)(void *ctx, const struct dedup_flow_info *f), void *ctx);
int __wrap_dedup_foreach(const struct dedup *d,
			 int (*fn)(void *ctx, const struct dedup_flow_info *f), void *ctx)
{
	struct fe e = { fn, ctx };
	int r;

	logf_("dedup_foreach\n");
	r = __real_dedup_foreach(d, fn ? w_each : NULL, &e);
	logf_("  -> %d\n", r);
	return r;
}

int __real_dedup_mode_parse(const char *s, enum dedup_mode *mode);
int __wrap_dedup_mode_parse(const char *s, enum dedup_mode *mode)
{
	int r = __real_dedup_mode_parse(s, mode);

	logf_("dedup_mode_parse %s -> %d %d\n", s ? s : "NULL", r,
	      r == 0 && mode ? (int)*mode : -1);
	return r;
}

const char *__real_dedup_mode_name(enum dedup_mode mode);
const char *__wrap_dedup_mode_name(enum dedup_mode mode)
{
	const char *r = __real_dedup_mode_name(mode);

	logf_("dedup_mode_name %d -> %s\n", mode, r);
	return r;
}

size_t __real_dedup_flow_bytes(void);
size_t __wrap_dedup_flow_bytes(void)
{
	size_t r = __real_dedup_flow_bytes();

	logf_("dedup_flow_bytes -> %zu\n", r);
	return r;
}

#ifndef DEDUP_CALLS_FUZZ
/* Each test registered goes through a trampoline that names it in the log first. */
#define MAX_TESTS 128
static const TTest *tests[MAX_TESTS];
static TTest copies[MAX_TESTS];
static unsigned ntests;

static void named(unsigned k, int i)
{
	logf_("== test %s\n", tests[k]->name);
	tests[k]->fn(i);
}

#define T1(g, j)                                                                                   \
	static void tr_##g##_##j(int i)                                                            \
	{                                                                                          \
		named(g * 8 + j, i);                                                               \
	}
#define T8(g) T1(g, 0) T1(g, 1) T1(g, 2) T1(g, 3) T1(g, 4) T1(g, 5) T1(g, 6) T1(g, 7)
T8(0)
T8(1) T8(2) T8(3) T8(4) T8(5) T8(6) T8(7) T8(8) T8(9) T8(10) T8(11) T8(12) T8(13) T8(14) T8(15)
#define R8(g)                                                                                      \
	tr_##g##_0, tr_##g##_1, tr_##g##_2, tr_##g##_3, tr_##g##_4, tr_##g##_5, tr_##g##_6,        \
		tr_##g##_7
	static void (*const tramps[MAX_TESTS])(int) = { R8(0),	R8(1),	R8(2),	R8(3),
							R8(4),	R8(5),	R8(6),	R8(7),
							R8(8),	R8(9),	R8(10), R8(11),
							R8(12), R8(13), R8(14), R8(15) };

void __real__tcase_add_test(TCase *tc, const TTest *ttest, int _signal, int allowed_exit_value,
			    int start, int end);
void __wrap__tcase_add_test(TCase *tc, const TTest *ttest, int _signal, int allowed_exit_value,
			    int start, int end)
{
	unsigned k = ntests++;

	if (k >= MAX_TESTS)
		abort();
	tests[k] = ttest;
	copies[k] = *ttest;
	copies[k].fn = tramps[k];
	__real__tcase_add_test(tc, &copies[k], _signal, allowed_exit_value, start, end);
}
#endif
