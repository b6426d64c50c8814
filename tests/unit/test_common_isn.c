/* tests/unit/test_common_isn.c - DESIGN §3 vectors, in the library and in build/ecv-isn.
 * The vectors are the five published in DESIGN.md; tools tests run the built binary
 * ($BUILD/ecv-isn, BUILD defaults to "build") through popen(). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "check_run.h"
#include "isn.h"

struct vector {
	const char *src;
	uint16_t sport;
	const char *dst;
	uint16_t dport;
	int dir;
	uint32_t isn;
};

static const struct vector vectors[] = {
	{ "10.0.0.1", 40000, "10.0.0.2", 443, 0, 0xb90b94a2 },
	{ "10.0.0.2", 443, "10.0.0.1", 40000, 1, 0xb7c8c0c1 },
	{ "192.168.1.10", 51515, "10.96.0.5", 8443, 1, 0xa90adb43 },
	{ "2001:db8::1", 55555, "2001:db8::2", 443, 0, 0x2cde54ec },
	{ "127.0.0.1", 4433, "127.0.0.1", 34567, 0, 0xca77e699 },
};

static void make_tuple(struct ecv_tuple *t, const struct vector *v)
{
	uint8_t s[16], d[16];

	ck_assert_int_eq(tuple_addr_parse(v->src, s, NULL), 0);
	ck_assert_int_eq(tuple_addr_parse(v->dst, d, NULL), 0);
	ck_assert_int_eq(tuple_init(t, s, v->sport, d, v->dport, IPPROTO_TCP), 0);
}

START_TEST(test_vector)
{
	const struct vector *v = &vectors[_i];
	struct ecv_tuple t;

	make_tuple(&t, v);
	ck_assert_int_eq(isn_dir(&t), v->dir);
	ck_assert_int_eq(tuple_dir(&t), v->dir);
	ck_assert_uint_eq(isn_compute(&t), v->isn);
}
END_TEST

START_TEST(test_directions_differ)
{
	struct ecv_tuple t, r;

	make_tuple(&t, &vectors[0]);
	tuple_reverse(&r, &t);
	ck_assert_int_ne(isn_dir(&t), isn_dir(&r));
	ck_assert_uint_ne(isn_compute(&t), isn_compute(&r));
	/* The protocol is part of the message. */
	r = t;
	r.proto = IPPROTO_UDP;
	ck_assert_uint_ne(isn_compute(&t), isn_compute(&r));
}
END_TEST

/* Pseudo-random tuple number i (fixed LCG, so failures reproduce), IPv6 when i is odd. */
static void random_tuple(int i, struct ecv_tuple *t, char *s, char *d)
{
	uint32_t x = 2166136261u ^ (uint32_t)i;
	uint8_t a[16], b[16];
	int k;

	for (k = 0; k < 16; k++) {
		x = x * 1664525u + 1013904223u;
		a[k] = (uint8_t)(x >> 24);
		x = x * 1664525u + 1013904223u;
		b[k] = (uint8_t)(x >> 24);
	}
	if (i % 2 == 0) {
		tuple_addr_from_v4(a, a + 12);
		tuple_addr_from_v4(b, b + 12);
	} else {
		a[0] = b[0] = 0x20; /* keep clear of the IPv4-mapped range */
	}
	x = x * 1664525u + 1013904223u;
	ck_assert_int_eq(tuple_init(t, a, (uint16_t)(x >> 16), b, (uint16_t)x, IPPROTO_TCP), 0);
	tuple_addr_str(a, s);
	tuple_addr_str(b, d);
}

/* DESIGN §3 written out again from the text, with libcrypto's EVP interface. */
START_TEST(test_formula)
{
	char s[TUPLE_ADDR_STRLEN], d[TUPLE_ADDR_STRLEN];
	uint8_t msg[40], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	struct ecv_tuple t;
	uint16_t sp, dp;
	int dir;

	random_tuple(_i, &t, s, d);
	sp = htons(t.sport);
	dp = htons(t.dport);
	memcpy(msg + 4, t.saddr, 16);
	memcpy(msg + 20, t.daddr, 16);
	memcpy(msg + 36, &sp, 2);
	memcpy(msg + 38, &dp, 2);
	/* A(src)||port_be(sport) and A(dst)||port_be(dport) are contiguous in msg. */
	dir = memcmp(msg + 4, msg + 20, 16) < 0 ||
			      (memcmp(msg + 4, msg + 20, 16) == 0 && memcmp(&sp, &dp, 2) < 0)
		      ? 0
		      : 1;
	msg[0] = 0x01;
	msg[1] = IPPROTO_TCP;
	msg[2] = (uint8_t)dir;
	msg[3] = 0x00;
	ck_assert_int_eq(EVP_Digest(msg, sizeof(msg), md, &mdlen, EVP_sha256(), NULL), 1);
	ck_assert_uint_eq(mdlen, 32);
	ck_assert_int_eq(isn_dir(&t), dir);
	ck_assert_uint_eq(isn_compute(&t), (uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 |
						   (uint32_t)md[2] << 8 | md[3]);
}
END_TEST

/* Runs the tool with a shell-free-enough command line (arguments are fixed strings
 * without shell metacharacters); returns the exit status and the first output line. */
static int run_tool(const char *args, char *out, size_t cap)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char cmd[512];
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "%s/ecv-isn %s 2>&1", build, args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	out[0] = '\0';
	if (!fgets(out, (int)cap, p))
		out[0] = '\0';
	while (fgetc(p) != EOF)
		;
	st = pclose(p);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(test_tool_vector)
{
	const struct vector *v = &vectors[_i];
	char args[256], out[256], want[64];

	snprintf(args, sizeof(args), "%s %u %s %u", v->src, v->sport, v->dst, v->dport);
	snprintf(want, sizeof(want), "dir=%d isn=0x%08x\n", v->dir, v->isn);
	ck_assert_int_eq(run_tool(args, out, sizeof(out)), 0);
	ck_assert_str_eq(out, want);
}
END_TEST

static const struct {
	const char *args;
	const char *names; /* the bad argument the message must name */
} bad_args[] = {
	{ "10.0.0.1 65536 10.0.0.2 443", "SPORT" }, { "10.0.0.1 -1 10.0.0.2 443", "SPORT" },
	{ "10.0.0.1 1x 10.0.0.2 443", "SPORT" },    { "10.0.0.1 80 10.0.0.2 ''", "DPORT" },
	{ "10.0.0.1 80 10.0.0.2 0x50", "DPORT" },   { "10.0.0.256 80 10.0.0.2 443", "SRC" },
	{ "10.0.0.1 80 host.example 443", "DST" },  { "10.0.0.1 80 ::1 443", "family" },
	{ "10.0.0.1 80 10.0.0.2", "4 arguments" },  { "10.0.0.1 80 10.0.0.2 443 5", "4 arguments" },
	{ "--frobnicate", "frobnicate" },
};

START_TEST(test_tool_errors)
{
	char out[256];

	ck_assert_int_eq(run_tool(bad_args[_i].args, out, sizeof(out)), 2);
	ck_assert_msg(strstr(out, bad_args[_i].names), "'%s' -> '%s'", bad_args[_i].args, out);
}
END_TEST

/* The tool and the library agree on tuples other than the published ones. */
START_TEST(test_tool_random)
{
	char s[TUPLE_ADDR_STRLEN], d[TUPLE_ADDR_STRLEN], args[256], out[256], want[64];
	struct ecv_tuple t;

	random_tuple(_i, &t, s, d);
	snprintf(args, sizeof(args), "%s %u %s %u", s, t.sport, d, t.dport);
	snprintf(want, sizeof(want), "dir=%d isn=0x%08x\n", isn_dir(&t), isn_compute(&t));
	ck_assert_int_eq(run_tool(args, out, sizeof(out)), 0);
	ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(test_tool_help)
{
	char out[256];

	ck_assert_int_eq(run_tool("--help", out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "Usage: ecv-isn SRC SPORT DST DPORT"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("isn");
	TCase *lib = tcase_create("library"), *tool = tcase_create("ecv-isn");

	tcase_add_loop_test(lib, test_vector, 0, sizeof(vectors) / sizeof(vectors[0]));
	tcase_add_test(lib, test_directions_differ);
	tcase_add_loop_test(lib, test_formula, 0, 200);
	tcase_add_loop_test(tool, test_tool_vector, 0, sizeof(vectors) / sizeof(vectors[0]));
	tcase_add_loop_test(tool, test_tool_errors, 0, sizeof(bad_args) / sizeof(bad_args[0]));
	tcase_add_loop_test(tool, test_tool_random, 0, 16);
	tcase_add_test(tool, test_tool_help);
	suite_add_tcase(s, lib);
	suite_add_tcase(s, tool);
	return check_run(s);
}
