/* tests/unit/test_tvn_dedup_flow.c - Check suite for tvn/dedup_flow.c, the flow table:
 * sources, table and per-source bounds, closed and expired flows, tuple reuse, flow
 * identity, orientation, what end and dedup_foreach() report. Fixtures: dedup_harness.h. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "dedup_harness.h"
#include "isn.h"

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

static Suite *flow_suite(void)
{
	Suite *s = suite_create("tvn_dedup_flow");
	TCase *o = tcase_create("modes"), *b = tcase_create("bytes"), *l = tcase_create("life");

	tcase_add_test(o, test_many_sources);
	suite_add_tcase(s, o);
	tcase_add_test(b, test_closed_flow_retained_for_skew);
	tcase_add_test(b, test_tuple_reuse_same_isn);
	tcase_add_test(b, test_tuple_reuse_new_isn);
	tcase_add_test(b, test_isn_collision_kept_apart);
	tcase_add_test(b, test_table_full_passes_through);
	tcase_add_test(b, test_per_source_limit);
	suite_add_tcase(s, b);
	tcase_add_test(l, test_expiry_reports_counters);
	tcase_add_test(l, test_orientation_from_syn);
	tcase_add_test(l, test_foreach_and_flush);
	suite_add_tcase(s, l);
	return s;
}

int main(void)
{
	return check_run(flow_suite());
}
