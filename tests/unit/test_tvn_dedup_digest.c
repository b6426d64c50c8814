/* tests/unit/test_tvn_dedup_digest.c - Check suite for tvn/dedup_digest.c: content and
 * packet modes. Fixtures: dedup_harness.h. */
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

static Suite *digest_suite(void)
{
	Suite *s = suite_create("tvn_dedup_digest");
	TCase *o = tcase_create("modes");

	tcase_add_test(o, test_content_mode);
	tcase_add_test(o, test_content_mode_segmentation_differs);
	tcase_add_test(o, test_packet_mode);
	suite_add_tcase(s, o);
	return s;
}

int main(void)
{
	return check_run(digest_suite());
}
