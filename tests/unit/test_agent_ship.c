/* tests/unit/test_agent_ship.c - TVN choice (rendezvous hashing) and VxLAN shipping over
 * loopback: datagrams carry the RFC 7348 header and the frame byte for byte, a flow
 * keeps one outer source port in 49152..65535, an unresolvable TVN fails cleanly and an
 * absent TVN never blocks the sender. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../agent/ship.h"
#include "check_run.h"
#include "vxlan.h"

#define TEST_PORT 4591 /* ecva test port range 45xx */

static void mk_flow(struct ecv_tuple *t, uint32_t i)
{
	uint8_t a[4] = { 10, 77, (uint8_t)(i >> 8), (uint8_t)i };
	uint8_t b[4] = { 10, 78, 0, 1 };
	uint8_t sa[16], sb[16];

	tuple_addr_from_v4(sa, a);
	tuple_addr_from_v4(sb, b);
	tuple_init(t, sa, (uint16_t)(30000 + i % 30000), sb, 443, IPPROTO_TCP);
}

static void tvn_ids(uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t a[4] = { 10, 96, 0, (uint8_t)(i + 1) }, a16[16];

		tuple_addr_from_v4(a16, a);
		ids[i] = ship_tvn_id(a16, 4789);
	}
}

START_TEST(rendezvous_same_for_both_directions)
{
	uint64_t ids[3];

	tvn_ids(ids, 3);
	for (uint32_t i = 0; i < 1000; i++) {
		struct ecv_tuple t, r;

		mk_flow(&t, i);
		tuple_reverse(&r, &t);
		ck_assert_uint_eq(ship_rendezvous(ids, 3, &t), ship_rendezvous(ids, 3, &r));
	}
}
END_TEST

START_TEST(rendezvous_spreads_evenly)
{
	unsigned count[3] = { 0 };
	uint64_t ids[3];

	tvn_ids(ids, 3);
	for (uint32_t i = 0; i < 30000; i++) {
		struct ecv_tuple t;

		mk_flow(&t, i);
		count[ship_rendezvous(ids, 3, &t)]++;
	}
	/* 10000 expected each; +-10% is > 20 standard deviations */
	for (int k = 0; k < 3; k++)
		ck_assert_msg(count[k] > 9000 && count[k] < 11000, "TVN %d got %u of 30000", k,
			      count[k]);
}
END_TEST

START_TEST(rendezvous_removal_moves_only_its_flows)
{
	uint64_t ids[3], two[2];
	unsigned moved = 0;

	tvn_ids(ids, 3);
	two[0] = ids[0];
	two[1] = ids[2]; /* TVN 1 removed */
	for (uint32_t i = 0; i < 10000; i++) {
		struct ecv_tuple t;
		size_t before, after;

		mk_flow(&t, i);
		before = ship_rendezvous(ids, 3, &t);
		after = ship_rendezvous(two, 2, &t);
		if (before == 1) {
			moved++;
			continue;
		}
		ck_assert_uint_eq(two[after], ids[before]);
	}
	ck_assert_uint_gt(moved, 0);
}
END_TEST

static int udp_listener(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	ck_assert_int_ge(fd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static ssize_t recv_one(int fd, uint8_t *buf, size_t cap, uint16_t *sport)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);
	ssize_t n;

	/* generous bound: loopback delivery is synchronous with sendmmsg() */
	if (poll(&pfd, 1, 5000) != 1)
		return -1;
	n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)&from, &flen);
	*sport = ntohs(from.sin_port);
	return n;
}

START_TEST(ships_vxlan_with_stable_source_port)
{
	const char *tvns[] = { "127.0.0.1:4591" };
	struct ship_cfg cfg = { .tvns = tvns, .n_tvns = 1, .vni = 77, .max_frame = 1600 };
	uint8_t frame[100], buf[2048];
	struct ecv_tuple t, r;
	uint16_t port1, port2;
	const uint8_t *inner;
	size_t inner_len;
	struct ship *s;
	uint32_t vni;
	int fd;

	fd = udp_listener(TEST_PORT);
	s = ship_new(&cfg);
	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)i;
	mk_flow(&t, 7);
	tuple_reverse(&r, &t);
	ck_assert_int_eq(ship_send(s, &t, frame, sizeof(frame)), 0);
	ck_assert_int_eq(ship_send(s, &r, frame, 60), 0);
	ship_flush(s);
	ck_assert_uint_eq(ship_stats(s)->tx_packets, 2);
	ck_assert_uint_eq(ship_stats(s)->tx_bytes, 2 * VXLAN_HDR_LEN + 160);

	ck_assert_int_eq(recv_one(fd, buf, sizeof(buf), &port1), VXLAN_HDR_LEN + 100);
	ck_assert_int_eq(vxlan_decode(buf, VXLAN_HDR_LEN + 100, 1, &vni, &inner, &inner_len), 0);
	ck_assert_uint_eq(vni, 77);
	ck_assert_uint_eq(inner_len, 100);
	ck_assert_mem_eq(inner, frame, 100);
	ck_assert_int_eq(recv_one(fd, buf, sizeof(buf), &port2), VXLAN_HDR_LEN + 60);
	/* both directions of the flow leave from one port, in the RFC 7348 range */
	ck_assert_uint_eq(port1, port2);
	ck_assert_uint_ge(port1, 49152);

	/* oversized frames are refused and counted, not truncated */
	ck_assert_int_eq(ship_send(s, &t, buf, 1601), -EMSGSIZE);
	ck_assert_uint_eq(ship_stats(s)->tx_errors, 1);
	ship_free(s);
	close(fd);
}
END_TEST

/* A segment train (equal-sized frames, a shorter last one) leaves as UDP GSO sends where
 * the kernel can: the TVN must still get one datagram per frame, each intact, in order;
 * and a frame built in place by ship_frame_buf() arrives as built. */
START_TEST(train_arrives_as_separate_datagrams)
{
	const char *tvns[] = { "127.0.0.1:4593" };
	struct ship_cfg cfg = { .tvns = tvns, .n_tvns = 1, .vni = 5, .max_frame = 1600 };
	uint8_t frame[1400], buf[2048], *slot;
	const uint8_t *inner;
	size_t inner_len;
	struct ecv_tuple t;
	struct ship *s;
	uint16_t port;
	uint32_t vni;
	int fd, i;

	fd = udp_listener(4593);
	s = ship_new(&cfg);
	ck_assert_ptr_nonnull(s);
	mk_flow(&t, 9);
	for (i = 0; i < 45; i++) { /* over one GSO run (40) */
		memset(frame, i, sizeof(frame));
		ck_assert_int_eq(ship_send(s, &t, frame, i == 44 ? 100 : sizeof(frame)), 0);
	}
	slot = ship_frame_buf(s, &t, 300);
	ck_assert_ptr_nonnull(slot);
	memset(slot, 0xab, 300);
	ck_assert_int_eq(ship_send(s, &t, slot, 300), 0);
	ck_assert_ptr_null(ship_frame_buf(s, &t, 1601));
	ship_flush(s);
	ck_assert_uint_eq(ship_stats(s)->tx_packets, 46);
	ck_assert_uint_eq(ship_stats(s)->tx_bytes, 46 * VXLAN_HDR_LEN + 44 * 1400 + 100 + 300);
	for (i = 0; i < 46; i++) {
		size_t want = i == 44 ? 100 : i == 45 ? 300 : sizeof(frame);
		uint8_t fill = i == 45 ? 0xab : (uint8_t)i;

		ck_assert_int_eq(recv_one(fd, buf, sizeof(buf), &port), VXLAN_HDR_LEN + want);
		ck_assert_int_eq(
			vxlan_decode(buf, VXLAN_HDR_LEN + want, 1, &vni, &inner, &inner_len), 0);
		ck_assert_uint_eq(vni, 5);
		ck_assert_uint_eq(inner_len, want);
		memset(frame, fill, want);
		ck_assert_mem_eq(inner, frame, want);
	}
	ship_free(s);
	close(fd);
}
END_TEST

START_TEST(batch_full_is_sent_without_flush)
{
	const char *tvns[] = { "127.0.0.1:4591" };
	struct ship_cfg cfg = { .tvns = tvns, .n_tvns = 1, .vni = 1, .max_frame = 1600 };
	uint8_t frame[64] = { 0 };
	struct ecv_tuple t;
	struct ship *s;
	int fd;

	fd = udp_listener(TEST_PORT);
	s = ship_new(&cfg);
	ck_assert_ptr_nonnull(s);
	mk_flow(&t, 1);
	for (int i = 0; i < SHIP_BATCH - 1; i++)
		ship_send(s, &t, frame, sizeof(frame));
	ck_assert_uint_eq(ship_stats(s)->tx_packets, 0); /* still batched */
	ship_send(s, &t, frame, sizeof(frame));
	ck_assert_uint_eq(ship_stats(s)->tx_packets, SHIP_BATCH);
	ship_free(s);
	close(fd);
}
END_TEST

START_TEST(absent_tvn_never_blocks)
{
	/* nothing listens on this port: the sender must keep going */
	const char *tvns[] = { "127.0.0.1:4592" };
	struct ship_cfg cfg = { .tvns = tvns, .n_tvns = 1, .vni = 1, .max_frame = 1600 };
	uint8_t frame[1400] = { 0 };
	struct ecv_tuple t;
	struct ship *s;

	s = ship_new(&cfg);
	ck_assert_ptr_nonnull(s);
	mk_flow(&t, 1);
	for (int i = 0; i < 20000; i++)
		ship_send(s, &t, frame, sizeof(frame));
	ship_flush(s);
	/* Every datagram is sent or counted as an error; one that was sent can also be
	 * counted again when its ICMP port unreachable comes back. */
	ck_assert_uint_ge(ship_stats(s)->tx_packets + ship_stats(s)->tx_errors, 20000);
	ck_assert_uint_gt(ship_stats(s)->tx_errors, 0);
	ship_free(s);
}
END_TEST

/* A UDP port on loopback that nothing listens on: bound by the kernel, then released. */
static uint16_t closed_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	ck_assert_int_ge(fd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

START_TEST(refused_datagram_is_counted)
{
	/* A TVN that is down: the send itself succeeds (the sockets are unconnected), only
	 * the ICMP port unreachable that comes back says the datagram was lost. */
	char tvn[32];
	const char *tvns[] = { tvn };
	struct ship_cfg cfg = { .tvns = tvns, .n_tvns = 1, .vni = 1, .max_frame = 1600 };
	uint8_t frame[200] = { 0 };
	struct ecv_tuple t;
	struct ship *s;

	snprintf(tvn, sizeof(tvn), "127.0.0.1:%u", closed_port());
	s = ship_new(&cfg);
	ck_assert_ptr_nonnull(s);
	mk_flow(&t, 3);
	ck_assert_int_eq(ship_send(s, &t, frame, sizeof(frame)), 0);
	ship_flush(s);
	ck_assert_uint_eq(ship_stats(s)->tx_packets, 1);
	/* The ICMP error is queued while the send runs on loopback; later poll rounds
	 * (flushes with nothing queued) read it. Bounded, not timed. */
	for (int i = 0; i < 100 && ship_stats(s)->tx_errors == 0; i++) {
		usleep(10000);
		ship_flush(s);
	}
	ck_assert_uint_eq(ship_stats(s)->tx_errors, 1);
	ck_assert_uint_eq(ship_stats(s)->tx_packets, 1);
	ship_free(s);
}
END_TEST

START_TEST(unresolvable_tvn_fails)
{
	const char *bad[] = { "no-such-host.invalid:4789" };
	const char *junk[] = { "[::1" };
	struct ship_cfg cfg = { .tvns = bad, .n_tvns = 1, .vni = 1, .max_frame = 1600 };

	errno = 0;
	ck_assert_ptr_null(ship_new(&cfg));
	ck_assert_int_eq(errno, EHOSTUNREACH);
	cfg.tvns = junk;
	ck_assert_ptr_null(ship_new(&cfg));
	ck_assert_int_eq(errno, EINVAL);
	cfg.n_tvns = 0;
	ck_assert_ptr_null(ship_new(&cfg));
}
END_TEST

static Suite *ship_suite(void)
{
	Suite *s = suite_create("agent_ship");
	TCase *pure = tcase_create("rendezvous"), *net = tcase_create("loopback");

	tcase_add_test(pure, rendezvous_same_for_both_directions);
	tcase_add_test(pure, rendezvous_spreads_evenly);
	tcase_add_test(pure, rendezvous_removal_moves_only_its_flows);
	tcase_add_test(net, ships_vxlan_with_stable_source_port);
	tcase_add_test(net, train_arrives_as_separate_datagrams);
	tcase_add_test(net, batch_full_is_sent_without_flush);
	tcase_add_test(net, absent_tvn_never_blocks);
	tcase_add_test(net, refused_datagram_is_counted);
	tcase_add_test(net, unresolvable_tvn_fails);
	tcase_set_timeout(net, 30);
	suite_add_tcase(s, pure);
	suite_add_tcase(s, net);
	return s;
}

int main(void)
{
	return check_run(ship_suite());
}
