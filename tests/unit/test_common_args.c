/* tests/unit/test_common_args.c - HOST[:PORT], CIDR, numbers, sizes and durations. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "check_run.h"
#include "tuple.h"

/* HOST[:PORT] forms that split: input, default port, host and port wanted. */
static const struct {
	const char *in;
	uint16_t def;
	const char *host;
	uint16_t port;
} good_hostports[] = {
	{ "tvn.example:4790", 4789, "tvn.example", 4790 },
	{ "10.0.0.1", 4789, "10.0.0.1", 4789 },
	{ "[2001:db8::1]:0", 1, "2001:db8::1", 0 },
	{ "[::1]", 8080, "::1", 8080 },
	{ "fe80::1", 9, "fe80::1", 9 }, /* an unbracketed IPv6 address has no port */
	{ "h:65535", 9, "h", 65535 },
};

START_TEST(test_split)
{
	char host[64];
	uint16_t port = 0;

	ck_assert_int_eq(args_split_hostport(good_hostports[_i].in, host, sizeof(host), &port,
					     good_hostports[_i].def),
			 0);
	ck_assert_str_eq(host, good_hostports[_i].host);
	ck_assert_uint_eq(port, good_hostports[_i].port);
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

/* One parse of a number with a unit: input, bounds, the result wanted and, when it is
 * 0, the value. */
struct unit_case {
	const char *in;
	uint64_t min, max;
	int rc;
	uint64_t v;
};

static const struct unit_case size_cases[] = {
	{ "512", 0, UINT64_MAX, 0, 512 },
	{ "4k", 0, UINT64_MAX, 0, 4096 },
	{ "64M", 0, UINT64_MAX, 0, 64ull << 20 },
	{ "2g", 0, UINT64_MAX, 0, 2ull << 30 },
	{ "17179869184G", 0, UINT64_MAX, -ERANGE, 0 },
	{ "2k", 0, 2047, -ERANGE, 0 },
	{ "2kb", 0, UINT64_MAX, -EINVAL, 0 },
	{ "2t", 0, UINT64_MAX, -EINVAL, 0 },
	{ "k", 0, UINT64_MAX, -EINVAL, 0 },
	{ "-2k", 0, UINT64_MAX, -EINVAL, 0 },
	{ "1K", 0, UINT64_MAX, 0, 1024 },
	{ "3m", 0, UINT64_MAX, 0, 3ull << 20 },
	{ "1G", 0, UINT64_MAX, 0, 1ull << 30 },
	{ "0x10k", 0, UINT64_MAX, 0, 16384 },
	{ "0k", 0, UINT64_MAX, 0, 0 },
	{ "2kk", 0, UINT64_MAX, -EINVAL, 0 },
	{ "1ms", 0, UINT64_MAX, -EINVAL, 0 }, /* a duration suffix is not a size */
	{ "1k ", 0, UINT64_MAX, -EINVAL, 0 },
};

static const struct unit_case duration_cases[] = {
	{ "250ms", 0, UINT64_MAX, 0, 250 },
	{ "2", 0, UINT64_MAX, 0, 2000 },
	{ "2s", 0, UINT64_MAX, 0, 2000 },
	{ "5m", 0, UINT64_MAX, 0, 300000 },
	{ "1h", 0, UINT64_MAX, 0, 3600000 },
	{ "0s", 1, 10, -ERANGE, 0 },
	{ "18446744073709551615s", 0, UINT64_MAX, -ERANGE, 0 },
	{ "1d", 0, UINT64_MAX, -EINVAL, 0 },
	{ "1.5s", 0, UINT64_MAX, -EINVAL, 0 },
	{ "s", 0, UINT64_MAX, -EINVAL, 0 },
	{ "1 s", 0, UINT64_MAX, -EINVAL, 0 },
	{ "1mss", 0, UINT64_MAX, -EINVAL, 0 },
	{ "0x10ms", 0, UINT64_MAX, 0, 16 },
	{ "1ms", 2, 10, -ERANGE, 0 },
	{ "1S", 0, UINT64_MAX, -EINVAL, 0 }, /* units are lower case */
	{ "1H", 0, UINT64_MAX, -EINVAL, 0 },
	{ "1k", 0, UINT64_MAX, -EINVAL, 0 }, /* a size suffix is not a duration */
};

static void check_unit_case(int (*parse)(const char *, uint64_t, uint64_t, uint64_t *),
			    const struct unit_case *c)
{
	uint64_t v = 0;

	ck_assert_msg(parse(c->in, c->min, c->max, &v) == c->rc, "\"%s\": not %d", c->in, c->rc);
	if (c->rc == 0)
		ck_assert_msg(v == c->v, "\"%s\": %" PRIu64 ", want %" PRIu64, c->in, v, c->v);
}

START_TEST(test_size)
{
	check_unit_case(args_parse_size, &size_cases[_i]);
}
END_TEST

START_TEST(test_duration)
{
	check_unit_case(args_parse_duration_ms, &duration_cases[_i]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("args");
	TCase *tc = tcase_create("args");

	tcase_add_loop_test(tc, test_split, 0, sizeof(good_hostports) / sizeof(good_hostports[0]));
	tcase_add_loop_test(tc, test_split_errors, 0,
			    sizeof(bad_hostports) / sizeof(bad_hostports[0]));
	tcase_add_test(tc, test_split_host_cap);
	tcase_add_test(tc, test_resolve);
	tcase_add_test(tc, test_cidr);
	tcase_add_loop_test(tc, test_cidr_errors, 0, sizeof(bad_cidrs) / sizeof(bad_cidrs[0]));
	tcase_add_test(tc, test_u64);
	tcase_add_loop_test(tc, test_size, 0, sizeof(size_cases) / sizeof(size_cases[0]));
	tcase_add_loop_test(tc, test_duration, 0,
			    sizeof(duration_cases) / sizeof(duration_cases[0]));
	suite_add_tcase(s, tc);
	return check_run(s);
}
