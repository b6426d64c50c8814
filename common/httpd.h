/* common/httpd.h - the HTTP endpoint both programs serve (libmicrohttpd).
 * Owns: the listening daemon, /metrics and /healthz.
 * Does not own: the metrics (metrics.h) or program-specific routes, which the caller
 * handles through route_fn. */
#ifndef ECV_HTTPD_H
#define ECV_HTTPD_H

#include <microhttpd.h>

#include "metrics.h"

struct httpd;

/* Program routes: return MHD_YES/MHD_NO after queueing a response for url, or -1 to let
 * httpd answer 404. Called from libmicrohttpd's thread(s), one thread per connection.
 * Idle connections are closed after 60 s; a route that streams with long pauses (live
 * capture) lifts that for its connection with MHD_set_connection_option(conn,
 * MHD_CONNECTION_OPTION_TIMEOUT, 0u). */
typedef int (*httpd_route_fn)(void *ctx, struct MHD_Connection *conn, const char *method,
			      const char *url);

/* Starts serving on "ADDR:PORT" ("[v6]:PORT" for IPv6; port 0 = any) with its own
 * threads. GET /metrics renders m, /healthz answers "ok\n". Returns NULL with errno set
 * and a logged reason on failure. */
struct httpd *httpd_new(const char *addr_port, struct metrics *m, httpd_route_fn route, void *ctx);
/* The port actually bound (useful with port 0). */
unsigned httpd_port(const struct httpd *h);
void httpd_free(struct httpd *h); /* NULL-safe; stops the daemon */

#endif
