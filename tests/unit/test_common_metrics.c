/* tests/unit/test_common_metrics.c - registry and exact Prometheus text rendering. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "metrics.h"

static double read_double(void *ctx)
{
	return *(double *)ctx;
}

START_TEST(test_render_exact)
{
	struct metrics *m = metrics_new();
	struct metric *rx, *out0, *out1, *active, *neg;
	double mem = 1.5e9 + 0.25, flows = 12;
	char esc[64], labels[96];
	size_t len = 0;
	char *text;

	ck_assert_ptr_nonnull(m);
	rx = metrics_counter(m, "tvn_rx_packets_total", "Datagrams received.", NULL);
	out0 = metrics_counter(m, "tvn_egress_packets_total", "Frames sent per output.",
			       "out=\"pcap0\"");
	active = metrics_gauge(m, "tvn_flows_active", "Flows in the table.", NULL);
	snprintf(labels, sizeof(labels), "out=\"%s\"",
		 metrics_escape("vx\"1\\\n", esc, sizeof(esc)));
	/* Registered later, rendered next to its family. */
	out1 = metrics_counter(m, "tvn_egress_packets_total", "ignored", labels);
	ck_assert_ptr_nonnull(metrics_gauge_fn(m, "tvn_memory_bytes", "Heap in use.\nBackslash \\.",
					       NULL, read_double, &mem));
	ck_assert_ptr_nonnull(
		metrics_gauge_fn(m, "tvn_fn", "Integral double.", "k=\"v\"", read_double, &flows));
	neg = metrics_gauge(m, "tvn_skew_ms", "Negative gauge.", NULL);
	ck_assert_ptr_nonnull(rx && out0 && active && out1 && neg ? rx : NULL);

	metric_inc(rx);
	metric_add(rx, 41);
	metric_add(out0, 7);
	metric_inc(out1);
	metric_set(active, 3);
	metric_add(active, 2);
	metric_set(neg, -12);
	ck_assert_int_eq(metric_get(rx), 42);
	ck_assert_int_eq(metric_get(active), 5);
	ck_assert_int_eq(metric_get(neg), -12);

	text = metrics_render(m, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(len, strlen(text));
	ck_assert_str_eq(text, "# HELP tvn_rx_packets_total Datagrams received.\n"
			       "# TYPE tvn_rx_packets_total counter\n"
			       "tvn_rx_packets_total 42\n"
			       "# HELP tvn_egress_packets_total Frames sent per output.\n"
			       "# TYPE tvn_egress_packets_total counter\n"
			       "tvn_egress_packets_total{out=\"pcap0\"} 7\n"
			       "tvn_egress_packets_total{out=\"vx\\\"1\\\\\\n\"} 1\n"
			       "# HELP tvn_flows_active Flows in the table.\n"
			       "# TYPE tvn_flows_active gauge\n"
			       "tvn_flows_active 5\n"
			       "# HELP tvn_memory_bytes Heap in use.\\nBackslash \\\\.\n"
			       "# TYPE tvn_memory_bytes gauge\n"
			       "tvn_memory_bytes 1500000000.25\n"
			       "# HELP tvn_fn Integral double.\n"
			       "# TYPE tvn_fn gauge\n"
			       "tvn_fn{k=\"v\"} 12\n"
			       "# HELP tvn_skew_ms Negative gauge.\n"
			       "# TYPE tvn_skew_ms gauge\n"
			       "tvn_skew_ms -12\n");
	free(text);

	/* Values read at render time, including the special ones. */
	mem = NAN;
	flows = -INFINITY;
	text = metrics_render(m, NULL);
	ck_assert_ptr_nonnull(strstr(text, "\ntvn_memory_bytes NaN\n"));
	ck_assert_ptr_nonnull(strstr(text, "\ntvn_fn{k=\"v\"} -Inf\n"));
	free(text);
	metrics_free(m);
}
END_TEST

START_TEST(test_register_errors)
{
	struct metrics *m = metrics_new();

	ck_assert_ptr_nonnull(metrics_counter(m, "a_total", "h", "x=\"1\""));
	errno = 0;
	ck_assert_ptr_null(metrics_counter(m, "a_total", "h", "x=\"1\""));
	ck_assert_int_eq(errno, EEXIST);
	errno = 0;
	ck_assert_ptr_null(metrics_gauge(m, "a_total", "h", "x=\"2\""));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(metrics_counter(m, "9bad", "h", NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(metrics_counter(m, "bad-name", "h", NULL));
	ck_assert_ptr_null(metrics_counter(m, "", "h", NULL));
	ck_assert_ptr_null(metrics_gauge_fn(m, "g", "h", NULL, NULL, NULL));
	ck_assert_ptr_null(metrics_counter(NULL, "c_total", "h", NULL));
	/* NULL metrics are no-ops so optional instrumentation needs no branches. */
	metric_inc(NULL);
	metric_add(NULL, 3);
	metric_set(NULL, 3);
	ck_assert_int_eq(metric_get(NULL), 0);
	metrics_free(m);
	metrics_free(NULL);
}
END_TEST

START_TEST(test_escape)
{
	char out[16];

	ck_assert_str_eq(metrics_escape("a\"b\\c\nd", out, sizeof(out)), "a\\\"b\\\\c\\nd");
	/* Truncation never splits an escape sequence. */
	ck_assert_str_eq(metrics_escape("abc\"", out, 5), "abc");
	ck_assert_str_eq(metrics_escape("", out, sizeof(out)), "");
}
END_TEST

#define THREADS 4
#define PER_THREAD 200000

static void *hammer(void *arg)
{
	struct metric *c = arg;
	int i;

	for (i = 0; i < PER_THREAD; i++)
		metric_inc(c);
	return NULL;
}

START_TEST(test_atomic)
{
	struct metrics *m = metrics_new();
	struct metric *c = metrics_counter(m, "hits_total", "h", NULL);
	pthread_t th[THREADS];
	char *text;
	int i;

	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, c), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(metric_get(c), THREADS * PER_THREAD);
	text = metrics_render(m, NULL);
	ck_assert_ptr_nonnull(strstr(text, "\nhits_total 800000\n"));
	free(text);
	metrics_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_test(tc, test_render_exact);
	tcase_add_test(tc, test_register_errors);
	tcase_add_test(tc, test_escape);
	tcase_add_test(tc, test_atomic);
	suite_add_tcase(s, tc);
	return check_run(s);
}
