/* tests/unit/test_common_cli.c - what --help and bad usage print, where, and the exit
 * status they give. stdout and stderr are redirected to temporary files for each test
 * and read back. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "cli.h"

#define USAGE_TEXT "Usage: ecv-test [OPTIONS] FILE\n  --quiet  no summary line\n"

/* The redirected stream: [0] stdout, [1] stderr. */
static FILE *capture[2];
static int saved_fd[2] = { -1, -1 };
static const int stream_fd[2] = { STDOUT_FILENO, STDERR_FILENO };

static void usage(FILE *f)
{
	fputs(USAGE_TEXT, f);
}

static void setup(void)
{
	int i;

	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < 2; i++) {
		capture[i] = tmpfile();
		ck_assert_ptr_nonnull(capture[i]);
		saved_fd[i] = dup(stream_fd[i]);
		ck_assert_int_ge(dup2(fileno(capture[i]), stream_fd[i]), 0);
	}
}

static void teardown(void)
{
	int i;

	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < 2; i++) {
		dup2(saved_fd[i], stream_fd[i]);
		close(saved_fd[i]);
		fclose(capture[i]);
	}
}

/* Everything written to stdout (i = 0) or stderr (i = 1) since setup(). */
static const char *captured(int i)
{
	static char buf[2][4096];
	size_t n;

	fflush(i ? stderr : stdout);
	rewind(capture[i]);
	n = fread(buf[i], 1, sizeof(buf[i]) - 1, capture[i]);
	buf[i][n] = '\0';
	return buf[i];
}

START_TEST(test_help)
{
	/* --help is a request, not a mistake: the text on stdout (for a pager), exit 0. */
	ck_assert_int_eq(cli_help_or_usage_error('h', usage), 0);
	ck_assert_str_eq(captured(0), USAGE_TEXT);
	ck_assert_str_eq(captured(1), "");
}
END_TEST

/* What getopt_long returns for an unknown option ('?') and, with a leading ':' in its
 * option string, for a missing argument (':'); any other unhandled letter too. */
static const int refused[] = { '?', ':', 'q' };

START_TEST(test_refused_option)
{
	ck_assert_int_eq(cli_help_or_usage_error(refused[_i], usage), 2);
	ck_assert_str_eq(captured(0), "");
	ck_assert_str_eq(captured(1), USAGE_TEXT);
}
END_TEST

START_TEST(test_usage_error)
{
	ck_assert_int_eq(cli_usage_error(usage), 2);
	ck_assert_str_eq(captured(0), "");
	ck_assert_str_eq(captured(1), USAGE_TEXT);
}
END_TEST

START_TEST(test_invalid_value)
{
	/* The value is quoted as given, so an empty or spaced one is visible. */
	ck_assert_int_eq(cli_invalid_value("ecv-test", "12 k", usage), 2);
	ck_assert_int_eq(cli_invalid_value("ecv-test", "", usage), 2);
	ck_assert_str_eq(captured(0), "");
	ck_assert_str_eq(captured(1), "ecv-test: invalid value '12 k'\n" USAGE_TEXT
				      "ecv-test: invalid value ''\n" USAGE_TEXT);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("cli");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_help);
	tcase_add_loop_test(tc, test_refused_option, 0, sizeof(refused) / sizeof(refused[0]));
	tcase_add_test(tc, test_usage_error);
	tcase_add_test(tc, test_invalid_value);
	suite_add_tcase(s, tc);
	return check_run(s);
}
