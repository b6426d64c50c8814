/* tvn/http.h - tvn's HTTP routes on top of common/httpd.h.
 * Owns: /flows (active flows as JSON), /capture (the deduplicated stream as a
 * chunked pcap, one bounded egress capture queue per client; a slow client loses
 * frames, counted in tvn_egress_dropped_total{out="capture"}, never slows tvn) and the
 * bearer token both require.
 * Does not own: the daemon, /metrics, /healthz (httpd.h), the flows or the queues. */
#ifndef TVN_HTTP_H
#define TVN_HTTP_H

#include "egress.h"
#include "metrics.h"
#include "shard.h"

struct http;

/* Serves addr_port. token (copied; NULL = open): /capture and /flows answer 401 unless
 * the request carries "Authorization: Bearer <token>"; /metrics and /healthz stay open.
 * Returns NULL with errno set and a logged reason. */
struct http *http_new(const char *addr_port, const char *token, struct metrics *m,
		      struct shard_set *shards, struct egress *eg);
unsigned http_port(const struct http *h);
void http_free(struct http *h); /* NULL-safe */

#endif
