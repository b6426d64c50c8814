/* tests/unit/test_common_config.c - `--config FILE`: the argv a JSON file stands for, the
 * precedence of the command line over the file, and the exact error for each bad file.
 * Fixtures are written by the tests themselves into a fresh /tmp/ecvp-config-* dir. */
#include <check.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "config.h"

enum { OPT_CONFIG = 256, OPT_LISTEN, OPT_THREADS, OPT_TVN, OPT_RATIO, OPT_NO_AUTO, OPT_COLOR };

/* A subset shaped like the programs' tables: required, repeatable, flag, optional. */
static const struct option test_opts[] = {
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "tvn", required_argument, NULL, OPT_TVN },
	{ "ratio", required_argument, NULL, OPT_RATIO },
	{ "no-auto", no_argument, NULL, OPT_NO_AUTO },
	{ "verbose", no_argument, NULL, 'v' },
	{ "color", optional_argument, NULL, OPT_COLOR },
	{ NULL, 0, NULL, 0 },
};

static char dir[64];
static char path[128];
static char err[512];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ecvp-config-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/cfg.json", dir);
	err[0] = '\0';
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

/* Loads text and expects failure with exactly want (path substituted for %s). */
static void expect_error(const char *text, int want_ret, const char *want_fmt)
{
	char want[512], **av = (char **)1;
	int ac = -1;

	write_file(text);
	ck_assert_int_eq(config_to_argv(path, test_opts, &ac, &av, err, sizeof(err)), want_ret);
	ck_assert_ptr_null(av);
	ck_assert_int_eq(ac, 0);
	snprintf(want, sizeof(want), want_fmt, path);
	ck_assert_str_eq(err, want);
}

START_TEST(test_every_value_type)
{
	char **av = NULL;
	int ac = -1;

	write_file("{\n"
		   "  \"listen\": \"0.0.0.0:4789\",\n"
		   "  \"threads\": 4,\n"
		   "  \"ratio\": 0.1,\n"
		   "  \"tvn\": [\"tvn-0.tvn.ecv.svc:4789\", \"tvn-1.tvn.ecv.svc\"],\n"
		   "  \"verbose\": true,\n"
		   "  \"no-auto\": false,\n"
		   "  \"color\": \"never\"\n"
		   "}\n");
	ck_assert_int_eq(config_to_argv(path, test_opts, &ac, &av, err, sizeof(err)), 0);
	ck_assert_int_eq(ac, 7);
	/* In file order; false leaves the flag out entirely. */
	ck_assert_str_eq(av[0], "--listen=0.0.0.0:4789");
	ck_assert_str_eq(av[1], "--threads=4");
	ck_assert_str_eq(av[2], "--ratio=0.1");
	ck_assert_str_eq(av[3], "--tvn=tvn-0.tvn.ecv.svc:4789");
	ck_assert_str_eq(av[4], "--tvn=tvn-1.tvn.ecv.svc");
	ck_assert_str_eq(av[5], "--verbose");
	ck_assert_str_eq(av[6], "--color=never");
	ck_assert_ptr_null(av[7]);
	config_argv_free(av);
}
END_TEST

START_TEST(test_optional_flag_and_empty_values)
{
	char **av = NULL;
	int ac = -1;

	/* A value that starts with a dash stays one token: "--name=value" never splits. */
	write_file("{\"color\": true, \"tvn\": [], \"listen\": \"-weird\", \"threads\": -1}");
	ck_assert_int_eq(config_to_argv(path, test_opts, &ac, &av, err, sizeof(err)), 0);
	ck_assert_int_eq(ac, 3);
	ck_assert_str_eq(av[0], "--color");
	ck_assert_str_eq(av[1], "--listen=-weird");
	ck_assert_str_eq(av[2], "--threads=-1");
	ck_assert_ptr_null(av[3]);
	config_argv_free(av);

	write_file("{}");
	ck_assert_int_eq(config_to_argv(path, test_opts, &ac, &av, err, sizeof(err)), 0);
	ck_assert_int_eq(ac, 0);
	ck_assert_ptr_nonnull(av);
	ck_assert_ptr_null(av[0]);
	config_argv_free(av);
	config_argv_free(NULL);
}
END_TEST

START_TEST(test_unknown_key)
{
	expect_error("{\"listen\": \"x\", \"lisen\": \"y\"}", -EINVAL, "%s: unknown key 'lisen'");
	/* Names are matched in full: getopt's abbreviations are not accepted in a file. */
	expect_error("{\"list\": \"x\"}", -EINVAL, "%s: unknown key 'list'");
	expect_error("{\"--listen\": \"x\"}", -EINVAL, "%s: unknown key '--listen'");
}
END_TEST

START_TEST(test_wrong_types)
{
	expect_error("{\"listen\": true}", -EINVAL,
		     "%s: key 'listen': expected a string, got a boolean");
	expect_error("{\"listen\": null}", -EINVAL,
		     "%s: key 'listen': expected a string, got null");
	expect_error("{\"verbose\": \"yes\"}", -EINVAL,
		     "%s: key 'verbose': expected a boolean, got a string");
	expect_error("{\"verbose\": 1}", -EINVAL,
		     "%s: key 'verbose': expected a boolean, got a number");
	/* Arrays only repeat flags that take a value. */
	expect_error("{\"verbose\": [true, true]}", -EINVAL,
		     "%s: key 'verbose': expected a boolean, got an array");
	expect_error("{\"color\": [\"a\"]}", -EINVAL,
		     "%s: key 'color': expected a string or a boolean, got an array");
	expect_error("{\"tvn\": [\"a\", [\"b\"]]}", -EINVAL,
		     "%s: key 'tvn'[1]: expected a string, got an array");
	expect_error("{\"tvn\": [\"a\", false]}", -EINVAL,
		     "%s: key 'tvn'[1]: expected a string, got a boolean");
}
END_TEST

START_TEST(test_nested_objects)
{
	expect_error("{\"listen\": {\"addr\": \"0.0.0.0\"}}", -EINVAL,
		     "%s: key 'listen': nested objects are not allowed");
	expect_error("{\"tvn\": [{\"host\": \"a\"}]}", -EINVAL,
		     "%s: key 'tvn'[0]: expected a string, got an object");
	expect_error("[\"--listen=x\"]", -EINVAL,
		     "%s: expected a JSON object of option names, got an array");
	expect_error("{\"config\": \"/etc/other.json\"}", -EINVAL,
		     "%s: key 'config': a config file cannot name another");
}
END_TEST

START_TEST(test_invalid_json_has_line_and_column)
{
	/* Missing ':' after "threads" on line 3: jansson reports the token it choked on. */
	expect_error("{\n  \"listen\": \"x\",\n  \"threads\" 2\n}\n", -EINVAL,
		     "%s:3:13: invalid JSON: ':' expected near '2'");
	expect_error("{\"listen\": \"x\",\n \"listen\": \"y\"}", -EINVAL,
		     "%s:2:9: invalid JSON: duplicate object key near '\"listen\"'");
	expect_error("", -EINVAL, "%s:1:0: invalid JSON: '[' or '{' expected near end of file");
}
END_TEST

START_TEST(test_unreadable_file)
{
	char **av = (char **)1;
	char want[512];
	int ac;

	snprintf(path, sizeof(path), "%s/missing.json", dir);
	ck_assert_int_eq(config_to_argv(path, test_opts, &ac, &av, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_null(av);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	ck_assert_str_eq(err, want);

	ck_assert_int_eq(config_to_argv(dir, test_opts, &ac, &av, err, sizeof(err)), -EISDIR);
	snprintf(want, sizeof(want), "%s: Is a directory", dir);
	ck_assert_str_eq(err, want);
}
END_TEST

/* What the programs do with the merged argv: the command line overrides single values,
 * repeatable flags collect the file's values first. */
START_TEST(test_merge_command_line_wins)
{
	char *argv[] = { "tvn", "--threads", "8", "--config", path, "--tvn=c", NULL };
	const char *listen = NULL, *threads = NULL, *tvns[4] = { 0 };
	int ac, c, ntvn = 0, nconfig = 0;
	char **av = NULL;

	write_file("{\"listen\": \"127.0.0.1:4789\", \"threads\": 2, \"tvn\": [\"a\", \"b\"]}");
	ck_assert_int_eq(config_merge(6, argv, test_opts, &ac, &av, err, sizeof(err)), 0);
	ck_assert_int_eq(ac, 10);
	ck_assert_str_eq(av[0], "tvn");
	ck_assert_str_eq(av[1], "--listen=127.0.0.1:4789");
	ck_assert_str_eq(av[4], "--tvn=b");
	ck_assert_str_eq(av[5], "--threads");
	ck_assert_ptr_null(av[10]);

	optind = 0; /* GNU: full re-initialisation */
	while ((c = getopt_long(ac, av, "v", test_opts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			listen = optarg;
			break;
		case OPT_THREADS:
			threads = optarg;
			break;
		case OPT_TVN:
			ck_assert_int_lt(ntvn, 4);
			tvns[ntvn++] = optarg;
			break;
		case OPT_CONFIG:
			nconfig++;
			break;
		default:
			ck_abort_msg("unexpected option %d", c);
		}
	}
	ck_assert_str_eq(listen, "127.0.0.1:4789");
	ck_assert_str_eq(threads, "8");
	ck_assert_int_eq(ntvn, 3);
	ck_assert_str_eq(tvns[0], "a");
	ck_assert_str_eq(tvns[1], "b");
	ck_assert_str_eq(tvns[2], "c");
	ck_assert_int_eq(nconfig, 1);
	config_argv_free(av);
}
END_TEST

START_TEST(test_merge_forms_and_errors)
{
	char eq[160], want[512], **av = NULL;
	int ac;

	write_file("{\"verbose\": true}");
	snprintf(eq, sizeof(eq), "--config=%s", path);
	{
		char *argv[] = { "ecv-agent", eq, "-v", NULL };

		ck_assert_int_eq(config_merge(3, argv, test_opts, &ac, &av, err, sizeof(err)), 0);
		ck_assert_int_eq(ac, 4);
		ck_assert_str_eq(av[1], "--verbose");
		ck_assert_str_eq(av[2], eq);
		ck_assert_str_eq(av[3], "-v");
		config_argv_free(av);
	}
	{
		/* No --config: an owned copy, so the caller frees the same way. */
		char *argv[] = { "tvn", "--threads=2", "--", "--config", NULL };

		ck_assert_int_eq(config_merge(4, argv, test_opts, &ac, &av, err, sizeof(err)), 0);
		ck_assert_int_eq(ac, 4);
		ck_assert_ptr_ne(av, argv);
		ck_assert_str_eq(av[1], "--threads=2");
		ck_assert_str_eq(av[3], "--config");
		config_argv_free(av);
	}
	{
		char *argv[] = { "tvn", "--config", NULL };

		ck_assert_int_eq(config_merge(2, argv, test_opts, &ac, &av, err, sizeof(err)),
				 -EINVAL);
		ck_assert_ptr_null(av);
		ck_assert_str_eq(err, "option '--config' requires an argument");
	}
	{
		char *argv[] = { "tvn", eq, "--config", path, NULL };

		ck_assert_int_eq(config_merge(4, argv, test_opts, &ac, &av, err, sizeof(err)),
				 -EINVAL);
		ck_assert_str_eq(err, "option '--config' given more than once");
	}
	{
		/* A bad file fails the merge with the file's own message. */
		char *argv[] = { "tvn", eq, NULL };

		write_file("{\"bogus\": 1}");
		ck_assert_int_eq(config_merge(2, argv, test_opts, &ac, &av, err, sizeof(err)),
				 -EINVAL);
		ck_assert_ptr_null(av);
		snprintf(want, sizeof(want), "%s: unknown key 'bogus'", path);
		ck_assert_str_eq(err, want);
	}
}
END_TEST

/* getopt_long() takes any unambiguous prefix of a long option: "--conf FILE" must load
 * the file like "--config FILE", not run silently on defaults. */
START_TEST(test_merge_abbreviations)
{
	char eq[160], **av = NULL;
	int ac;

	write_file("{\"verbose\": true}");
	snprintf(eq, sizeof(eq), "--conf=%s", path);
	{
		char *argv[] = { "tvn", "--conf", path, NULL };

		ck_assert_int_eq(config_merge(3, argv, test_opts, &ac, &av, err, sizeof(err)), 0);
		ck_assert_int_eq(ac, 4);
		ck_assert_str_eq(av[1], "--verbose");
		config_argv_free(av);
	}
	{
		char *argv[] = { "tvn", eq, NULL };

		ck_assert_int_eq(config_merge(2, argv, test_opts, &ac, &av, err, sizeof(err)), 0);
		ck_assert_int_eq(ac, 3);
		ck_assert_str_eq(av[1], "--verbose");
		config_argv_free(av);
	}
	{
		char *argv[] = { "tvn", "--con", path, "--conf", path, NULL };

		ck_assert_int_eq(config_merge(5, argv, test_opts, &ac, &av, err, sizeof(err)),
				 -EINVAL);
		ck_assert_str_eq(err, "option '--config' given more than once");
	}
	{
		/* "--co" is a prefix of --config and --color: getopt_long() reports it. */
		char *argv[] = { "tvn", "--co", path, NULL };

		ck_assert_int_eq(config_merge(3, argv, test_opts, &ac, &av, err, sizeof(err)), 0);
		ck_assert_int_eq(ac, 3);
		ck_assert_str_eq(av[1], "--co");
		config_argv_free(av);
	}
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_every_value_type);
	tcase_add_test(tc, test_optional_flag_and_empty_values);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_wrong_types);
	tcase_add_test(tc, test_nested_objects);
	tcase_add_test(tc, test_invalid_json_has_line_and_column);
	tcase_add_test(tc, test_unreadable_file);
	tcase_add_test(tc, test_merge_command_line_wins);
	tcase_add_test(tc, test_merge_forms_and_errors);
	tcase_add_test(tc, test_merge_abbreviations);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(config_suite());
}
