/* tests/unit/test_tvn_dedup.c - Check suite for tvn/dedup.c: the API, dispatch by mode
 * and the TCP path (copies with relative offsets, flow mode and its failover, agent
 * restarts, UDP). The other parts of the engine have their own suites:
 * test_tvn_dedup_flow.c, _bytes.c, _hold.c, _digest.c; the fixtures they share are in
 * dedup_harness.h. */
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

/* Copy A's agent restarts halfway: it announces the flow again as mid-stream and counts
 * offsets from its restart. The flow falls back to keeping the copy with absolute
 * offsets (B), so the stream stays exact. */
/* Each role's identity is kept apart from the latest record (flow log "ends"): the
 * client's container id survives its end record, which (process gone) has none. */
START_TEST(test_meta_ends_per_role)
{
	static const char cid[] =
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct meta_flow m;
	struct run r;

	run_setup(&r, 40009, 2000, 2000, 9, NULL);
	run_gen(&r);
	meta_start(&m, &r.c.t[0]);
	m.isn[0] = r.c.isn[0];
	m.isn[1] = r.c.isn[1];
	m.from_start = true;
	m.pid = 10;
	strcpy(m.role, "client");
	strcpy(m.comm, "curl");
	strcpy(m.container, cid);
	dedup_meta(r.d, &m, &r.s.srcs[0], r.a.t0 - 2000);
	m.pid = 20;
	strcpy(m.role, "server");
	strcpy(m.comm, "nginx");
	m.container[0] = '\0';
	dedup_meta(r.d, &m, &r.s.srcs[0], r.a.t0 - 1000);
	run_feed(&r, true);
	m.event = META_END;
	m.pid = 10;
	strcpy(m.role, "client");
	strcpy(m.comm, "curl");
	dedup_meta(r.d, &m, &r.s.srcs[0], r.a.t0 + 1000);
	dedup_flush(r.d);

	ck_assert_uint_eq(r.s.nended, 1);
	ck_assert_str_eq(r.s.ended[0].meta.comm, "curl");
	ck_assert_str_eq(r.s.ended[0].meta.container, "");
	ck_assert_int_eq(r.s.ended[0].ends[0].pid, 10);
	ck_assert_str_eq(r.s.ended[0].ends[0].comm, "curl");
	ck_assert_str_eq(r.s.ended[0].ends[0].container, cid);
	ck_assert_int_eq(r.s.ended[0].ends[1].pid, 20);
	ck_assert_str_eq(r.s.ended[0].ends[1].comm, "nginx");
	ck_assert_str_eq(r.s.ended[0].ends[1].container, "");
	run_end(&r);
}
END_TEST

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

static Suite *dedup_suite(void)
{
	Suite *s = suite_create("tvn_dedup");
	TCase *b = tcase_create("bytes"), *o = tcase_create("modes"), *l = tcase_create("life");

	tcase_add_test(b, test_mid_stream_copy);
	tcase_add_test(b, test_mid_stream_handshake_not_absolute);
	tcase_add_test(b, test_meta_from_start_is_absolute);
	tcase_add_test(b, test_meta_ends_per_role);
	tcase_add_test(b, test_agent_restart_mid_flow);
	tcase_add_test(b, test_agent_restart_with_handshake);
	tcase_add_test(b, test_agent_restart_single_copy);
	tcase_add_test(b, test_agent_restart_after_expiry);
	suite_add_tcase(s, b);
	tcase_add_test(o, test_flow_mode_keeps_first_source);
	tcase_add_test(o, test_flow_mode_failover);
	tcase_add_test(o, test_off_mode);
	tcase_add_test(o, test_udp_passes_through);
	suite_add_tcase(s, o);
	tcase_add_test(l, test_api_basics);
	suite_add_tcase(s, l);
	return s;
}

int main(void)
{
	return check_run(dedup_suite());
}
