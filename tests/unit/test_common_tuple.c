/* tests/unit/test_common_tuple.c - addresses, formatting, reversal, direction, hash. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check_run.h"
#include "tuple.h"

static void mk(struct ecv_tuple *t, const char *s, uint16_t sp, const char *d, uint16_t dp)
{
	uint8_t sa[16], da[16];

	ck_assert_int_eq(tuple_addr_parse(s, sa, NULL), 0);
	ck_assert_int_eq(tuple_addr_parse(d, da, NULL), 0);
	ck_assert_int_eq(tuple_init(t, sa, sp, da, dp, IPPROTO_TCP), 0);
}

START_TEST(test_addr)
{
	static const uint8_t mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3 };
	char buf[TUPLE_ADDR_STRLEN];
	uint8_t a[16], fam = 0;

	ck_assert_int_eq(tuple_addr_parse("10.1.2.3", a, &fam), 0);
	ck_assert_uint_eq(fam, AF_INET);
	ck_assert_mem_eq(a, mapped, 16);
	ck_assert(tuple_addr_is_v4(a));
	ck_assert_str_eq(tuple_addr_str(a, buf), "10.1.2.3");
	tuple_addr_from_v4(a, (const uint8_t *)"\xc0\xa8\x01\x0a");
	ck_assert_str_eq(tuple_addr_str(a, buf), "192.168.1.10");

	ck_assert_int_eq(tuple_addr_parse("2001:DB8::1", a, &fam), 0);
	ck_assert_uint_eq(fam, AF_INET6);
	ck_assert(!tuple_addr_is_v4(a));
	ck_assert_str_eq(tuple_addr_str(a, buf), "2001:db8::1");
	ck_assert_int_eq(tuple_addr_parse("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", a, &fam),
			 0);
	ck_assert_uint_eq(strlen(tuple_addr_str(a, buf)), 39);

	ck_assert_int_eq(tuple_addr_parse("10.0.0.256", a, &fam), -EINVAL);
	ck_assert_int_eq(tuple_addr_parse("", a, &fam), -EINVAL);
	ck_assert_int_eq(tuple_addr_parse("example.com", a, &fam), -EINVAL);
	ck_assert_int_eq(tuple_addr_parse("[::1]", a, &fam), -EINVAL);
	ck_assert_int_eq(tuple_addr_parse(NULL, a, &fam), -EINVAL);
}
END_TEST

START_TEST(test_init_reverse_equal)
{
	uint8_t v4[16], v6[16];
	struct ecv_tuple t, r, rr;
	char buf[128];

	mk(&t, "10.0.0.1", 40000, "10.0.0.2", 443);
	ck_assert_uint_eq(t.family, AF_INET);
	ck_assert_uint_eq(t.pad[0] | t.pad[1], 0);
	ck_assert_str_eq(tuple_str(&t, buf, sizeof(buf)), "10.0.0.1:40000 > 10.0.0.2:443");
	tuple_reverse(&r, &t);
	ck_assert_str_eq(tuple_str(&r, buf, sizeof(buf)), "10.0.0.2:443 > 10.0.0.1:40000");
	ck_assert(!tuple_equal(&t, &r));
	tuple_reverse(&rr, &r);
	ck_assert(tuple_equal(&t, &rr));
	tuple_reverse(&rr, &rr); /* in place */
	ck_assert(tuple_equal(&r, &rr));

	mk(&t, "2001:db8::1", 55555, "2001:db8::2", 443);
	ck_assert_uint_eq(t.family, AF_INET6);
	ck_assert_str_eq(tuple_str(&t, buf, sizeof(buf)),
			 "[2001:db8::1]:55555 > [2001:db8::2]:443");
	/* Truncation keeps a terminated string. */
	ck_assert_str_eq(tuple_str(&t, buf, 6), "[2001");

	tuple_addr_parse("10.0.0.1", v4, NULL);
	tuple_addr_parse("::1", v6, NULL);
	ck_assert_int_eq(tuple_init(&t, v4, 1, v6, 2, IPPROTO_TCP), -EINVAL);
}
END_TEST

START_TEST(test_dir)
{
	struct ecv_tuple t, r;

	mk(&t, "10.0.0.1", 40000, "10.0.0.2", 443);
	ck_assert_int_eq(tuple_dir(&t), 0);
	tuple_reverse(&r, &t);
	ck_assert_int_eq(tuple_dir(&r), 1);
	/* Same address: the port decides, compared as big-endian bytes (256 > 255). */
	mk(&t, "127.0.0.1", 255, "127.0.0.1", 256);
	ck_assert_int_eq(tuple_dir(&t), 0);
	tuple_reverse(&r, &t);
	ck_assert_int_eq(tuple_dir(&r), 1);
	/* IPv4-mapped addresses sort after most of IPv6 space but compare as bytes. */
	mk(&t, "::1", 1, "::2", 1);
	ck_assert_int_eq(tuple_dir(&t), 0);
}
END_TEST

START_TEST(test_hash)
{
	struct ecv_tuple t, r, u;
	uint64_t h;

	mk(&t, "10.0.0.1", 40000, "10.0.0.2", 443);
	tuple_reverse(&r, &t);
	h = tuple_hash(&t);
	ck_assert_uint_eq(h, tuple_hash(&r));
	u = t;
	u.sport++;
	ck_assert_uint_ne(h, tuple_hash(&u));
	u = t;
	u.proto = IPPROTO_UDP;
	ck_assert_uint_ne(h, tuple_hash(&u));
	/* Swapping only the ports is a different flow. */
	mk(&u, "10.0.0.1", 443, "10.0.0.2", 40000);
	ck_assert_uint_ne(h, tuple_hash(&u));
	mk(&t, "2001:db8::1", 55555, "2001:db8::2", 443);
	tuple_reverse(&r, &t);
	ck_assert_uint_eq(tuple_hash(&t), tuple_hash(&r));
}
END_TEST

START_TEST(test_hash_spread)
{
	/* Sharding uses the low bits: 64k client ports to one server over 16 shards. */
	unsigned shards[16] = { 0 };
	struct ecv_tuple t;
	unsigned p;
	int i;

	for (p = 1; p <= 65535; p++) {
		mk(&t, "10.0.0.1", (uint16_t)p, "10.0.0.2", 443);
		shards[tuple_hash(&t) & 15]++;
	}
	for (i = 0; i < 16; i++)
		ck_assert_msg(shards[i] > 3600 && shards[i] < 4600, "shard %d: %u", i, shards[i]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tuple");
	TCase *tc = tcase_create("tuple");

	tcase_add_test(tc, test_addr);
	tcase_add_test(tc, test_init_reverse_equal);
	tcase_add_test(tc, test_dir);
	tcase_add_test(tc, test_hash);
	tcase_add_test(tc, test_hash_spread);
	suite_add_tcase(s, tc);
	return check_run(s);
}
