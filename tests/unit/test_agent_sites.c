/* tests/unit/test_agent_sites.c - the probe-site chooser on real code: Debian's
 * libssl.so.3 file, and SSL_read/SSL_read_ex as that library's bytes (placed at their
 * own addresses in a section of int3) with the edits that must make it refuse. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../agent/sites.h"
#include "check_run.h"

#define LIBSSL3 "/usr/lib/x86_64-linux-gnu/libssl.so.3"

/* libssl3 3.0.19-1~deb12u2: SSL_read @0x35430 (0x83 bytes) and SSL_read_ex @0x354c0
 * (0x1d bytes), both calling ssl_read_internal @0x35290, which begins push %r13. */
static const uint8_t ssl_read_bytes[] = {
	0x48, 0x83, 0xec, 0x18, 0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00, 0x48, 0x89,
	0x44, 0x24, 0x08, 0x31, 0xc0, 0x85, 0xd2, 0x78, 0x2f, 0x48, 0x89, 0xe1, 0x48, 0x63, 0xd2,
	0xe8, 0x3d, 0xfe, 0xff, 0xff, 0x85, 0xc0, 0x7e, 0x03, 0x8b, 0x04, 0x24, 0x48, 0x8b, 0x54,
	0x24, 0x08, 0x64, 0x48, 0x2b, 0x14, 0x25, 0x28, 0x00, 0x00, 0x00, 0x75, 0x44, 0x48, 0x83,
	0xc4, 0x18, 0x31, 0xd2, 0x31, 0xc9, 0x31, 0xf6, 0x31, 0xff, 0xc3, 0xe8, 0x44, 0x9f, 0xfe,
	0xff, 0x48, 0x8d, 0x15, 0x05, 0xd5, 0x04, 0x00, 0xbe, 0x4c, 0x07, 0x00, 0x00, 0x48, 0x8d,
	0x3d, 0x62, 0xcc, 0x04, 0x00, 0xe8, 0x2c, 0xa6, 0xfe, 0xff, 0x31, 0xc0, 0x31, 0xd2, 0xbe,
	0x0f, 0x01, 0x00, 0x00, 0xbf, 0x14, 0x00, 0x00, 0x00, 0xe8, 0x49, 0xa4, 0xfe, 0xff, 0xb8,
	0xff, 0xff, 0xff, 0xff, 0xeb, 0xac, 0xe8, 0x3d, 0xb1, 0xfe, 0xff,
};
static const uint8_t ssl_read_ex_bytes[] = {
	0x48, 0x83, 0xec, 0x08, 0xe8, 0xc7, 0xfd, 0xff, 0xff, 0x31, 0xd2, 0x85, 0xc0, 0x0f, 0x48,
	0xc2, 0x48, 0x83, 0xc4, 0x08, 0x31, 0xd2, 0x31, 0xc9, 0x31, 0xf6, 0x31, 0xff, 0xc3,
};
static const uint8_t push_r13[] = { 0x41, 0x55, 0x41, 0x54, 0x55, 0x53 };

#define SEC_ADDR 0x35200u
#define SEC_LEN 0x400u
#define READ_AT 0x35430u
#define READ_EX_AT 0x354c0u
#define CALLEE_AT 0x35290u

/* A section like the library's .text around these functions (calls to the PLT, at
 * lower addresses, fall outside it as they do there). */
static uint8_t sec_bytes[SEC_LEN];
static struct sites_code sec = { sec_bytes, SEC_LEN, SEC_ADDR };

static void sec_reset(void)
{
	memset(sec_bytes, 0xcc, sizeof(sec_bytes));
	memcpy(sec_bytes + (READ_AT - SEC_ADDR), ssl_read_bytes, sizeof(ssl_read_bytes));
	memcpy(sec_bytes + (READ_EX_AT - SEC_ADDR), ssl_read_ex_bytes, sizeof(ssl_read_ex_bytes));
	memcpy(sec_bytes + (CALLEE_AT - SEC_ADDR), push_r13, sizeof(push_r13));
}

static struct site follow(uint64_t at, size_t len, bool ex)
{
	struct site s;

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(sites_follow(&sec, at, len, ex, &s), 0);
	return s;
}

START_TEST(debian_bytes_lead_to_the_internal_function)
{
	struct site r, x;

	sec_reset();
	r = follow(READ_AT, sizeof(ssl_read_bytes), false);
	x = follow(READ_EX_AT, sizeof(ssl_read_ex_bytes), true);
	ck_assert_msg(r.internal, "SSL_read: %s", r.why);
	ck_assert_msg(x.internal, "SSL_read_ex: %s", x.why);
	ck_assert_uint_eq(r.addr, CALLEE_AT);
	ck_assert_uint_eq(x.addr, CALLEE_AT);
	ck_assert_ptr_nonnull(strstr(r.why, "push"));
	ck_assert_ptr_nonnull(strstr(r.why, "sub"));
}
END_TEST

START_TEST(refuses_what_it_cannot_prove)
{
	struct site s;

	/* The _ex variant's call passes rcx through; the plain one must set it. */
	sec_reset();
	s = follow(READ_AT, sizeof(ssl_read_bytes), true);
	ck_assert_msg(!s.internal && strstr(s.why, "argument register"), "%s", s.why);

	/* mov %rsp,%rcx -> mov %rsi,%rdi: the first argument no longer passes through. */
	sec_reset();
	memcpy(sec_bytes + (READ_AT - SEC_ADDR) + 0x18, "\x48\x89\xf7", 3);
	s = follow(READ_AT, sizeof(ssl_read_bytes), false);
	ck_assert_msg(!s.internal && strstr(s.why, "argument register"), "%s", s.why);

	/* The callee begins with sub $0x8,%rsp: single-stepped too, nothing gained. */
	sec_reset();
	memcpy(sec_bytes + (CALLEE_AT - SEC_ADDR), "\x48\x83\xec\x08", 4);
	s = follow(READ_EX_AT, sizeof(ssl_read_ex_bytes), true);
	ck_assert_msg(!s.internal && strstr(s.why, "begins with sub"), "%s", s.why);

	/* The symbol's own first instruction is emulated: it is the cheapest site. */
	sec_reset();
	memcpy(sec_bytes + (READ_EX_AT - SEC_ADDR), "\x55\x90\x90\x90", 4);
	s = follow(READ_EX_AT, sizeof(ssl_read_ex_bytes), true);
	ck_assert_msg(!s.internal && strstr(s.why, "emulated already"), "%s", s.why);

	/* Undecodable bytes (0x06 is invalid in 64-bit mode) inside the function. */
	sec_reset();
	sec_bytes[READ_EX_AT - SEC_ADDR + 0x10] = 0x06;
	s = follow(READ_EX_AT, sizeof(ssl_read_ex_bytes), true);
	ck_assert_msg(!s.internal && strstr(s.why, "undecodable"), "%s", s.why);

	/* A second in-section callee on the error path: two candidates. */
	sec_reset();
	memcpy(sec_bytes + (READ_AT - SEC_ADDR) + 0x47, "\xe8\x84\x00\x00\x00", 5);
	s = follow(READ_AT, sizeof(ssl_read_bytes), false);
	ck_assert_msg(!s.internal && strstr(s.why, "more than one"), "%s", s.why);

	/* The call leaves the section: not a function of this object's code. */
	sec_reset();
	s = follow(READ_EX_AT, sizeof(ssl_read_ex_bytes), true);
	ck_assert(s.internal);
	sec.addr = CALLEE_AT + 1;
	sec.bytes = sec_bytes + (CALLEE_AT + 1 - SEC_ADDR);
	sec.len = SEC_LEN - (CALLEE_AT + 1 - SEC_ADDR);
	s = follow(READ_EX_AT, sizeof(ssl_read_ex_bytes), true);
	ck_assert_msg(!s.internal && strstr(s.why, "no call into its section"), "%s", s.why);
	sec.addr = SEC_ADDR;
	sec.bytes = sec_bytes;
	sec.len = SEC_LEN;

	/* A tail jump out of the function instead of a call. */
	sec_reset();
	sec_bytes[READ_EX_AT - SEC_ADDR + 4] = 0xe9;
	s = follow(READ_EX_AT, sizeof(ssl_read_ex_bytes), true);
	ck_assert_msg(!s.internal && strstr(s.why, "tail jump"), "%s", s.why);
}
END_TEST

static void *slurp(const char *path, size_t *size)
{
	struct stat st;
	void *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	ck_assert_int_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*size = (size_t)st.st_size;
	return buf;
}

START_TEST(system_libssl3_internal_sites)
{
	struct sites s;
	char err[128];
	uint8_t first[2];
	int fd;

	if (access(LIBSSL3, R_OK)) {
		printf("SKIP system_libssl3_internal_sites: no %s\n", LIBSSL3);
		return;
	}
	ck_assert_int_eq(sites_choose(LIBSSL3, SITES_AUTO, &s, err, sizeof(err)), 0);
	for (int f = 0; f < SITE_N; f++) {
		ck_assert_msg(s.f[f].present, "%s", sites_func_name(f));
		ck_assert_msg(s.f[f].internal, "%s: %s", sites_func_name(f), s.f[f].why);
		ck_assert_uint_ne(s.f[f].addr, s.f[f].sym_addr);
	}
	ck_assert_uint_eq(s.f[SITE_SSL_READ].offset, s.f[SITE_SSL_READ_EX].offset);
	ck_assert_uint_eq(s.f[SITE_SSL_WRITE].offset, s.f[SITE_SSL_WRITE_EX].offset);
	ck_assert_uint_ne(s.f[SITE_SSL_READ].offset, s.f[SITE_SSL_WRITE].offset);
	/* The file offset holds a push, as the kernel will see it. */
	fd = open(LIBSSL3, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, first, 2, (off_t)s.f[SITE_SSL_READ].offset), 2);
	close(fd);
	ck_assert(first[0] == 0x41 && first[1] >= 0x50 && first[1] <= 0x57);

	ck_assert_int_eq(sites_choose(LIBSSL3, SITES_EXPORTED, &s, err, sizeof(err)), 0);
	for (int f = 0; f < SITE_N; f++)
		ck_assert(s.f[f].present && !s.f[f].internal);
}
END_TEST

START_TEST(bad_input_is_refused_in_words)
{
	struct sites s;
	char err[128];
	size_t size;
	uint8_t *img;

	ck_assert_int_eq(sites_choose_mem("not an elf", 10, SITES_AUTO, &s, err, sizeof(err)),
			 -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err, "ELF"));
	ck_assert_int_eq(sites_choose("/nonexistent/libssl.so.3", SITES_AUTO, &s, err, sizeof(err)),
			 -ENOENT);
	img = slurp(LIBSSL3, &size);
	if (!img)
		return;
	/* Cut inside the section headers' target range: the header claims more than there is. */
	ck_assert_int_ne(sites_choose_mem(img, 4096, SITES_AUTO, &s, err, sizeof(err)), 0);
	ck_assert_msg(strlen(err) > 5, "%s", err);
	for (int f = 0; f < SITE_N; f++)
		ck_assert(!s.f[f].internal);
	free(img);
}
END_TEST

START_TEST(mode_names)
{
	enum sites_mode m;

	ck_assert_int_eq(sites_mode_parse("exported", &m), 0);
	ck_assert_int_eq(m, SITES_EXPORTED);
	ck_assert_int_eq(sites_mode_parse("auto", &m), 0);
	ck_assert_int_eq(m, SITES_AUTO);
	ck_assert_int_eq(sites_mode_parse("internal", &m), -EINVAL);
	ck_assert_str_eq(sites_mode_name(SITES_EXPORTED), "exported");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("agent_sites");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, debian_bytes_lead_to_the_internal_function);
	tcase_add_test(tc, refuses_what_it_cannot_prove);
	tcase_add_test(tc, system_libssl3_internal_sites);
	tcase_add_test(tc, bad_input_is_refused_in_words);
	tcase_add_test(tc, mode_names);
	suite_add_tcase(s, tc);
	return check_run(s);
}
