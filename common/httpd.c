/* common/httpd.c - /metrics and /healthz over libmicrohttpd, plus program routes. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "args.h"
#include "httpd.h"
#include "log.h"

struct httpd {
	struct MHD_Daemon *daemon;
	struct metrics *metrics;
	httpd_route_fn route;
	void *ctx;
	unsigned port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, mode);
	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *s)
{
	return reply(conn, status, "text/plain; charset=utf-8", (void *)s, strlen(s),
		     MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct httpd *h = cls;
	bool get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
	int ret;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;

	if (get && !strcmp(url, "/metrics") && h->metrics) {
		size_t len;
		char *text = metrics_render(h->metrics, &len);

		if (!text)
			return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "render failed\n");
		return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
			     len, MHD_RESPMEM_MUST_FREE);
	}
	if (get && !strcmp(url, "/healthz"))
		return reply_text(conn, MHD_HTTP_OK, "ok\n");
	if (h->route) {
		ret = h->route(h->ctx, conn, method, url);
		if (ret != -1)
			return ret == MHD_NO ? MHD_NO : MHD_YES;
	}
	return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	log_vmsg(LOG_WARN, fmt, ap);
}

/* The listening socket is made here rather than by libmicrohttpd so that a bind failure
 * reports its real errno, and so that "[::]" listens on both families. */
static int listen_on(const char *addr_port, unsigned *port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = -1, one = 1, zero = 0, err;

	err = args_resolve(addr_port, 0, &ss, &sl);
	if (err) {
		log_err("failed to resolve http address '%s': %s", addr_port, strerror(-err));
		return err;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 64)) {
		err = -errno;
		goto fail;
	}
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		err = -errno;
		goto fail;
	}
	*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
fail:
	log_err("failed to listen on %s: %s", addr_port, strerror(-err));
	if (fd >= 0)
		close(fd);
	return err;
}

struct httpd *httpd_new(const char *addr_port, struct metrics *m, httpd_route_fn route, void *ctx)
{
	struct httpd *h = NULL;
	int fd = -1, err;

	if (!addr_port) {
		err = -EINVAL;
		goto cleanup;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		err = -ENOMEM;
		goto cleanup;
	}
	h->metrics = m;
	h->route = route;
	h->ctx = ctx;
	fd = listen_on(addr_port, &h->port);
	if (fd < 0) {
		err = fd;
		goto cleanup;
	}
	/* A thread per connection: a long /capture stream must not stall /metrics. The idle
	 * timeout keeps idle clients from each holding a thread forever (see httpd.h). */
	h->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
					     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
				     0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
				     NULL, MHD_OPTION_LISTEN_SOCKET, fd,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	if (!h->daemon) {
		err = -EIO;
		log_err("failed to start http server on %s", addr_port);
		goto cleanup;
	}
	return h;
cleanup:
	if (fd >= 0)
		close(fd);
	free(h);
	errno = -err;
	return NULL;
}

unsigned httpd_port(const struct httpd *h)
{
	return h ? h->port : 0;
}

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	/* MHD_stop_daemon() also closes the listening socket it was given. */
	MHD_stop_daemon(h->daemon);
	free(h);
}
