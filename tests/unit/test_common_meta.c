/* tests/unit/test_common_meta.c - flow metadata JSON: encode, decode, validation, frame. */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "meta.h"

static void sample(struct meta_flow *m)
{
	uint8_t s[16], d[16];

	memset(m, 0, sizeof(*m));
	tuple_addr_parse("10.0.0.1", s, NULL);
	tuple_addr_parse("10.0.0.2", d, NULL);
	tuple_init(&m->tuple, s, 40000, d, 443, IPPROTO_TCP);
	m->event = META_END;
	m->isn[0] = 0xb90b94a2;
	m->isn[1] = 0xb7c8c0c1;
	m->bytes[0] = 1234;
	m->bytes[1] = 5000000000ull;
	m->lost = 3;
	m->pid = 4242;
	m->from_start = true;
	strcpy(m->node, "node-a");
	strcpy(m->role, "client");
	strcpy(m->comm, "curl");
	strcpy(m->exe, "/usr/bin/curl");
	strcpy(m->cgroup, "/kubepods/pod1/\"quoted\"\\");
	strcpy(m->container, "0123456789abcdef");
	strcpy(m->lib, "/usr/lib/x86_64-linux-gnu/libssl.so.3");
}

START_TEST(test_encode_exact)
{
	struct meta_flow m;
	char buf[META_MAX_JSON + 1];
	int n;

	sample(&m);
	n = meta_encode(&m, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq(strlen(buf), (size_t)n);
	/* jansson preserves insertion order; this is the documented wire form. */
	ck_assert_str_eq(buf, "{\"v\":1,\"type\":\"flow\",\"event\":\"end\",\"src\":\"10.0.0.1\","
			      "\"dst\":\"10.0.0.2\",\"sport\":40000,\"dport\":443,"
			      "\"isn\":[3104543906,3083387073],\"bytes\":[1234,5000000000],"
			      "\"lost\":3,\"pid\":4242,\"from_start\":true,\"node\":\"node-a\","
			      "\"role\":\"client\",\"comm\":\"curl\",\"exe\":\"/usr/bin/curl\","
			      "\"cgroup\":\"/kubepods/pod1/\\\"quoted\\\"\\\\\","
			      "\"container\":\"0123456789abcdef\","
			      "\"lib\":\"/usr/lib/x86_64-linux-gnu/libssl.so.3\"}");
	/* Empty strings are absent. */
	m.node[0] = m.exe[0] = '\0';
	m.event = META_START;
	ck_assert_int_gt(meta_encode(&m, buf, sizeof(buf)), 0);
	ck_assert_ptr_null(strstr(buf, "\"node\""));
	ck_assert_ptr_null(strstr(buf, "\"exe\""));
	ck_assert_ptr_nonnull(strstr(buf, "\"event\":\"start\""));
}
END_TEST

START_TEST(test_encode_errors)
{
	struct meta_flow m;
	char buf[64];

	sample(&m);
	ck_assert_int_eq(meta_encode(&m, buf, sizeof(buf)), -ENOSPC);
	m.event = 7;
	ck_assert_int_eq(meta_encode(&m, buf, sizeof(buf)), -EINVAL);
	sample(&m);
	memset(m.comm, 'x', sizeof(m.comm)); /* not terminated */
	ck_assert_int_eq(meta_encode(&m, buf, sizeof(buf)), -EINVAL);
}
END_TEST

/* Kernel names are bytes: a comm cut at 15 bytes inside a Cyrillic letter, or a path with
 * a stray byte, must still give a flow record (the agent would drop it otherwise). */
START_TEST(test_encode_not_utf8)
{
	struct meta_flow m, d;
	char buf[META_MAX_JSON + 1];
	const char *name = "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xbb\xd0\xbe\xd0\xb6\xd0\xb5"
			   "\xd0\xbd\xd0\xb8\xd0\xb5"; /* "Prilozhenie" in Cyrillic, 20 bytes */
	int n;

	sample(&m);
	memcpy(m.comm, name, 15); /* what the kernel keeps: 7 letters and half of one */
	m.comm[15] = '\0';
	strcpy(m.exe, "/opt/a\xff\xfe"
		      "b\xe0\x80z"); /* invalid bytes, an overlong lead */
	n = meta_encode(&m, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(meta_decode(buf, (size_t)n, &d, NULL), 0);
	ck_assert_str_eq(d.comm, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xbb\xd0\xbe\xd0\xb6\xd0\xb5");
	ck_assert_str_eq(d.exe, "/opt/a??b??z");
	ck_assert_str_eq(d.cgroup, m.cgroup);
}
END_TEST

START_TEST(test_round_trip)
{
	struct meta_flow m, d;
	char buf[META_MAX_JSON + 1];
	const char *why = "unset";
	int n;

	sample(&m);
	n = meta_encode(&m, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(meta_decode(buf, (size_t)n, &d, &why), 0);
	ck_assert_ptr_null(why);
	ck_assert_mem_eq(&d, &m, sizeof(m));

	/* IPv6, start, unknown role, minimal strings. */
	memset(&m, 0, sizeof(m));
	tuple_addr_parse("2001:db8::1", m.tuple.saddr, NULL);
	tuple_addr_parse("2001:db8::2", m.tuple.daddr, NULL);
	tuple_init(&m.tuple, m.tuple.saddr, 55555, m.tuple.daddr, 443, IPPROTO_TCP);
	m.pid = -1;
	n = meta_encode(&m, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(meta_decode(buf, (size_t)n, &d, NULL), 0);
	ck_assert_mem_eq(&d, &m, sizeof(m));
}
END_TEST

static const struct {
	const char *json;
	const char *why;
} bad[] = {
	{ "", "not json" },
	{ "{\"v\":1", "not json" },
	{ "[1,2]", "not an object" },
	{ "{\"v\":1,\"v\":1}", "not json" }, /* duplicate keys are ambiguous */
	{ "{\"type\":\"flow\"}", "bad version" },
	{ "{\"v\":2,\"type\":\"flow\"}", "bad version" },
	{ "{\"v\":\"1\",\"type\":\"flow\"}", "bad version" },
	{ "{\"v\":1,\"type\":\"pkt\"}", "bad type" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"middle\"}", "bad event" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\"}", "missing src" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.300\"}", "bad src" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":1}", "bad src" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\"}", "missing dst" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"x\"}",
	  "bad dst" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"::1\"}",
	  "src and dst families differ" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0."
	  "2\"}",
	  "missing sport" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0."
	  "2\","
	  "\"sport\":65536,\"dport\":1}",
	  "bad sport" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0."
	  "2\","
	  "\"sport\":1}",
	  "missing dport" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0."
	  "2\","
	  "\"sport\":1,\"dport\":-1}",
	  "bad dport" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0."
	  "2\","
	  "\"sport\":1,\"dport\":2,\"isn\":[1]}",
	  "bad isn" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0."
	  "2\","
	  "\"sport\":1,\"dport\":2,\"isn\":[1,4294967296]}",
	  "bad isn" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0."
	  "2\","
	  "\"sport\":1,\"dport\":2,\"bytes\":[-1,0]}",
	  "bad bytes" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0."
	  "2\","
	  "\"sport\":1,\"dport\":2,\"lost\":1.5}",
	  "bad lost" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0."
	  "2\","
	  "\"sport\":1,\"dport\":2,\"pid\":\"1\"}",
	  "bad pid" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0."
	  "2\","
	  "\"sport\":1,\"dport\":2,\"from_start\":1}",
	  "bad from_start" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0."
	  "2\","
	  "\"sport\":1,\"dport\":2,\"comm\":7}",
	  "bad comm" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0."
	  "2\","
	  "\"sport\":1,\"dport\":2,\"comm\":\"0123456789abcdef\"}",
	  "comm too long" },
	{ "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0."
	  "2\","
	  "\"sport\":1,\"dport\":2,\"role\":\"a\\u0000b\"}",
	  "not json" },
};

START_TEST(test_decode_errors)
{
	struct meta_flow m;
	const char *why = NULL;

	ck_assert_int_eq(meta_decode(bad[_i].json, strlen(bad[_i].json), &m, &why), -EINVAL);
	ck_assert_msg(why && !strcmp(why, bad[_i].why), "%s: got '%s' want '%s'", bad[_i].json,
		      why ? why : "(null)", bad[_i].why);
	/* Output is cleared on failure, so callers never see half a message. */
	ck_assert_uint_eq(m.tuple.sport, 0);
}
END_TEST

START_TEST(test_decode_limits)
{
	static char big[META_MAX_JSON + 64];
	struct meta_flow m;
	const char *why = NULL, *base;
	char exe[300];
	size_t n;

	/* Exactly at the limit is parsed (and accepted: unknown keys are ignored). */
	base = "{\"v\":1,\"type\":\"flow\",\"event\":\"start\",\"src\":\"10.0.0.1\","
	       "\"dst\":\"10.0.0.2\",\"sport\":1,\"dport\":2,\"pad\":\"";
	n = strlen(base);
	memcpy(big, base, n);
	memset(big + n, 'p', META_MAX_JSON - n - 2);
	memcpy(big + META_MAX_JSON - 2, "\"}", 2);
	ck_assert_int_eq(meta_decode(big, META_MAX_JSON, &m, &why), 0);
	ck_assert_uint_eq(m.tuple.dport, 2);
	ck_assert_uint_eq(m.event, META_START);
	/* One byte more is refused before parsing. */
	memmove(big + n + 1, big + n, META_MAX_JSON - n);
	big[n] = 'p';
	ck_assert_int_eq(meta_decode(big, META_MAX_JSON + 1, &m, &why), -EINVAL);
	ck_assert_str_eq(why, "too long");

	/* The longest exe that fits (255) is accepted, 256 is not. */
	memset(exe, 'e', sizeof(exe));
	exe[255] = '\0';
	n = (size_t)snprintf(big, sizeof(big),
			     "{\"v\":1,\"type\":\"flow\",\"event\":\"end\",\"src\":\"::1\","
			     "\"dst\":\"::2\",\"sport\":1,\"dport\":2,\"exe\":\"%s\"}",
			     exe);
	ck_assert_int_eq(meta_decode(big, n, &m, &why), 0);
	ck_assert_uint_eq(strlen(m.exe), 255);
	exe[255] = 'e';
	exe[256] = '\0';
	n = (size_t)snprintf(big, sizeof(big),
			     "{\"v\":1,\"type\":\"flow\",\"event\":\"end\",\"src\":\"::1\","
			     "\"dst\":\"::2\",\"sport\":1,\"dport\":2,\"exe\":\"%s\"}",
			     exe);
	ck_assert_int_eq(meta_decode(big, n, &m, &why), -EINVAL);
	ck_assert_str_eq(why, "exe too long");
}
END_TEST

START_TEST(test_frame)
{
	struct pkt_l2 l2 = { .src = { 2, 0, 0, 0, 0, 1 }, .dst = { 2, 0, 0, 0, 0, 2 }, .vlan = 7 };
	uint8_t frame[META_MAX_JSON + 64];
	struct meta_flow m, d;
	struct pkt_info pi;
	int n;

	sample(&m);
	n = meta_build_frame(frame, sizeof(frame), &l2, &m);
	ck_assert_int_gt(n, 18);
	ck_assert_mem_eq(frame, l2.dst, 6);
	ck_assert_mem_eq(frame + 12, "\x81\x00\x00\x07\x88\xb5{", 7);
	ck_assert_int_eq(pkt_parse(frame, (size_t)n, &pi), PKT_META);
	ck_assert_uint_eq(pi.vlan, 7);
	ck_assert_uint_eq(pi.payload_off, 18);
	ck_assert_int_eq(meta_decode((const char *)pi.payload, pi.payload_len, &d, NULL), 0);
	ck_assert_mem_eq(&d, &m, sizeof(m));
	/* Zero padding after the document (a minimum-size Ethernet frame) is tolerated. */
	memset(frame + n, 0, 8);
	ck_assert_int_eq(meta_decode((const char *)pi.payload, pi.payload_len + 8, &d, NULL), 0);

	ck_assert_int_eq(meta_build_frame(frame, 20, &l2, &m), -ENOSPC);
	l2.vlan = 0;
	n = meta_build_frame(frame, sizeof(frame), &l2, &m);
	ck_assert_mem_eq(frame + 12, "\x88\xb5{", 3);
	ck_assert_int_eq(pkt_parse(frame, (size_t)n, &pi), PKT_META);
	ck_assert_uint_eq(pi.payload_len, (unsigned)n - 14);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("meta");
	TCase *tc = tcase_create("meta");

	tcase_add_test(tc, test_encode_exact);
	tcase_add_test(tc, test_encode_errors);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_encode_not_utf8);
	tcase_add_loop_test(tc, test_decode_errors, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_decode_limits);
	tcase_add_test(tc, test_frame);
	suite_add_tcase(s, tc);
	return check_run(s);
}
