/* tvn/http.c - /flows and /capture. */
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "flowlog.h"
#include "http.h"
#include "httpd.h"
#include "log.h"

#define CAPTURE_BUF (512u << 10) /* pcap bytes buffered per client between reads */
#define CAPTURE_WAIT_MS 50	 /* how long one read waits for traffic */
#define FLOWS_MAX 100000	 /* /flows answers at most this many entries */

struct http {
	struct httpd *d;
	struct shard_set *shards;
	struct egress *eg;
	bool have_token;
	unsigned char token_md[EVP_MAX_MD_SIZE]; /* SHA-256 of the token */
};

struct capture_client {
	struct egress *eg;
	int slot;
	pcap_t *dead;
	struct bpf_program prog;
	bool have_prog;
	FILE *f;
	pcap_dumper_t *dumper;
	uint8_t *buf;
	size_t have, off;
	uint64_t count, sent; /* count 0: unlimited */
	uint64_t deadline_ns; /* 0: none */
	uint32_t snaplen;
	bool done;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	char *body = strdup(msg);

	return body ? reply(conn, status, "text/plain", body) : MHD_NO;
}

struct flows_walk {
	json_t *arr;
	size_t n;
};

static int add_flow(void *ctx, const struct dedup_flow_info *f)
{
	struct flows_walk *w = ctx;

	if (w->n >= FLOWS_MAX)
		return 1;
	json_array_append_new(w->arr, flowlog_flow_json(f));
	w->n++;
	return 0;
}

static enum MHD_Result serve_flows(struct http *h, struct MHD_Connection *conn)
{
	struct flows_walk w = { .arr = json_array() };
	char *body;
	int err;

	if (!w.arr)
		return MHD_NO;
	err = shard_foreach_flow(h->shards, add_flow, &w);
	if (err < 0) {
		json_decref(w.arr);
		return reply_text(conn, 503, "flow table busy, try again\n");
	}
	body = json_dumps(w.arr, JSON_INDENT(1));
	json_decref(w.arr);
	if (!body)
		return MHD_NO;
	return reply(conn, 200, "application/json", body);
}

/* fopencookie writer: libpcap writes the savefile into the client's buffer. */
static ssize_t cookie_write(void *cookie, const char *data, size_t len)
{
	struct capture_client *c = cookie;

	if (c->have + len > CAPTURE_BUF)
		len = CAPTURE_BUF - c->have; /* cannot happen: callers check room first */
	memcpy(c->buf + c->have, data, len);
	c->have += len;
	return (ssize_t)len;
}

static void capture_free(void *cls)
{
	struct capture_client *c = cls;

	if (!c)
		return;
	if (c->slot >= 0) {
		if (egress_capture_drops(c->eg, c->slot))
			log_info(
				"capture client done: %llu frames sent, %llu dropped (slow reader)",
				(unsigned long long)c->sent,
				(unsigned long long)egress_capture_drops(c->eg, c->slot));
		egress_capture_detach(c->eg, c->slot);
	}
	if (c->dumper)
		pcap_dump_close(c->dumper); /* closes c->f */
	else if (c->f)
		fclose(c->f);
	if (c->have_prog)
		pcap_freecode(&c->prog);
	if (c->dead)
		pcap_close(c->dead);
	free(c->buf);
	free(c);
}

/* Moves queued frames into the pcap buffer until it is full or the queue is empty. */
static void capture_fill(struct capture_client *c)
{
	struct egress_frame fr;

	while (!c->done && egress_capture_next(c->eg, c->slot, &fr)) {
		uint32_t caplen = c->snaplen && c->snaplen < fr.len ? c->snaplen : (uint32_t)fr.len;
		struct pcap_pkthdr h = { .caplen = (uint32_t)fr.len, .len = (uint32_t)fr.len };

		if (c->have + 16 + caplen > CAPTURE_BUF)
			return; /* keep the frame queued for the next read */
		if (!c->have_prog || pcap_offline_filter(&c->prog, &h, fr.data)) {
			h.ts.tv_sec = (time_t)(fr.ts_ns / 1000000000ull);
			h.ts.tv_usec = (suseconds_t)(fr.ts_ns % 1000000000ull);
			h.caplen = caplen;
			pcap_dump((u_char *)c->dumper, &h, fr.data);
			fflush(c->f);
			if (c->count && ++c->sent >= c->count)
				c->done = true;
		}
		egress_capture_release(c->eg, c->slot);
	}
}

static ssize_t capture_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct capture_client *c = cls;
	uint64_t until = now_ns() + CAPTURE_WAIT_MS * 1000000ull;
	size_t n;

	(void)pos;
	for (;;) {
		if (c->off < c->have) {
			n = c->have - c->off < max ? c->have - c->off : max;
			memcpy(out, c->buf + c->off, n);
			c->off += n;
			return (ssize_t)n;
		}
		c->have = c->off = 0;
		if (c->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		capture_fill(c);
		if (c->have)
			continue;
		if (c->deadline_ns && now_ns() >= c->deadline_ns) {
			c->done = true;
			continue;
		}
		/* Nothing queued: wait a little here rather than have MHD spin on us. */
		if (now_ns() >= until)
			return 0;
		usleep(2000);
	}
}

static enum MHD_Result serve_capture(struct http *h, struct MHD_Connection *conn)
{
	const char *filter = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "filter");
	const char *count = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "count");
	const char *secs = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "seconds");
	const char *snap = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "snaplen");
	cookie_io_functions_t io = { .write = cookie_write };
	struct capture_client *c;
	struct MHD_Response *r;
	enum MHD_Result ret;
	uint64_t v;
	char msg[PCAP_ERRBUF_SIZE + 64];

	c = calloc(1, sizeof(*c));
	if (!c)
		return MHD_NO;
	c->eg = h->eg;
	c->slot = -1;
	if (count && args_parse_u64(count, 1, UINT64_MAX, &c->count)) {
		capture_free(c);
		return reply_text(conn, 400, "bad count: expected a positive integer\n");
	}
	if (secs) {
		if (args_parse_duration_ms(secs, 1, 86400000ull * 365, &v)) {
			capture_free(c);
			return reply_text(conn, 400, "bad seconds: expected a duration\n");
		}
		c->deadline_ns = now_ns() + v * 1000000ull;
	}
	if (snap) {
		if (args_parse_u64(snap, 14, 262144, &v)) {
			capture_free(c);
			return reply_text(conn, 400, "bad snaplen: expected 14..262144\n");
		}
		c->snaplen = (uint32_t)v;
	}
	c->dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, c->snaplen ? c->snaplen : 262144,
						       PCAP_TSTAMP_PRECISION_NANO);
	c->buf = malloc(CAPTURE_BUF);
	if (!c->dead || !c->buf) {
		capture_free(c);
		return MHD_NO;
	}
	if (filter && *filter) {
		if (pcap_compile(c->dead, &c->prog, filter, 1, PCAP_NETMASK_UNKNOWN) < 0) {
			snprintf(msg, sizeof(msg), "bad filter: %s\n", pcap_geterr(c->dead));
			capture_free(c);
			return reply_text(conn, 400, msg);
		}
		c->have_prog = true;
	}
	c->f = fopencookie(c, "w", io);
	if (!c->f) {
		capture_free(c);
		return MHD_NO;
	}
	setvbuf(c->f, NULL, _IONBF, 0);
	c->dumper = pcap_dump_fopen(c->dead, c->f);
	if (!c->dumper) {
		capture_free(c);
		return MHD_NO;
	}
	c->slot = egress_capture_attach(h->eg);
	if (c->slot < 0) {
		capture_free(c);
		return reply_text(conn, 503, "too many capture clients\n");
	}
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, capture_read, c,
					      capture_free);
	if (!r) {
		capture_free(c);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/vnd.tcpdump.pcap");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static int sha256(const void *data, size_t len, unsigned char md[EVP_MAX_MD_SIZE])
{
	return EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL) ? 0 : -EINVAL;
}

/* Comparing digests with CRYPTO_memcmp takes the same time whatever the client sent:
 * neither the token's bytes nor its length leak through response times. */
static bool authorized(const struct http *h, struct MHD_Connection *conn)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	unsigned char md[EVP_MAX_MD_SIZE];

	if (!h->have_token)
		return true;
	if (!v || strncasecmp(v, "Bearer ", 7))
		return false;
	v += 7;
	v += strspn(v, " ");
	if (sha256(v, strlen(v), md))
		return false;
	return CRYPTO_memcmp(md, h->token_md, 32) == 0;
}

static enum MHD_Result reply_unauthorized(struct MHD_Connection *conn)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	static const char body[] = "bearer token required\n";

	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain");
	MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"tvn\"");
	ret = MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, r);
	MHD_destroy_response(r);
	return ret;
}

static int route(void *ctx, struct MHD_Connection *conn, const char *method, const char *url)
{
	struct http *h = ctx;

	if (strcmp(method, "GET"))
		return -1;
	if ((!strcmp(url, "/flows") || !strcmp(url, "/capture")) && !authorized(h, conn)) {
		log_debug("refused %s: missing or wrong bearer token", url);
		return reply_unauthorized(conn);
	}
	if (!strcmp(url, "/flows"))
		return serve_flows(h, conn);
	if (!strcmp(url, "/capture"))
		return serve_capture(h, conn);
	return -1;
}

struct http *http_new(const char *addr_port, const char *token, struct metrics *m,
		      struct shard_set *shards, struct egress *eg)
{
	struct http *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->shards = shards;
	h->eg = eg;
	if (token) {
		if (sha256(token, strlen(token), h->token_md)) {
			free(h);
			errno = EINVAL;
			return NULL;
		}
		h->have_token = true;
	}
	h->d = httpd_new(addr_port, m, route, h);
	if (!h->d) {
		int err = errno;

		free(h);
		errno = err;
		return NULL;
	}
	return h;
}

unsigned http_port(const struct http *h)
{
	return h ? httpd_port(h->d) : 0;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	httpd_free(h->d);
	free(h);
}
