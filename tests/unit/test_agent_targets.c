/* tests/unit/test_agent_targets.c - telling a file's TLS stack (targets.c) and the GnuTLS
 * site decoders (sites.c): file names, real executables and libraries of this system,
 * libgnutls30 3.7.9's own bytes placed at their addresses in a section of int3, Go
 * bad input and Debian's stripped go command. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/sites.h"
#include "../../agent/targets.h"
#include "check_run.h"

#define LIBSSL3 "/usr/lib/x86_64-linux-gnu/libssl.so.3"
#define LIBGNUTLS "/usr/lib/x86_64-linux-gnu/libgnutls.so.30"

/* libgnutls30 3.7.9-2+deb12u7: gnutls_record_recv_seq @0x3fae0 (0x1a bytes) tail-jumps
 * to _gnutls_recv_int @0x3e8b0; gnutls_transport_get_int @0x3b6f0. */
static const uint8_t recv_seq_bytes[] = {
	0x44, 0x8b, 0x8f, 0x70, 0x07, 0x00, 0x00, 0x49, 0x89, 0xc8, 0x48, 0x89, 0xd1,
	0x48, 0x89, 0xf2, 0xbe, 0x17, 0x00, 0x00, 0x00, 0xe9, 0xb6, 0xed, 0xff, 0xff,
};
static const uint8_t get_int_bytes[] = { 0x8b, 0x87, 0x00, 0x06, 0x00, 0x00, 0xc3 };

#define SEC_ADDR 0x3b000u
#define SEC_LEN 0x5000u
#define RECV_SEQ_AT 0x3fae0u
#define RECV_INT_AT 0x3e8b0u
#define GET_INT_AT 0x3b6f0u

static uint8_t sec_bytes[SEC_LEN];
static struct sites_code sec = { sec_bytes, SEC_LEN, SEC_ADDR };

static void sec_reset(void)
{
	memset(sec_bytes, 0xcc, sizeof(sec_bytes));
	memcpy(sec_bytes + (RECV_SEQ_AT - SEC_ADDR), recv_seq_bytes, sizeof(recv_seq_bytes));
	memcpy(sec_bytes + (GET_INT_AT - SEC_ADDR), get_int_bytes, sizeof(get_int_bytes));
}

START_TEST(library_kinds_by_file_name)
{
	ck_assert_int_eq(targets_lib_kind("/usr/lib/x86_64-linux-gnu/libssl.so.3"), TARGET_OPENSSL);
	ck_assert_int_eq(targets_lib_kind("libssl.so.1.1"), TARGET_OPENSSL);
	ck_assert_int_eq(targets_lib_kind("/lib/libgnutls.so.30.34.3"), TARGET_GNUTLS);
	ck_assert_int_eq(targets_lib_kind("/usr/lib64/libssl3.so"), TARGET_NSS);
	ck_assert_int_eq(targets_lib_kind("/usr/lib64/libnspr4.so"), TARGET_NSS);
	ck_assert(targets_is_nspr("/usr/lib64/libnspr4.so"));
	ck_assert(!targets_is_nspr("/usr/lib64/libssl3.so"));
	/* Look-alikes are not stacks. */
	ck_assert_int_eq(targets_lib_kind("/usr/lib/libssl-helper.so"), TARGET_NONE);
	ck_assert_int_eq(targets_lib_kind("/opt/libssl.so.3.d/libcrypto.so.3"), TARGET_NONE);
	ck_assert_int_eq(targets_lib_kind("libgnutlsxx.so.30"), TARGET_NONE);
	ck_assert_str_eq(targets_kind_name(TARGET_GNUTLS), "gnutls");
	ck_assert_str_eq(targets_kind_name(TARGET_GO), "go");
}
END_TEST

START_TEST(executable_kinds_from_their_symbols)
{
	char err[128], path[] = "/tmp/ecv-targets-XXXXXX";
	FILE *f;
	int fd;

	/* A dynamically linked program imports SSL_* at most: not a stack of its own. */
	ck_assert_int_eq(targets_exe_kind("/bin/sh", err, sizeof(err)), TARGET_NONE);
	if (!access(LIBSSL3, R_OK))
		ck_assert_int_eq(targets_exe_kind(LIBSSL3, err, sizeof(err)), TARGET_OPENSSL);
	ck_assert_int_eq(targets_exe_kind("/nonexistent/x", err, sizeof(err)), -ENOENT);
	/* A file that is not ELF, even with the names in it, is refused in words. */
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs("SSL_read SSL_write crypto/tls", f);
	fclose(f);
	ck_assert_int_eq(targets_exe_kind(path, err, sizeof(err)), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err, "not an ELF"));
	unlink(path);
}
END_TEST

START_TEST(gnutls_bytes_decode)
{
	uint64_t target = 0;
	uint32_t disp = 0;

	sec_reset();
	ck_assert_int_eq(sites_tail_target(&sec, RECV_SEQ_AT, sizeof(recv_seq_bytes), &target), 0);
	ck_assert_uint_eq(target, RECV_INT_AT);
	ck_assert_int_eq(sites_getter_disp(&sec, GET_INT_AT, &disp), 0);
	ck_assert_uint_eq(disp, 0x600);
	/* Not a getter: the tail-jumping function. */
	ck_assert_int_eq(sites_getter_disp(&sec, RECV_SEQ_AT, &disp), -ENOENT);
	/* A getter reading through another register proves nothing. */
	sec_bytes[GET_INT_AT - SEC_ADDR + 1] = 0x86; /* mov 0x600(%rsi),%eax */
	ck_assert_int_eq(sites_getter_disp(&sec, GET_INT_AT, &disp), -ENOENT);
	/* No jump out of the function: nothing to follow. */
	sec_reset();
	memset(sec_bytes + (RECV_SEQ_AT - SEC_ADDR) + 21, 0x90, 5);
	ck_assert_int_eq(sites_tail_target(&sec, RECV_SEQ_AT, sizeof(recv_seq_bytes), &target),
			 -ENOENT);
}
END_TEST

START_TEST(system_libgnutls_sites)
{
	struct sites_gnutls g;
	char err[128];

	if (access(LIBGNUTLS, R_OK))
		return; /* libgnutls30 absent: the byte tests above still ran */
	ck_assert_int_eq(sites_gnutls(LIBGNUTLS, &g, err, sizeof(err)), 0);
	ck_assert(g.send_offset && g.recv_offset && g.recv_addr);
	ck_assert(g.fd_known);
	ck_assert_ptr_nonnull(strstr(g.send_why, "emulated"));
	ck_assert_ptr_nonnull(strstr(g.recv_why, "emulated"));
	/* Not GnuTLS: said, not guessed. */
	if (!access(LIBSSL3, R_OK)) {
		ck_assert_int_eq(sites_gnutls(LIBSSL3, &g, err, sizeof(err)), -ENOENT);
		ck_assert_ptr_nonnull(strstr(err, "gnutls_record_send2"));
	}
}
END_TEST

START_TEST(go_bad_input_is_refused_in_words)
{
	struct sites_go g;
	char err[160];

	char ver[32];

	/* This test program holds "crypto/tls.(*Conn).Read" as a string (sites.c's), not
	 * as a function, and has no Go build info: not Go. */
	ck_assert_int_eq(targets_exe_kind("/proc/self/exe", err, sizeof(err)), TARGET_NONE);
	ck_assert_int_eq(sites_go_detect("/proc/self/exe", ver, sizeof(ver), err, sizeof(err)), 0);
	ck_assert_str_eq(ver, "");
	ck_assert_ptr_nonnull(strstr(err, "not a Go program"));
	ck_assert_int_eq(sites_go("/proc/self/exe", &g, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "not a Go program (no .go.buildinfo)"));
	ck_assert_int_eq(sites_go("/nonexistent/go", &g, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
}
END_TEST

/* Debian's go command (golang-1.19-go) is itself a stripped Go program that links
 * crypto/tls (externally linked, with cgo): found by its build info, its functions from
 * .gopclntab, its *net.TCPConn itab from .itablink. */
#define GO119 "/usr/lib/go-1.19/bin/go"

START_TEST(stripped_go_command)
{
	struct sites_go g;
	char err[160], ver[32];

	if (access(GO119, R_OK)) {
		printf("agent_targets: %s absent (golang-go), stripped_go_command not run\n",
		       GO119);
		return;
	}
	ck_assert_int_eq(sites_go_detect(GO119, ver, sizeof(ver), err, sizeof(err)), 1);
	ck_assert_int_eq(strncmp(ver, "go1.19", 6), 0);
	ck_assert_int_eq(targets_exe_kind(GO119, err, sizeof(err)), TARGET_GO);
	ck_assert_int_eq(sites_go(GO119, &g, err, sizeof(err)), 0);
	ck_assert(g.stripped);
	ck_assert(!g.pie);
	ck_assert_uint_ne(g.tcpconn_itab, 0);
	for (int f = 0; f < SITES_GO_N; f++) {
		ck_assert(g.f[f].entry_jbe); /* Go 1.19: the stack check's jbe */
		ck_assert_uint_gt(g.f[f].n_rets, 0);
	}
	ck_assert_uint_ne(g.close, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("agent_targets");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, library_kinds_by_file_name);
	tcase_add_test(tc, executable_kinds_from_their_symbols);
	tcase_add_test(tc, gnutls_bytes_decode);
	tcase_add_test(tc, system_libgnutls_sites);
	tcase_add_test(tc, go_bad_input_is_refused_in_words);
	tcase_add_test(tc, stripped_go_command);
	suite_add_tcase(s, tc);
	return check_run(s);
}
