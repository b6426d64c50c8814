/* tests/unit/test_common_vxlan.c - RFC 7348 header codec and the outer source port. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "vxlan.h"

START_TEST(test_encode)
{
	uint8_t h[VXLAN_HDR_LEN];

	ck_assert_int_eq(vxlan_encode(h, 0x123456), 0);
	/* RFC 7348 §5: flags 0x08 (I), 24 reserved bits, VNI, 8 reserved bits. */
	ck_assert_mem_eq(h, "\x08\x00\x00\x00\x12\x34\x56\x00", 8);
	ck_assert_int_eq(vxlan_encode(h, 1), 0);
	ck_assert_mem_eq(h, "\x08\x00\x00\x00\x00\x00\x01\x00", 8);
	ck_assert_int_eq(vxlan_encode(h, VXLAN_VNI_MAX), 0);
	ck_assert_int_eq(vxlan_encode(h, VXLAN_VNI_MAX + 1), -EINVAL);
}
END_TEST

START_TEST(test_decode)
{
	uint8_t buf[32] = "\x08\x00\x00\x00\xab\xcd\xef\x00inner";
	const uint8_t *inner = NULL;
	size_t inner_len = 0;
	uint32_t vni = 0;

	ck_assert_int_eq(vxlan_decode(buf, 13, 1, &vni, &inner, &inner_len), 0);
	ck_assert_uint_eq(vni, 0xabcdef);
	ck_assert_ptr_eq(inner, buf + 8);
	ck_assert_uint_eq(inner_len, 5);
	ck_assert_mem_eq(inner, "inner", 5);
	/* Header only: an empty inner frame is for the caller to reject. */
	ck_assert_int_eq(vxlan_decode(buf, 8, 1, &vni, &inner, &inner_len), 0);
	ck_assert_uint_eq(inner_len, 0);

	ck_assert_int_eq(vxlan_decode(buf, 7, 0, &vni, &inner, &inner_len), -VXLAN_E_SHORT);
	ck_assert_int_eq(vxlan_decode(NULL, 0, 0, &vni, &inner, &inner_len), -VXLAN_E_SHORT);
	buf[0] = 0x00;
	ck_assert_int_eq(vxlan_decode(buf, 13, 0, &vni, &inner, &inner_len), -VXLAN_E_FLAGS);
	buf[0] = 0x0c; /* I + a reserved flag (the GPE P bit) */
	ck_assert_int_eq(vxlan_decode(buf, 13, 1, &vni, &inner, &inner_len), -VXLAN_E_RESERVED);
	ck_assert_int_eq(vxlan_decode(buf, 13, 0, &vni, &inner, &inner_len), 0);
	buf[0] = 0x08;
	buf[2] = 1;
	ck_assert_int_eq(vxlan_decode(buf, 13, 1, &vni, &inner, &inner_len), -VXLAN_E_RESERVED);
	buf[2] = 0;
	buf[7] = 1;
	ck_assert_int_eq(vxlan_decode(buf, 13, 1, &vni, &inner, &inner_len), -VXLAN_E_RESERVED);
	ck_assert_int_eq(vxlan_decode(buf, 13, 0, &vni, &inner, &inner_len), 0);
	ck_assert_uint_eq(vni, 0xabcdef);
}
END_TEST

START_TEST(test_round_trip)
{
	uint32_t vnis[] = { 0, 1, 4789, 0x800000, VXLAN_VNI_MAX }, vni;
	uint8_t h[VXLAN_HDR_LEN];
	size_t i;

	for (i = 0; i < sizeof(vnis) / sizeof(vnis[0]); i++) {
		ck_assert_int_eq(vxlan_encode(h, vnis[i]), 0);
		ck_assert_int_eq(vxlan_decode(h, sizeof(h), 1, &vni, NULL, NULL), 0);
		ck_assert_uint_eq(vni, vnis[i]);
	}
}
END_TEST

START_TEST(test_src_port)
{
	unsigned seen_low = 0, seen_high = 0, buckets[16] = { 0 };
	uint64_t h = 0x9e3779b97f4a7c15ull;
	int i;

	for (i = 0; i < 100000; i++) {
		uint16_t p = vxlan_src_port(h);

		ck_assert_uint_ge(p, 49152);
		seen_low |= p == 49152;
		seen_high |= p == 65535;
		buckets[(p - 49152) / 1024]++;
		h = h * 6364136223846793005ull + 1442695040888963407ull;
	}
	ck_assert_uint_eq(vxlan_src_port(42), vxlan_src_port(42));
	ck_assert(seen_low && seen_high);
	/* Spread over the range so that underlay ECMP balances: each 1/16 gets 4..8 %. */
	for (i = 0; i < 16; i++)
		ck_assert_msg(buckets[i] > 4000 && buckets[i] < 8000, "bucket %d: %u", i,
			      buckets[i]);
}
END_TEST

START_TEST(test_strerror)
{
	ck_assert_str_eq(vxlan_strerror(-VXLAN_E_SHORT), "short");
	ck_assert_str_eq(vxlan_strerror(-VXLAN_E_FLAGS), "flags");
	ck_assert_str_eq(vxlan_strerror(-VXLAN_E_RESERVED), "reserved");
	ck_assert_str_eq(vxlan_strerror(-77), "unknown");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vxlan");
	TCase *tc = tcase_create("codec");

	tcase_add_test(tc, test_encode);
	tcase_add_test(tc, test_decode);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_src_port);
	tcase_add_test(tc, test_strerror);
	suite_add_tcase(s, tc);
	return check_run(s);
}
