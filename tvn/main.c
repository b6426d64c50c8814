/* tvn/main.c - the traffic visibility node: command line, wiring, main loop.
 * Live:    ingest (this thread) -> dedup (in this thread, or --threads N shard workers)
 *          -> egress threads -> tools.
 * Offline: reader (this thread) -> the same pipeline, then a summary line. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "config.h"
#include "dedup.h"
#include "egress.h"
#include "flowlog.h"
#include "http.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "reader.h"
#include "shard.h"

#define TVN_VERSION "0.1.0"
#define MAX_LIST 64
#define TVN_SHARD_QUEUE (64u << 20)
#define TVN_PUBLISH_NS 1000000ull /* live: counters published at most this often */

static volatile sig_atomic_t exiting;

struct config {
	const char *listen[MAX_LIST];
	size_t n_listen;
	const char *join;
	const char *read[MAX_LIST];
	size_t n_read;
	unsigned threads;
	uint32_t vnis[MAX_LIST];
	size_t n_vnis;
	struct args_cidr allow[MAX_LIST];
	size_t n_allow;
	struct dedup_cfg dedup;
	struct egress_out_cfg outs[16];
	size_t n_outs;
	const char *http;
	char http_local[64]; /* --http PORT: the loopback address it stands for */
	char *http_token;    /* --http-token-file contents; NULL: /capture is open */
	const char *http_token_file;
	const char *flow_log;
	uint64_t stats_ms;
	uint64_t rcvbuf;
	size_t ring_mb;
	bool rx_ring;	      /* --rx ring */
	const char *rx_iface; /* --rx-iface */
};

/* Everything the per-packet callbacks need. */
struct tvn {
	struct config *cfg;
	struct ingest_cfg icfg;
	struct metrics *m;
	struct shard_set *shards;
	struct egress *eg;
	struct ingest *in;
	struct metric *m_rx_pkts, *m_rx_bytes, *m_malformed[INGEST_N_REASONS];
	struct metric *m_rx_drop_sock, *m_rx_drop_queue, *m_rx_buffers;
	struct metric *m_dedup_dropped, *m_trimmed, *m_conflicts, *m_table_full, *m_meta,
		*m_flows_active, *m_source_limited;
	uint64_t rx_pkts, rx_bytes, malformed[INGEST_N_REASONS], queue_drops;
	uint64_t last_sock_drops;
	uint64_t pub_rx_pkts, pub_rx_bytes, pub_rx_buffers; /* what the metrics already hold */
	struct dedup_stats published;
	uint64_t last_tick_ns;
	uint64_t last_pub_ns;  /* live: the last publish_metrics() */
	struct ingest_pkt pkt; /* scratch: one at a time, big (metadata) */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tvn [OPTIONS]\n"
		"Receives the VxLAN-tunnelled plaintext frames of ECV agents, removes the second\n"
		"copy of every flow and delivers one clean copy to tools.\n"
		"\n"
		"Input:\n"
		"  --listen ADDR:PORT     UDP address to receive VxLAN on (default 0.0.0.0:4789;\n"
		"                         repeatable; a multicast group with --join)\n"
		"  --join IFACE           join the multicast groups of --listen on IFACE\n"
		"  --rx MODE              how datagrams are received: socket (default:\n"
		"                         recvmmsg() on the UDP socket) or ring: an AF_PACKET\n"
		"                         ring on one interface that the kernel fills as\n"
		"                         datagrams arrive; no system call or copy per datagram\n"
		"                         in tvn (needs CAP_NET_RAW; the UDP port stays bound and\n"
		"                         its socket drops what it gets: counted as UDP InErrors)\n"
		"  --rx-iface IFACE       the ring's interface (default: the one holding the\n"
		"                         --listen address; required for 0.0.0.0 or ::)\n"
		"  --read FILE            offline: read a pcap of VxLAN datagrams (outer source +\n"
		"                         VNI = the copy's source) or of inner frames (one source\n"
		"                         per file); repeatable, merged by timestamp; exits at "
		"end\n"
		"  --vni LIST             accept only these VNIs (comma-separated; default all)\n"
		"  --allow CIDR           accept datagrams only from these sources (repeatable;\n"
		"                         default: every source, which is logged)\n"
		"\n"
		"Dedup:\n"
		"  --dedup MODE           bytes (default), flow, content, packet or off\n"
		"  --skew DURATION        how late the second copy may arrive (default 2s)\n"
		"  --dedup-window DURATION  packet/content modes comparison window (default: "
		"skew)\n"
		"  --max-flows N          flow table bound (default 1000000); beyond it new flows\n"
		"                         pass un-deduplicated and tvn_flows_table_full_total "
		"rises\n"
		"  --max-flows-per-source N  flows one source may hold (default 0 = no bound)\n"
		"  --flow-timeout DURATION  idle expiry of a flow (default 60s)\n"
		"  --threads N            dedup threads (default 1: dedup runs in the receiving\n"
		"                         thread, the socket buffer or ring is its only queue);\n"
		"                         N > 1: N workers fed by the receiving thread through\n"
		"                         64 MiB queues, sharded by the inner flow key\n"
		"\n"
		"Output:\n"
		"  --out SPEC             repeatable; each gets every frame (own queue and "
		"thread):\n"
		"      pcap:PATH[,size=SIZE][,time=DURATION]   nanosecond pcap file; rotation "
		"like\n"
		"                         tcpdump -C/-G (PATH, PATH1, ...; strftime %%-codes with\n"
		"                         time=); pcap:- writes to stdout\n"
		"      vxlan:HOST[:PORT][,vni=N]   re-encapsulate to a tool (default port 4789,\n"
		"                         VNI 1)\n"
		"      iface:NAME          inject into a tool interface (AF_PACKET)\n"
		"    options for every output: snaplen=N, queue=SIZE (this output's queue, see\n"
		"    --queue-size), origin=vlan (802.1Q tag = low 12 bits\n"
		"    of the source node address), filter=EXPR (libpcap syntax; put it last, it\n"
		"    takes the rest of the string, or quote it: filter=\"a, b\")\n"
		"  --flow-log PATH        append one JSON line per finished flow\n"
		"  --http [ADDR:]PORT     serve /metrics, /healthz, /flows and\n"
		"                         /capture?filter=&count=&seconds=&snaplen= (chunked "
		"pcap),\n"
		"                         e.g. --http 8080 (off by default); a bare PORT binds\n"
		"                         127.0.0.1 only: name an address to expose it\n"
		"  --http-token-file FILE  /capture and /flows (plaintext!) require the header\n"
		"                         'Authorization: Bearer TOKEN', TOKEN = the file's first\n"
		"                         line; /metrics and /healthz stay open\n"
		"\n"
		"Operations:\n"
		"  --config FILE          JSON object of long option names to values, e.g.\n"
		"                         {\"vni\": 1, \"allow\": [\"10.0.0.0/8\"]};\n"
		"                         flags on the command line override it (repeatable\n"
		"                         ones add to it)\n"
		"  --stats-interval DURATION  print a stats line on stderr this often (default "
		"off)\n"
		"  --rcvbuf SIZE          socket receive buffer, or with --rx ring the ring size\n"
		"                         (128 KiB blocks, at least 4M; default 32M)\n"
		"  --queue-size SIZE      queue of each output (per worker; default 16M); a tool\n"
		"                         slower than that loses frames, counted per output\n"
		"  -v, --verbose          more logging (repeat for debug)\n"
		"  -q, --quiet            errors only\n"
		"  -V, --version          print the version and the memory of one flow entry\n"
		"  -h, --help             this text\n"
		"\n"
		"DURATION: a number with ms, s (default), m or h. SIZE: bytes with k, m or g.\n"
		"SIGINT/SIGTERM flush and close every output and exit 0.\n");
}

enum {
	OPT_LISTEN = 256,
	OPT_JOIN,
	OPT_READ,
	OPT_THREADS,
	OPT_VNI,
	OPT_ALLOW,
	OPT_DEDUP,
	OPT_SKEW,
	OPT_WINDOW,
	OPT_MAX_FLOWS,
	OPT_MAX_PER_SOURCE,
	OPT_FLOW_TIMEOUT,
	OPT_OUT,
	OPT_HTTP,
	OPT_FLOW_LOG,
	OPT_STATS,
	OPT_RCVBUF,
	OPT_QUEUE,
	OPT_CONFIG,
	OPT_HTTP_TOKEN,
	OPT_RX,
	OPT_RX_IFACE,
};

static const struct option long_opts[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "join", required_argument, NULL, OPT_JOIN },
	{ "read", required_argument, NULL, OPT_READ },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "vni", required_argument, NULL, OPT_VNI },
	{ "allow", required_argument, NULL, OPT_ALLOW },
	{ "dedup", required_argument, NULL, OPT_DEDUP },
	{ "skew", required_argument, NULL, OPT_SKEW },
	{ "dedup-window", required_argument, NULL, OPT_WINDOW },
	{ "max-flows", required_argument, NULL, OPT_MAX_FLOWS },
	{ "max-flows-per-source", required_argument, NULL, OPT_MAX_PER_SOURCE },
	{ "flow-timeout", required_argument, NULL, OPT_FLOW_TIMEOUT },
	{ "out", required_argument, NULL, OPT_OUT },
	{ "http", required_argument, NULL, OPT_HTTP },
	{ "flow-log", required_argument, NULL, OPT_FLOW_LOG },
	{ "stats-interval", required_argument, NULL, OPT_STATS },
	{ "rcvbuf", required_argument, NULL, OPT_RCVBUF },
	{ "queue-size", required_argument, NULL, OPT_QUEUE },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "http-token-file", required_argument, NULL, OPT_HTTP_TOKEN },
	{ "rx", required_argument, NULL, OPT_RX },
	{ "rx-iface", required_argument, NULL, OPT_RX_IFACE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "version", no_argument, NULL, 'V' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int bad(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "tvn: invalid %s '%s'%s%s\n", opt, val, why ? ": " : "", why ?: "");
	usage(stderr);
	return 2;
}

static int parse_vnis(struct config *c, const char *s)
{
	char buf[1024], *tok, *save = NULL;
	uint64_t v;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (c->n_vnis >= MAX_LIST || args_parse_u64(tok, 0, 0xffffff, &v))
			return -EINVAL;
		c->vnis[c->n_vnis++] = (uint32_t)v;
	}
	return c->n_vnis ? 0 : -EINVAL;
}

/* Returns 0 to run, 1 to exit 0 (help/version), 2 for a usage error. */
static int parse_args(int argc, char **argv, struct config *c)
{
	uint64_t v, window_ms = 0;
	bool window_set = false;
	char host[256];
	uint16_t port;
	const char *why;
	int opt, verbose = 0;

	c->threads = 1;
	c->dedup.mode = DEDUP_BYTES;
	c->dedup.max_flows = 1000000;
	c->dedup.skew_ns = 2000000000ull;
	c->dedup.flow_timeout_ns = 60000000000ull;
	c->rcvbuf = 32u << 20;
	c->ring_mb = 16;
	while ((opt = getopt_long(argc, argv, "vqVh", long_opts, NULL)) != -1) {
		switch (opt) {
		case OPT_LISTEN:
			if (c->n_listen >= 16)
				return bad("--listen", optarg, "at most 16");
			if (args_split_hostport(optarg, host, sizeof(host), &port, 4789))
				return bad("--listen", optarg, "expected ADDR[:PORT]");
			c->listen[c->n_listen++] = optarg;
			break;
		case OPT_JOIN:
			c->join = optarg;
			break;
		case OPT_RX:
			if (!strcmp(optarg, "ring"))
				c->rx_ring = true;
			else if (!strcmp(optarg, "socket"))
				c->rx_ring = false;
			else
				return bad("--rx", optarg, "expected socket or ring");
			break;
		case OPT_RX_IFACE:
			if (!*optarg || strlen(optarg) >= IF_NAMESIZE)
				return bad("--rx-iface", optarg, "expected an interface name");
			c->rx_iface = optarg;
			break;
		case OPT_READ:
			if (c->n_read >= MAX_LIST)
				return bad("--read", optarg, "too many files");
			c->read[c->n_read++] = optarg;
			break;
		case OPT_THREADS:
			if (args_parse_u64(optarg, 1, 64, &v))
				return bad("--threads", optarg, "expected 1..64");
			c->threads = (unsigned)v;
			break;
		case OPT_VNI:
			if (parse_vnis(c, optarg))
				return bad("--vni", optarg,
					   "expected VNIs 0..16777215, comma-separated");
			break;
		case OPT_ALLOW:
			if (c->n_allow >= MAX_LIST ||
			    args_parse_cidr(optarg, &c->allow[c->n_allow]))
				return bad("--allow", optarg, "expected ADDR[/PREFIX]");
			c->n_allow++;
			break;
		case OPT_DEDUP:
			if (dedup_mode_parse(optarg, &c->dedup.mode))
				return bad("--dedup", optarg,
					   "expected bytes, flow, content, packet or off");
			break;
		case OPT_SKEW:
			if (args_parse_duration_ms(optarg, 0, 3600000, &v))
				return bad("--skew", optarg, "expected a duration up to 1h");
			c->dedup.skew_ns = v * 1000000ull;
			break;
		case OPT_WINDOW:
			if (args_parse_duration_ms(optarg, 1, 3600000, &window_ms))
				return bad("--dedup-window", optarg,
					   "expected a duration up to 1h");
			window_set = true;
			break;
		case OPT_MAX_FLOWS:
			if (args_parse_u64(optarg, 1, 1ull << 32, &c->dedup.max_flows))
				return bad("--max-flows", optarg, "expected 1..4294967296");
			break;
		case OPT_MAX_PER_SOURCE:
			if (args_parse_u64(optarg, 0, 1ull << 32, &c->dedup.max_flows_per_source))
				return bad("--max-flows-per-source", optarg,
					   "expected 0..4294967296");
			break;
		case OPT_FLOW_TIMEOUT:
			if (args_parse_duration_ms(optarg, 1000, 86400000, &v))
				return bad("--flow-timeout", optarg, "expected 1s..24h");
			c->dedup.flow_timeout_ns = v * 1000000ull;
			break;
		case OPT_OUT:
			if (c->n_outs >= 16)
				return bad("--out", optarg, "at most 16 outputs");
			if (egress_parse_spec(optarg, &c->outs[c->n_outs], &why) ||
			    egress_check_filter(&c->outs[c->n_outs], &why))
				return bad("--out", optarg, why);
			c->n_outs++;
			break;
		case OPT_HTTP:
			/* A bare port is loopback: /capture serves plaintext, exposing it
			 * must be a decision someone wrote down. */
			if (!args_parse_u64(optarg, 1, 65535, &v)) {
				snprintf(c->http_local, sizeof(c->http_local), "127.0.0.1:%llu",
					 (unsigned long long)v);
				c->http = c->http_local;
				break;
			}
			if (args_split_hostport(optarg, host, sizeof(host), &port, 0) || !port)
				return bad("--http", optarg, "expected [ADDR:]PORT");
			c->http = optarg;
			break;
		case OPT_HTTP_TOKEN:
			c->http_token_file = optarg;
			break;
		case OPT_CONFIG: /* already merged into argv by config_merge() */
			break;
		case OPT_FLOW_LOG:
			c->flow_log = optarg;
			break;
		case OPT_STATS:
			if (args_parse_duration_ms(optarg, 100, 86400000, &c->stats_ms))
				return bad("--stats-interval", optarg, "expected 100ms..24h");
			break;
		case OPT_RCVBUF:
			if (args_parse_size(optarg, 4096, 1u << 30, &c->rcvbuf))
				return bad("--rcvbuf", optarg, "expected 4k..1g");
			break;
		case OPT_QUEUE:
			if (args_parse_size(optarg, 1u << 20, 1ull << 32, &v))
				return bad("--queue-size", optarg, "expected 1m..4g");
			c->ring_mb = (size_t)(v >> 20);
			break;
		case 'v':
			verbose++;
			break;
		case 'q':
			verbose = -1;
			break;
		case 'V':
			printf("tvn %s\ndedup flow entry: %zu bytes\n", TVN_VERSION,
			       dedup_flow_bytes());
			return 1;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tvn: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (c->n_read && c->n_listen) {
		fprintf(stderr, "tvn: --read and --listen cannot be combined\n");
		usage(stderr);
		return 2;
	}
	if (!c->n_read && !c->n_listen)
		c->listen[c->n_listen++] = "0.0.0.0:4789";
	if (c->rx_ring && c->n_read) {
		fprintf(stderr, "tvn: --rx ring receives live datagrams; it cannot be combined "
				"with --read\n");
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; c->rx_ring && !c->rx_iface && i < c->n_listen; i++) {
		struct in6_addr a6;

		/* A ring captures on one interface: a wildcard address does not name one. */
		args_split_hostport(c->listen[i], host, sizeof(host), &port, 4789);
		if (!strcmp(host, "0.0.0.0") ||
		    (inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_UNSPECIFIED(&a6))) {
			fprintf(stderr,
				"tvn: --rx ring with the wildcard address %s: name the interface "
				"to capture on with --rx-iface\n",
				c->listen[i]);
			usage(stderr);
			return 2;
		}
	}
	c->dedup.window_ns = window_set ? window_ms * 1000000ull : c->dedup.skew_ns;
	if (!c->dedup.window_ns)
		c->dedup.window_ns = 1000000ull;
	log_set_level(verbose < 0 ? LOG_ERROR : verbose == 0 ? LOG_INFO : LOG_DEBUG);
	return 0;
}

/* The token is the file's first line without surrounding white space (files written by
 * `echo`, Kubernetes Secrets and systemd credentials all look like that). */
static int read_token(const char *path, char **out)
{
	char buf[4096], *b, *e;
	size_t n;
	FILE *f;
	int err = 0;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	if (ferror(f))
		err = -EIO;
	fclose(f);
	if (err)
		return err;
	buf[n] = 0;
	b = buf + strspn(buf, " \t\r\n");
	e = b + strcspn(b, "\r\n");
	while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e == b)
		return -ENODATA;
	*e = 0;
	*out = strdup(b);
	memset(buf, 0, sizeof(buf));
	return *out ? 0 : -ENOMEM;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int register_metrics(struct tvn *t)
{
	char label[96];
	int i;

	t->m = metrics_new();
	if (!t->m)
		return -ENOMEM;
	t->m_rx_pkts =
		metrics_counter(t->m, "tvn_rx_packets_total",
				"Datagrams (live) or capture packets (offline) received", NULL);
	t->m_rx_bytes = metrics_counter(t->m, "tvn_rx_bytes_total", "Bytes received", NULL);
	t->m_rx_buffers = metrics_counter(
		t->m, "tvn_rx_buffers_total",
		"Live: receive buffers read, each one datagram or a UDP GRO run of them", NULL);
	for (i = 0; i < INGEST_N_REASONS; i++) {
		snprintf(label, sizeof(label), "reason=\"%s\"", ingest_reason_name(i));
		t->m_malformed[i] =
			metrics_counter(t->m, "tvn_malformed_total",
					"Datagrams dropped as malformed or not allowed", label);
	}
	/* The kernel counts dropped buffers, not datagrams: with UDP GRO one buffer holds a
	 * whole GSO run. Its own name, so that nobody adds it to datagram counts. */
	t->m_rx_drop_sock = metrics_counter(
		t->m, "tvn_rx_dropped_buffers_total",
		"Receive buffers the kernel dropped for a full socket buffer: each one datagram, "
		"or with UDP GRO a run of up to 64; a lower bound on datagrams lost",
		NULL);
	t->m_rx_drop_queue = metrics_counter(t->m, "tvn_rx_dropped_total",
					     "Datagrams lost before dedup: a shard queue was full",
					     "reason=\"queue\"");
	snprintf(label, sizeof(label), "mode=\"%s\"", dedup_mode_name(t->cfg->dedup.mode));
	t->m_dedup_dropped = metrics_counter(t->m, "tvn_dedup_dropped_total",
					     "Frames suppressed entirely as duplicates", label);
	t->m_trimmed = metrics_counter(t->m, "tvn_dedup_trimmed_total",
				       "Frames delivered with their duplicate part trimmed", NULL);
	t->m_conflicts = metrics_counter(t->m, "tvn_overlap_conflicts_total",
					 "Copies that disagreed on the bytes of one range", NULL);
	t->m_table_full = metrics_counter(t->m, "tvn_flows_table_full_total",
					  "Frames passed un-deduplicated: flow table full", NULL);
	t->m_source_limited = metrics_counter(
		t->m, "tvn_flows_source_limited_total",
		"Frames passed un-deduplicated: --max-flows-per-source reached", NULL);
	t->m_meta = metrics_counter(t->m, "tvn_meta_frames_total",
				    "Agent flow metadata messages consumed", NULL);
	t->m_flows_active = metrics_gauge(t->m, "tvn_flows_active", "Flows in the table", NULL);
	return 0;
}

/* Moves the shards' published counters into the metrics registry. */
static void publish_metrics(struct tvn *t)
{
	struct dedup_stats st, *p = &t->published;
	uint64_t sock = ingest_kernel_drops(t->in);

	/* The ingest thread counts in plain fields and publishes once per poll round:
	 * an atomic per datagram on a line other threads also write costs more. */
	metric_add(t->m_rx_pkts, t->rx_pkts - t->pub_rx_pkts);
	metric_add(t->m_rx_bytes, t->rx_bytes - t->pub_rx_bytes);
	t->pub_rx_pkts = t->rx_pkts;
	t->pub_rx_bytes = t->rx_bytes;
	metric_add(t->m_rx_buffers, ingest_buffers(t->in) - t->pub_rx_buffers);
	t->pub_rx_buffers = ingest_buffers(t->in);
	if (!t->shards)
		return;
	shard_get_stats(t->shards, &st);
	metric_add(t->m_dedup_dropped, st.dropped_packets - p->dropped_packets);
	metric_add(t->m_trimmed, st.trimmed_packets - p->trimmed_packets);
	metric_add(t->m_conflicts, st.overlap_conflicts - p->overlap_conflicts);
	metric_add(t->m_table_full, st.table_full - p->table_full);
	metric_add(t->m_source_limited, st.source_limited - p->source_limited);
	metric_add(t->m_meta, st.meta_frames - p->meta_frames);
	metric_set(t->m_flows_active, (int64_t)st.flows_active);
	if (st.overlap_conflicts > p->overlap_conflicts)
		log_warn("%llu new overlap conflict(s): two copies disagree on the bytes of a "
			 "range, the first copy was kept (see the flow log)",
			 (unsigned long long)(st.overlap_conflicts - p->overlap_conflicts));
	*p = st;
	if (sock > t->last_sock_drops) {
		metric_add(t->m_rx_drop_sock, sock - t->last_sock_drops);
		t->last_sock_drops = sock;
	}
}

static void count_malformed(struct tvn *t, int reason)
{
	t->malformed[reason]++;
	metric_inc(t->m_malformed[reason]);
	log_debug("dropped datagram: %s", ingest_reason_name(reason));
}

static void accept_pkt(struct tvn *t, int ret, uint64_t ts_ns)
{
	if (ret < 0) {
		count_malformed(t, -ret - 1);
		return;
	}
	if (shard_submit(t->shards, &t->pkt, ts_ns)) {
		t->queue_drops++;
		metric_inc(t->m_rx_drop_queue);
	}
}

static void on_dgram(void *ctx, const uint8_t *buf, size_t len, const uint8_t src_addr[16],
		     int reason, uint64_t ts_ns)
{
	struct tvn *t = ctx;

	t->rx_pkts++;
	t->rx_bytes += len;
	if (reason != INGEST_OK) {
		count_malformed(t, reason);
		return;
	}
	accept_pkt(t, ingest_datagram(&t->icfg, buf, len, src_addr, &t->pkt), ts_ns);
}

static int on_record(void *ctx, const uint8_t *data, size_t len, uint64_t ts_ns,
		     const uint8_t *src_addr, const struct dedup_src *file_src, bool truncated)
{
	struct tvn *t = ctx;
	int ret;

	t->rx_pkts++;
	t->rx_bytes += len;
	if (ts_ns - t->last_tick_ns >= 1000000000ull && ts_ns > t->last_tick_ns) {
		if (t->last_tick_ns)
			shard_tick(t->shards, ts_ns);
		t->last_tick_ns = ts_ns;
		publish_metrics(t);
	}
	if (truncated) {
		count_malformed(t, INGEST_R_TRUNCATED);
		return 0;
	}
	if (file_src)
		ret = ingest_frame(data, len, file_src, &t->pkt);
	else if (src_addr)
		ret = ingest_datagram(&t->icfg, data, len, src_addr, &t->pkt);
	else
		ret = -1 - INGEST_R_OUTER;
	accept_pkt(t, ret, ts_ns);
	return 0;
}

static void print_stats(struct tvn *t, const char *what)
{
	struct dedup_stats st;
	char mal[1024];
	uint64_t total = 0;
	size_t off = 0;
	int i;

	shard_get_stats(t->shards, &st);
	mal[0] = 0;
	for (i = 0; i < INGEST_N_REASONS; i++) {
		if (!t->malformed[i])
			continue;
		total += t->malformed[i];
		off += (size_t)snprintf(mal + off, off < sizeof(mal) ? sizeof(mal) - off : 0,
					" %s=%llu", ingest_reason_name(i),
					(unsigned long long)t->malformed[i]);
		if (off >= sizeof(mal))
			break;
	}
	fprintf(stderr,
		"tvn: %s: packets in %llu, out %llu, duplicates removed %llu (trimmed %llu, "
		"dup bytes %llu), overlap conflicts %llu, flows %llu (active %llu), "
		"queue drops %llu, malformed %llu%s%s\n",
		what, (unsigned long long)t->rx_pkts, (unsigned long long)st.emitted_packets,
		(unsigned long long)st.dropped_packets, (unsigned long long)st.trimmed_packets,
		(unsigned long long)st.dup_bytes, (unsigned long long)st.overlap_conflicts,
		(unsigned long long)st.flows_total, (unsigned long long)st.flows_active,
		(unsigned long long)t->queue_drops, (unsigned long long)total, total ? ":" : "",
		mal);
}

/* Returns true when some output failed to write a frame. */
static bool print_outputs(struct tvn *t)
{
	struct egress_out_stats st;
	bool failed = false;
	size_t i;

	for (i = 0; i < t->cfg->n_outs; i++) {
		egress_get_stats(t->eg, i, &st);
		fprintf(stderr, "tvn: output %s: %llu frames, %llu dropped%s\n",
			t->cfg->outs[i].name, (unsigned long long)st.packets,
			(unsigned long long)st.dropped, st.failed ? " (write errors)" : "");
		failed |= st.failed;
	}
	return failed;
}

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

static int run_live(struct tvn *t)
{
	uint64_t now, last_stats;
	int n;

	last_stats = t->last_tick_ns = realtime_ns();
	while (!exiting) {
		n = ingest_poll(t->in, 100, on_dgram, t);
		if (n < 0) {
			log_err("failed to receive: %s", strerror(-n));
			return n;
		}
		now = realtime_ns();
		if (now - t->last_tick_ns >= 1000000000ull) {
			shard_tick(t->shards, now);
			t->last_tick_ns = now;
		}
		/* Counters and /flows answers every millisecond, or when idle: per receive
		 * round (thousands a second) their locks and system call cost ~4% at low
		 * rates. */
		if (n == 0 || now - t->last_pub_ns >= TVN_PUBLISH_NS) {
			shard_service(t->shards);
			publish_metrics(t);
			t->last_pub_ns = now;
		}
		if (t->cfg->stats_ms && now - last_stats >= t->cfg->stats_ms * 1000000ull) {
			print_stats(t, "stats");
			last_stats = now;
		}
	}
	log_info("shutting down: flushing flows and outputs");
	return 0;
}

static int run_offline(struct tvn *t)
{
	struct reader *r;
	int err;

	r = reader_new(t->cfg->read, t->cfg->n_read);
	if (!r)
		return -errno;
	err = reader_run(r, on_record, t, (volatile int *)&exiting);
	reader_free(r);
	if (err < 0)
		log_err("failed to read captures: %s", strerror(-err));
	return err;
}

int main(int argc, char **argv)
{
	static struct config cfg;
	static struct tvn t;
	struct shard_cfg scfg = { 0 };
	struct egress_cfg ecfg = { 0 };
	struct flowlog *fl = NULL;
	struct http *http = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	bool stuck = false;
	char cerr[512], **av = NULL;
	int ac, err, ret;

	log_set_ident("tvn");
	if (config_merge(argc, argv, long_opts, &ac, &av, cerr, sizeof(cerr))) {
		fprintf(stderr, "tvn: %s\n", cerr);
		return 2;
	}
	/* cfg keeps pointers into av: it lives until the end of main. */
	ret = parse_args(ac, av, &cfg);
	if (ret) {
		config_argv_free(av);
		return ret == 1 ? 0 : 2;
	}
	if (cfg.http_token_file) {
		err = read_token(cfg.http_token_file, &cfg.http_token);
		if (err) {
			fprintf(stderr, "tvn: failed to read --http-token-file %s: %s\n",
				cfg.http_token_file,
				err == -ENODATA ? "empty file" : strerror(-err));
			config_argv_free(av);
			return 2;
		}
		if (!cfg.http)
			log_warn("--http-token-file given without --http: nothing to protect");
	}
	t.cfg = &cfg;
	t.icfg = (struct ingest_cfg){
		.allow = cfg.allow, .n_allow = cfg.n_allow, .vnis = cfg.vnis, .n_vnis = cfg.n_vnis
	};
	if (!cfg.n_allow && !cfg.n_read)
		log_info("no --allow given: accepting datagrams from every source");
	if (!cfg.n_outs)
		log_warn("no --out given: frames are deduplicated and counted but go nowhere%s",
			 cfg.http ? " (except /capture)" : "");
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN); /* a tool that went away is a send error, not our death */

	err = register_metrics(&t);
	if (err)
		goto cleanup;
	if (!cfg.n_read) {
		/* Sockets first: a --listen that cannot bind fails before anything starts. */
		struct ingest_sock_cfg sc = {
			.listen = cfg.listen,
			.n_listen = cfg.n_listen,
			.join_iface = cfg.join,
			.rcvbuf = (int)cfg.rcvbuf,
			.ring = cfg.rx_ring,
			.ring_iface = cfg.rx_iface,
		};

		t.in = ingest_new(&sc);
		if (!t.in) {
			err = -errno;
			goto cleanup;
		}
	}
	/* One dedup thread is the receiving thread itself: no ring hop, no copy. */
	scfg.n_threads = cfg.threads > 1 ? cfg.threads : 0;
	scfg.dedup = cfg.dedup;
	/* The ingest -> worker queues are not the tools' business: large and fixed, so a
	 * worker descheduled for a moment loses nothing. */
	scfg.ring_bytes = TVN_SHARD_QUEUE;
	scfg.block = cfg.n_read > 0;
	ecfg.outs = cfg.outs;
	ecfg.n_outs = cfg.n_outs;
	ecfg.n_producers = shard_producers(&scfg);
	ecfg.ring_bytes = cfg.ring_mb << 20;
	ecfg.block = cfg.n_read > 0;
	ecfg.metrics = t.m;
	t.eg = egress_new(&ecfg);
	if (!t.eg) {
		err = -errno;
		goto cleanup;
	}
	if (cfg.flow_log) {
		fl = flowlog_new(cfg.flow_log);
		if (!fl) {
			err = -errno;
			goto cleanup;
		}
	}
	t.shards = shard_set_new(&scfg, t.eg, fl ? flowlog_end : NULL, fl);
	if (!t.shards) {
		err = -errno;
		goto cleanup;
	}
	/* tvn_flows_active is registered above; the rest of the registry is complete here,
	 * before any thread renders it. */
	if (cfg.http) {
		http = http_new(cfg.http, cfg.http_token, t.m, t.shards, t.eg);
		if (!http) {
			err = -errno;
			goto cleanup;
		}
		log_info("serving HTTP on %s (port %u)%s", cfg.http, http_port(http),
			 cfg.http_token ? ", /capture and /flows require the bearer token" : "");
		if (!cfg.http_token && strncmp(cfg.http, "127.", 4) &&
		    strncmp(cfg.http, "[::1]", 5) && strncmp(cfg.http, "localhost:", 10))
			log_warn("/capture serves the plaintext stream to anyone who reaches %s: "
				 "give --http-token-file",
				 cfg.http);
	}
	log_info("dedup mode %s, skew %llu ms, %u worker thread(s)%s",
		 dedup_mode_name(cfg.dedup.mode), (unsigned long long)(cfg.dedup.skew_ns / 1000000),
		 shard_producers(&scfg), scfg.n_threads ? "" : " (inline)");
	err = cfg.n_read ? run_offline(&t) : run_live(&t);
	/* A live receive error (the ring's interface deleted) still delivers what came. */
	if (err && cfg.n_read)
		goto cleanup;
	if (err)
		log_info("flushing flows and outputs");
	shard_flush(t.shards);
	/* Offline: every frame reaches the outputs. Live: a stalled tool gets 2 s. */
	egress_drain(t.eg, cfg.n_read ? 0 : 2000);
	publish_metrics(&t);
	print_stats(&t, "summary");
	/* Offline, a file that misses frames is a failed run, whatever the cause. */
	if (print_outputs(&t) && cfg.n_read)
		err = -EIO;
	stuck = egress_stop(t.eg, 3000) == -EBUSY;
cleanup:
	http_free(http); /* first: /capture readers hold egress queues */
	shard_set_free(t.shards);
	if (t.eg && egress_stop(t.eg, 3000) == -EBUSY)
		stuck = true;
	egress_free(t.eg); /* flushes and closes every output; leaks a stuck one's memory */
	flowlog_free(fl);
	ingest_free(t.in);
	/* A stuck output thread may still bump its counters: leak the registry, _exit below. */
	if (!stuck)
		metrics_free(t.m);
	free(cfg.http_token);
	config_argv_free(av);
	if (stuck) {
		/* A stuck output thread may hold stdout's lock: exit() would wait for it. */
		fflush(stderr);
		_exit(err ? 1 : 0);
	}
	return err ? 1 : 0;
}
