/* tests/unit/test_tvn_dedup_bytes.c - Check suite for tvn/dedup_bytes.c, the byte
 * engine: copies segmented alike or differently, late copies, RSTs, holes and their
 * bound, retransmissions, sequence wrap-around, IPv6, overlap conflicts and the rings, a
 * long flow. Fixtures: dedup_harness.h. */
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

static Suite *bytes_suite(void)
{
	Suite *s = suite_create("tvn_dedup_bytes");
	TCase *b = tcase_create("bytes"), *lg = tcase_create("long");

	tcase_add_test(b, test_identical_copies);
	tcase_add_test(b, test_different_segmentation);
	tcase_add_test(b, test_odd_segmentation);
	tcase_add_test(b, test_vlan_segmentation);
	tcase_add_test(b, test_late_copy_3s);
	tcase_add_test(b, test_rst_once);
	tcase_add_test(b, test_many_holes);
	tcase_add_test(b, test_too_many_holes_counted);
	tcase_add_test(b, test_conflict_in_ring_window);
	tcase_add_test(b, test_retransmits_within_copy);
	tcase_add_test(b, test_seq_wraparound);
	tcase_add_test(b, test_ipv6);
	tcase_add_test(b, test_overlap_conflict);
	suite_add_tcase(s, b);
	/* ~5 GB of checksummed frames: seconds, more under ASan. */
	tcase_set_timeout(lg, 300);
	tcase_add_test(lg, test_long_flow);
	suite_add_tcase(s, lg);
	return s;
}

int main(void)
{
	return check_run(bytes_suite());
}
