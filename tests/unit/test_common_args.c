/* tests/unit/test_common_args.c - HOST[:PORT], CIDR, numbers, sizes and durations. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "tuple.h"

START_TEST(test_split)
{
	char host[64];
	uint16_t port = 0;

	ck_assert_int_eq(args_split_hostport("tvn.example:4790", host, sizeof(host), &port, 4789),
			 0);
	ck_assert_str_eq(host, "tvn.example");
	ck_assert_uint_eq(port, 4790);
	ck_assert_int_eq(args_split_hostport("10.0.0.1", host, sizeof(host), &port, 4789), 0);
	ck_assert_str_eq(host, "10.0.0.1");
	ck_assert_uint_eq(port, 4789);
	ck_assert_int_eq(args_split_hostport("[2001:db8::1]:0", host, sizeof(host), &port, 1), 0);
	ck_assert_str_eq(host, "2001:db8::1");
	ck_assert_uint_eq(port, 0);
	ck_assert_int_eq(args_split_hostport("[::1]", host, sizeof(host), &port, 8080), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_uint_eq(port, 8080);
	/* An unbracketed IPv6 address has no port. */
	ck_assert_int_eq(args_split_hostport("fe80::1", host, sizeof(host), &port, 9), 0);
	ck_assert_str_eq(host, "fe80::1");
	ck_assert_uint_eq(port, 9);
	ck_assert_int_eq(args_split_hostport("h:65535", host, sizeof(host), &port, 9), 0);
	ck_assert_uint_eq(port, 65535);
}
END_TEST

static const char *const bad_hostports[] = {
	"",	":80",	   "h:",    "h:65536",	 "h:-1",   "h:8o",    "h: 80",
	"[::1", "[::1]80", "[]:80", "[host]:80", "[::1]:", "h:0x50x",
};

START_TEST(test_split_errors)
{
	char host[64];
	uint16_t port;

	ck_assert_msg(args_split_hostport(bad_hostports[_i], host, sizeof(host), &port, 1) ==
			      -EINVAL,
		      "'%s' accepted", bad_hostports[_i]);
}
END_TEST

START_TEST(test_split_host_cap)
{
	char host[8];
	uint16_t port;

	ck_assert_int_eq(args_split_hostport("1234567:1", host, sizeof(host), &port, 1), 0);
	ck_assert_int_eq(args_split_hostport("12345678:1", host, sizeof(host), &port, 1), -EINVAL);
}
END_TEST

START_TEST(test_resolve)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl;
	uint8_t a[16];
	uint16_t port;

	ck_assert_int_eq(args_resolve("127.0.0.1:4789", 1, &ss, &sl), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ck_assert_uint_eq(sl, sizeof(*in));
	ck_assert_uint_eq(ntohs(in->sin_port), 4789);
	ck_assert_uint_eq(ntohl(in->sin_addr.s_addr), 0x7f000001);
	ck_assert_int_eq(args_from_sockaddr((struct sockaddr *)&ss, a, &port), 0);
	ck_assert(tuple_addr_is_v4(a));
	ck_assert_uint_eq(port, 4789);

	ck_assert_int_eq(args_resolve("[::1]", 8080, &ss, &sl), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ck_assert_uint_eq(ntohs(in6->sin6_port), 8080);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
	ck_assert_int_eq(args_from_sockaddr((struct sockaddr *)&ss, a, &port), 0);
	ck_assert_mem_eq(a, &in6->sin6_addr, 16);

	/* "localhost" comes from /etc/hosts: no network needed. */
	ck_assert_int_eq(args_resolve("localhost:1", 1, &ss, &sl), 0);
	/* .invalid never resolves (RFC 6761). */
	ck_assert_int_eq(args_resolve("ecvc-nohost.invalid:1", 1, &ss, &sl), -EHOSTUNREACH);
	ck_assert_int_eq(args_resolve("[localhost]:1", 1, &ss, &sl), -EINVAL);
	ck_assert_int_eq(args_resolve("h:99999", 1, &ss, &sl), -EINVAL);
	ss.ss_family = AF_UNIX;
	ck_assert_int_eq(args_from_sockaddr((struct sockaddr *)&ss, a, &port), -EINVAL);
}
END_TEST

START_TEST(test_cidr)
{
	struct args_cidr c;
	uint8_t a[16];

	ck_assert_int_eq(args_parse_cidr("10.1.2.3/8", &c), 0);
	ck_assert_uint_eq(c.prefix, 104);
	tuple_addr_parse("10.200.0.1", a, NULL);
	ck_assert(args_cidr_match(&c, a));
	tuple_addr_parse("11.0.0.1", a, NULL);
	ck_assert(!args_cidr_match(&c, a));
	tuple_addr_parse("::ffff:10.0.0.1", a, NULL);
	ck_assert(args_cidr_match(&c, a));

	ck_assert_int_eq(args_parse_cidr("192.168.1.0/23", &c), 0);
	tuple_addr_parse("192.168.0.255", a, NULL);
	ck_assert(args_cidr_match(&c, a));
	tuple_addr_parse("192.168.2.0", a, NULL);
	ck_assert(!args_cidr_match(&c, a));

	ck_assert_int_eq(args_parse_cidr("10.0.0.5", &c), 0);
	ck_assert_uint_eq(c.prefix, 128);
	tuple_addr_parse("10.0.0.5", a, NULL);
	ck_assert(args_cidr_match(&c, a));
	tuple_addr_parse("10.0.0.4", a, NULL);
	ck_assert(!args_cidr_match(&c, a));

	/* IPv4 /0 matches every IPv4 address and no IPv6 one. */
	ck_assert_int_eq(args_parse_cidr("0.0.0.0/0", &c), 0);
	tuple_addr_parse("203.0.113.9", a, NULL);
	ck_assert(args_cidr_match(&c, a));
	tuple_addr_parse("2001:db8::1", a, NULL);
	ck_assert(!args_cidr_match(&c, a));

	ck_assert_int_eq(args_parse_cidr("2001:db8::/32", &c), 0);
	ck_assert_uint_eq(c.prefix, 32);
	ck_assert(args_cidr_match(&c, a));
	tuple_addr_parse("2001:db9::1", a, NULL);
	ck_assert(!args_cidr_match(&c, a));
	ck_assert_int_eq(args_parse_cidr("::/0", &c), 0);
	ck_assert(args_cidr_match(&c, a));
}
END_TEST

static const char *const bad_cidrs[] = {
	"",
	"/8",
	"10.0.0.1/",
	"10.0.0.1/33",
	"2001:db8::/129",
	"10.0.0.1/-1",
	"10.0.0.1/8x",
	"10.0.0.1/0x8",
	"10.0.0.1/08",
	"host/8",
	"10.0.0.1/8/8",
};

START_TEST(test_cidr_errors)
{
	struct args_cidr c;

	ck_assert_msg(args_parse_cidr(bad_cidrs[_i], &c) == -EINVAL, "'%s' accepted",
		      bad_cidrs[_i]);
}
END_TEST

START_TEST(test_u64)
{
	uint64_t v;

	ck_assert_int_eq(args_parse_u64("0", 0, 10, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(args_parse_u64("4789", 1, 65535, &v), 0);
	ck_assert_uint_eq(v, 4789);
	ck_assert_int_eq(args_parse_u64("0x10", 0, 100, &v), 0);
	ck_assert_uint_eq(v, 16);
	ck_assert_int_eq(args_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	v = 7;
	ck_assert_int_eq(args_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	ck_assert_int_eq(args_parse_u64("11", 0, 10, &v), -ERANGE);
	ck_assert_int_eq(args_parse_u64("0", 1, 10, &v), -ERANGE);
	ck_assert_uint_eq(v, 7); /* untouched on error */
	ck_assert_int_eq(args_parse_u64("", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(args_parse_u64("-1", 0, UINT64_MAX, &v), -EINVAL);
	ck_assert_int_eq(args_parse_u64("+1", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(args_parse_u64(" 1", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(args_parse_u64("1 ", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(args_parse_u64("1k", 0, 10000, &v), -EINVAL);
	ck_assert_int_eq(args_parse_u64("0x", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(args_parse_u64(NULL, 0, 10, &v), -EINVAL);
}
END_TEST

START_TEST(test_size)
{
	uint64_t v;

	ck_assert_int_eq(args_parse_size("512", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 512);
	ck_assert_int_eq(args_parse_size("4k", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(args_parse_size("64M", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 64ull << 20);
	ck_assert_int_eq(args_parse_size("2g", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 2ull << 30);
	ck_assert_int_eq(args_parse_size("17179869184G", 0, UINT64_MAX, &v), -ERANGE);
	ck_assert_int_eq(args_parse_size("2k", 0, 2047, &v), -ERANGE);
	ck_assert_int_eq(args_parse_size("2kb", 0, UINT64_MAX, &v), -EINVAL);
	ck_assert_int_eq(args_parse_size("2t", 0, UINT64_MAX, &v), -EINVAL);
	ck_assert_int_eq(args_parse_size("k", 0, UINT64_MAX, &v), -EINVAL);
	ck_assert_int_eq(args_parse_size("-2k", 0, UINT64_MAX, &v), -EINVAL);
}
END_TEST

START_TEST(test_duration)
{
	uint64_t v;

	ck_assert_int_eq(args_parse_duration_ms("250ms", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 250);
	ck_assert_int_eq(args_parse_duration_ms("2", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 2000);
	ck_assert_int_eq(args_parse_duration_ms("2s", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 2000);
	ck_assert_int_eq(args_parse_duration_ms("5m", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 300000);
	ck_assert_int_eq(args_parse_duration_ms("1h", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 3600000);
	ck_assert_int_eq(args_parse_duration_ms("0s", 1, 10, &v), -ERANGE);
	ck_assert_int_eq(args_parse_duration_ms("18446744073709551615s", 0, UINT64_MAX, &v),
			 -ERANGE);
	ck_assert_int_eq(args_parse_duration_ms("1d", 0, UINT64_MAX, &v), -EINVAL);
	ck_assert_int_eq(args_parse_duration_ms("1.5s", 0, UINT64_MAX, &v), -EINVAL);
	ck_assert_int_eq(args_parse_duration_ms("s", 0, UINT64_MAX, &v), -EINVAL);
	ck_assert_int_eq(args_parse_duration_ms("1 s", 0, UINT64_MAX, &v), -EINVAL);
	ck_assert_int_eq(args_parse_duration_ms("1mss", 0, UINT64_MAX, &v), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("args");
	TCase *tc = tcase_create("args");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_split);
	tcase_add_loop_test(tc, test_split_errors, 0,
			    sizeof(bad_hostports) / sizeof(bad_hostports[0]));
	tcase_add_test(tc, test_split_host_cap);
	tcase_add_test(tc, test_resolve);
	tcase_add_test(tc, test_cidr);
	tcase_add_loop_test(tc, test_cidr_errors, 0, sizeof(bad_cidrs) / sizeof(bad_cidrs[0]));
	tcase_add_test(tc, test_u64);
	tcase_add_test(tc, test_size);
	tcase_add_test(tc, test_duration);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
