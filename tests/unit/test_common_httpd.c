/* tests/unit/test_common_httpd.c - /metrics, /healthz, program routes and 404 over a real
 * loopback socket (plain HTTP/1.0 requests written by hand; no HTTP client library). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_run.h"
#include "httpd.h"

/* Sends "GET path" to 127.0.0.1:port (or ::1) and returns the whole response. */
static char *http_get(int family, unsigned port, const char *method, const char *path)
{
	static char resp[65536];
	struct sockaddr_storage ss = { 0 };
	struct timeval tv = { .tv_sec = 10 }; /* a hang fails the test instead of the CI */
	char req[256];
	size_t got = 0;
	ssize_t n;
	int fd;

	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		in6->sin6_addr = in6addr_loopback;
	}
	fd = socket(family, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&ss, sizeof(ss)), 0);
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: x\r\n\r\n", method, path);
	ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (got < sizeof(resp) - 1 && (n = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	resp[got] = '\0';
	return resp;
}

static const char *body(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");

	ck_assert_ptr_nonnull(b);
	return b + 4;
}

static int flows_route(void *ctx, struct MHD_Connection *conn, const char *method, const char *url)
{
	static const char json[] = "[]\n";
	struct MHD_Response *r;
	int ret;

	(*(int *)ctx)++;
	if (strcmp(method, "GET") || strcmp(url, "/flows"))
		return -1;
	r = MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

START_TEST(test_endpoints)
{
	struct metrics *m = metrics_new();
	struct metric *c = metrics_counter(m, "ecvc_requests_total", "Test counter.", NULL);
	struct httpd *h;
	int routed = 0;
	char *r;

	metric_add(c, 5);
	h = httpd_new("127.0.0.1:0", m, flows_route, &routed);
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_gt(httpd_port(h), 0);

	r = http_get(AF_INET, httpd_port(h), "GET", "/metrics");
	ck_assert_msg(!strncmp(r, "HTTP/1.0 200", 12) || !strncmp(r, "HTTP/1.1 200", 12), "%s", r);
	ck_assert_ptr_nonnull(strstr(r, "Content-Type: text/plain; version=0.0.4"));
	ck_assert_str_eq(body(r), "# HELP ecvc_requests_total Test counter.\n"
				  "# TYPE ecvc_requests_total counter\n"
				  "ecvc_requests_total 5\n");
	/* Rendered per request: a later update shows. */
	metric_inc(c);
	r = http_get(AF_INET, httpd_port(h), "GET", "/metrics");
	ck_assert_ptr_nonnull(strstr(body(r), "ecvc_requests_total 6\n"));

	r = http_get(AF_INET, httpd_port(h), "GET", "/healthz");
	ck_assert_ptr_nonnull(strstr(r, " 200 "));
	ck_assert_str_eq(body(r), "ok\n");
	ck_assert_int_eq(routed, 0);

	r = http_get(AF_INET, httpd_port(h), "GET", "/flows");
	ck_assert_ptr_nonnull(strstr(r, " 200 "));
	ck_assert_ptr_nonnull(strstr(r, "application/json"));
	ck_assert_str_eq(body(r), "[]\n");
	ck_assert_int_eq(routed, 1);

	r = http_get(AF_INET, httpd_port(h), "GET", "/nope");
	ck_assert_ptr_nonnull(strstr(r, " 404 "));
	ck_assert_str_eq(body(r), "not found\n");
	r = http_get(AF_INET, httpd_port(h), "POST", "/flows");
	ck_assert_ptr_nonnull(strstr(r, " 404 "));
	ck_assert_int_eq(routed, 3);
	httpd_free(h);
	metrics_free(m);
}
END_TEST

START_TEST(test_no_route_and_v6)
{
	struct httpd *h;
	char *r;

	/* "[::]" listens on both families. */
	h = httpd_new("[::]:0", NULL, NULL, NULL);
	ck_assert_ptr_nonnull(h);
	r = http_get(AF_INET6, httpd_port(h), "GET", "/healthz");
	ck_assert_str_eq(body(r), "ok\n");
	r = http_get(AF_INET, httpd_port(h), "GET", "/healthz");
	ck_assert_str_eq(body(r), "ok\n");
	/* Without a registry /metrics is just another unknown path. */
	r = http_get(AF_INET, httpd_port(h), "GET", "/metrics");
	ck_assert_ptr_nonnull(strstr(r, " 404 "));
	httpd_free(h);
}
END_TEST

START_TEST(test_errors)
{
	struct httpd *a, *b;
	char addr[64];

	a = httpd_new("127.0.0.1:0", NULL, NULL, NULL);
	ck_assert_ptr_nonnull(a);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", httpd_port(a));
	errno = 0;
	b = httpd_new(addr, NULL, NULL, NULL);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(errno, EADDRINUSE);
	errno = 0;
	ck_assert_ptr_null(httpd_new("127.0.0.1:http", NULL, NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	httpd_free(a);
	httpd_free(NULL);
	/* The port is free again once the daemon is gone. */
	b = httpd_new(addr, NULL, NULL, NULL);
	ck_assert_ptr_nonnull(b);
	httpd_free(b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("httpd");
	TCase *tc = tcase_create("httpd");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_endpoints);
	tcase_add_test(tc, test_no_route_and_v6);
	tcase_add_test(tc, test_errors);
	suite_add_tcase(s, tc);
	return check_run(s);
}
