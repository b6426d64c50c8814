/* tests/unit/test_common_log.c - levels, ident, format and errno preservation. stderr is
 * redirected to a temporary file for each test and read back. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "log.h"

static FILE *capture;
static int saved_fd = -1;

static void setup(void)
{
	capture = tmpfile();
	ck_assert_ptr_nonnull(capture);
	fflush(stderr);
	saved_fd = dup(STDERR_FILENO);
	ck_assert_int_ge(dup2(fileno(capture), STDERR_FILENO), 0);
	log_set_ident(NULL);
	log_set_level(LOG_INFO);
}

static void teardown(void)
{
	fflush(stderr);
	dup2(saved_fd, STDERR_FILENO);
	close(saved_fd);
	fclose(capture);
}

/* Everything written to stderr since setup(). */
static const char *captured(void)
{
	static char buf[4096];
	size_t n;

	fflush(stderr);
	rewind(capture);
	n = fread(buf, 1, sizeof(buf) - 1, capture);
	buf[n] = '\0';
	return buf;
}

START_TEST(test_levels)
{
	ck_assert_int_eq(log_get_level(), LOG_INFO);
	log_err("failed to open %s: %s", "x.pcap", "No such file or directory");
	log_warn("warn %d", 1);
	log_info("info %u", 2u);
	log_debug("hidden %d", 3);
	ck_assert_str_eq(captured(),
			 "ecv: error: failed to open x.pcap: No such file or directory\n"
			 "ecv: warning: warn 1\n"
			 "ecv: info: info 2\n");
	log_set_level(LOG_DEBUG);
	log_debug("shown");
	ck_assert_ptr_nonnull(strstr(captured(), "ecv: debug: shown\n"));
	log_set_level(LOG_ERROR);
	log_warn("hidden");
	ck_assert_ptr_null(strstr(captured(), "hidden"));
	/* Out-of-range levels are clamped rather than disabling errors. */
	log_set_level((enum log_level) - 5);
	ck_assert_int_eq(log_get_level(), LOG_ERROR);
	log_set_level((enum log_level)99);
	ck_assert_int_eq(log_get_level(), LOG_DEBUG);
}
END_TEST

START_TEST(test_ident_and_newline)
{
	char long_ident[100];

	log_set_ident("tvn");
	log_info("with newline\n");
	ck_assert_str_eq(captured(), "tvn: info: with newline\n");
	memset(long_ident, 'i', sizeof(long_ident) - 1);
	long_ident[sizeof(long_ident) - 1] = '\0';
	log_set_ident(long_ident); /* truncated, never overflowing */
	log_info("x");
	ck_assert_ptr_nonnull(strstr(captured(), "iii: info: x\n"));
}
END_TEST

START_TEST(test_errno_preserved)
{
	char big[3000];

	errno = EADDRINUSE;
	log_err("bind failed");
	ck_assert_int_eq(errno, EADDRINUSE);
	/* A message longer than the line buffer is cut, still one line. */
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_info("%s", big);
	ck_assert_ptr_nonnull(strstr(captured(), "bbbb\n"));
	ck_assert_int_eq(errno, EADDRINUSE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_levels);
	tcase_add_test(tc, test_ident_and_newline);
	tcase_add_test(tc, test_errno_preserved);
	suite_add_tcase(s, tc);
	return check_run(s);
}
