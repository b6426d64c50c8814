/* tests/unit/test_agent_peer.c - /proc/net/udp{,6} text: which sockets are bound to a
 * TVN address and port (exactly, or on the wildcard), as this kernel prints them. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "../../agent/peer.h"
#include "check_run.h"

/* 10.78.8.254:4789 (a tvn), 0.0.0.0:4789 (a kernel vxlan device), 127.0.0.1:53. */
static const char udp4[] =
	"   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
	"timeout inode ref pointer drops            \n"
	" 7875: FE084E0A:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0   "
	"     0 4242 2 00000000c0d3f07a 0        \n"
	" 7876: 00000000:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0   "
	"     0 270187 2 00000000c0d3f07b 0        \n"
	"  100: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101   "
	"     0 999 2 00000000c0d3f07c 0        \n";

/* [::]:4789 and [fd00::1]:4790. */
static const char udp6[] =
	"  sl  local_address                         remote_address                        st "
	"tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
	"  10: 00000000000000000000000000000000:12B5 00000000000000000000000000000000:0000 07 "
	"00000000:00000000 00:00000000 00000000     0        0 5555 2 0000000000000000 0\n"
	"  11: 000000FD000000000000000001000000:12B6 00000000000000000000000000000000:0000 07 "
	"00000000:00000000 00:00000000 00000000     0        0 6666 2 0000000000000000 0\n";

START_TEST(ipv4_exact_and_wildcard)
{
	const uint8_t tvn[16] = { [10] = 0xff, [11] = 0xff, 10, 78, 8, 254 };
	const uint8_t other[16] = { [10] = 0xff, [11] = 0xff, 10, 78, 8, 253 };
	uint64_t ino[4];

	ck_assert_uint_eq(peer_udp_bound(udp4, tvn, 4789, false, ino, 4), 2);
	ck_assert_uint_eq(ino[0], 4242);
	ck_assert_uint_eq(ino[1], 270187);
	/* Another address: only the wildcard socket takes it. */
	ck_assert_uint_eq(peer_udp_bound(udp4, other, 4789, false, ino, 4), 1);
	ck_assert_uint_eq(ino[0], 270187);
	ck_assert_uint_eq(peer_udp_bound(udp4, tvn, 4790, false, ino, 4), 0);
	/* At most max. */
	ck_assert_uint_eq(peer_udp_bound(udp4, tvn, 4789, false, ino, 1), 1);
	/* An IPv4 address in udp6: only a dual-stack wildcard socket. */
	ck_assert_uint_eq(peer_udp_bound(udp6, tvn, 4789, true, ino, 4), 1);
	ck_assert_uint_eq(ino[0], 5555);
}
END_TEST

START_TEST(ipv6_exact)
{
	const uint8_t fd00[16] = { 0xfd, [15] = 1 };
	uint64_t ino[4];

	ck_assert_uint_eq(peer_udp_bound(udp6, fd00, 4790, true, ino, 4), 1);
	ck_assert_uint_eq(ino[0], 6666);
	/* An IPv6 address is never in the IPv4 file. */
	ck_assert_uint_eq(peer_udp_bound(udp4, fd00, 4789, false, ino, 4), 0);
	ck_assert_uint_eq(peer_udp_bound("", fd00, 4790, true, ino, 4), 0);
	ck_assert_str_eq(peer_kind_name(PEER_KERNEL), "kernel socket");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("agent_peer");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, ipv4_exact_and_wildcard);
	tcase_add_test(tc, ipv6_exact);
	suite_add_tcase(s, tc);
	return check_run(s);
}
