/* agent/main.c - ecv-agent: the command line, the poll loop and the operations surface.
 * Owns: the parsed configuration, the signal flag, metrics and stats output; wires
 * probe (events) -> conn (frames) -> ship (VxLAN). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "caps.h"
#include "config.h"
#include "conn.h"
#include "httpd.h"
#include "log.h"
#include "meta.h"
#include "metrics.h"
#include "netinfo.h"
#include "pkt.h"
#include "probe.h"
#include "procinfo.h"
#include "reorder.h"
#include "ship.h"
#include "targets.h"
#include "vxlan.h"

#define ECV_VERSION "0.1.0"
#define MAX_LIST 64
#define NS_PER_MS 1000000ull

static volatile sig_atomic_t exiting;

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

struct options {
	const char *tvns[MAX_LIST];
	size_t n_tvns;
	const char *libs[MAX_LIST];
	size_t n_libs;
	const char *bins[MAX_LIST];
	size_t n_bins;
	const char *go_bins[MAX_LIST];
	size_t n_go_bins;
	uint32_t vni;
	unsigned mtu;
	enum ship_gso gso;
	bool auto_discover;
	pid_t pid;
	const char *cgroup;
	const char *netns;
	enum probe_hook hook;
	enum sites_mode sites;
	enum probe_events events;
	uint64_t ring_bytes;
	unsigned perf_pages;
	unsigned max_chunks;
	char node[64];
	const char *metrics_addr;
	uint64_t stats_ms;
	uint64_t flow_timeout_ms;
	bool verbose;
	bool nice_set;
	int nice;
};

/* Counters mirrored into the metrics registry once per poll round, by delta. */
struct mirror {
	struct metric *m;
	uint64_t last;
};

/* Process metadata by tgid, so a server accepting many connections costs one procfs
 * read per PROC_CACHE_NS instead of several per flow (its maps can be long). */
#define PROC_CACHE 256
#define PROC_CACHE_NS (10ull * 1000000000ull)
struct proc_entry {
	uint32_t tgid;
	int err;
	uint64_t read_ns;
	struct procinfo info;
	char lib[256];
};

struct agent {
	struct options *opt;
	struct proc_entry *procs; /* PROC_CACHE entries, direct-mapped by tgid */
	struct probe *probe;
	struct conn_table *conns;
	struct reorder *reorder;
	struct ecv_event *scratch; /* aligned copy of a sample the reorder buffer refused */
	bool in_order; /* events come in call order, aligned (the ring buffer): no reorder */
	struct ship *ship;
	struct netinfo *ni;
	struct metrics *metrics;
	struct httpd *httpd;
	uint64_t lost;
	/* Last values read from the probe, still reported after it is freed at exit. */
	unsigned n_targets;
	unsigned n_kind[TARGET_KIND_N]; /* hooked targets per stack */
	unsigned n_sites[SITE_N][2];	/* hooked targets per data function, [1]: internal */
	uint64_t n_truncated;
	struct mirror events, bytes_w, bytes_r, lost_m, truncated, gaps, gap_bytes, tx_packets,
		tx_bytes, tx_errors, flows, backlog_dropped, invalid;
	struct metric *flows_active, *targets[TARGET_KIND_N], *sites[SITE_N][2];
};

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Usage: %s [OPTIONS]\n"
		"Copies TLS plaintext at SSL_read/SSL_write with eBPF uprobes and ships it to\n"
		"one or more TVNs as synthesized TCP frames in VxLAN.\n"
		"\n"
		"Where to send:\n"
		"  --tvn HOST[:PORT]        TVN to ship to (repeatable; port default 4789;\n"
		"                           default 127.0.0.1). Several TVNs: each flow goes to\n"
		"                           one, chosen by rendezvous hashing of its 5-tuple\n"
		"  --vni N                  VxLAN network identifier, 0..16777215 (default 1)\n"
		"  --mtu N                  inner IP MTU used to segment payloads, 128..9000\n"
		"                           (default 1450: fits a 1500-byte underlay)\n"
		"  --node NAME              node name in flow metadata (default: host name)\n"
		"  --gso MODE               send runs of equal-sized frames as one UDP GSO\n"
		"                           send: auto (default: only to loopback TVNs), on,\n"
		"                           off. Safe through a NIC and to the tvn; a Linux\n"
		"                           vxlan device reached over veth/bridge on the same\n"
		"                           host keeps only the first frame of each run\n"
		"\n"
		"What to capture:\n"
		"  --lib PATH               hook this TLS library (repeatable), e.g.\n"
		"                           /usr/lib/x86_64-linux-gnu/libssl.so.3; libgnutls.so*,\n"
		"                           libssl3.so and libnspr4.so are hooked as GnuTLS/NSS\n"
		"  --bin PATH               hook a binary that links OpenSSL/BoringSSL "
		"statically,\n"
		"                           or a Go program (crypto/tls)\n"
		"                           (repeatable)\n"
		"  --go-bin PATH            hook this Go program's crypto/tls, stripped or not,\n"
		"                           PIE or not (repeatable); not a Go program with\n"
		"                           crypto/tls: exit 2\n"
		"  --no-auto                do not discover TLS stacks in running and new\n"
		"                           processes: libssl.so*, libgnutls.so*, libssl3.so +\n"
		"                           libnspr4.so mapped, executables defining SSL_read/\n"
		"                           SSL_write or Go's crypto/tls (discovery is on by\n"
		"                           default)\n"
		"  --pid PID                capture only this process\n"
		"  --cgroup PATH            capture only processes in this cgroup v2 directory\n"
		"  --netns PATH             capture only processes in this network namespace\n"
		"                           (e.g. /var/run/netns/NAME, /proc/PID/ns/net)\n"
		"  --socket-hook MODE       how SSL objects are tied to sockets: auto, kprobe,\n"
		"                           fentry, tracepoint or syscalls (default auto: the\n"
		"                           first that works, in that order)\n"
		"  --probe-sites MODE       where SSL_read/SSL_write are probed: auto (default:\n"
		"                           the internal function they call when its code proves\n"
		"                           it has their arguments and its first instruction is\n"
		"                           emulated by the kernel, several times cheaper) or\n"
		"                           exported (always the exported symbols)\n"
		"  --events MODE            how events reach the agent: auto (default: the BPF\n"
		"                           ring buffer, or the perf buffer on kernels before\n"
		"                           5.8), ringbuf, or perf\n"
		"  --ring-size SIZE         ring buffer size, shared by all CPUs: a power of\n"
		"                           two with an optional k/m/g suffix (default 64m;\n"
		"                           raised to hold one whole SSL call)\n"
		"  --perf-pages N           perf buffer pages per CPU, a power of two (default\n"
		"                           512: one 1 MiB SSL call fits without loss)\n"
		"  --max-chunks N           16 KiB chunks captured per SSL call, 1..%d (default\n"
		"                           %d = 1 MiB); longer calls are flagged truncated\n"
		"  --flow-timeout DURATION  end flows idle this long (default 300s)\n"
		"\n"
		"Operations:\n"
		"  --config FILE            JSON object of options, keys = long option names\n"
		"                           (e.g. {\"vni\": 7, \"tvn\": [\"a\", \"b\"]});\n"
		"                           command-line flags override single values and add\n"
		"                           to repeatable ones\n"
		"  --metrics ADDR:PORT      serve Prometheus /metrics and /healthz\n"
		"  --stats-interval DURATION  print a JSON stats line on stderr this often\n"
		"                           (default 0: never)\n"
		"  --nice N                 scheduling priority (nice value) of the agent,\n"
		"                           -20..19 (default: inherited). Negative values keep\n"
		"                           the event buffers drained when applications saturate\n"
		"                           the node's CPUs, at their expense (CAP_SYS_NICE)\n"
		"  -v, --verbose            debug logging, including libbpf's\n"
		"  --version                print the version and exit\n"
		"  -h, --help               this help\n"
		"\n"
		"DURATION is a number with an optional unit: ms, s (default), m, h.\n"
		"Exit status: 0 after SIGINT/SIGTERM, 1 on a runtime error, 2 on bad usage.\n",
		prog, ECV_MAX_CHUNKS, ECV_MAX_CHUNKS);
}

enum {
	OPT_TVN = 256,
	OPT_VNI,
	OPT_MTU,
	OPT_LIB,
	OPT_BIN,
	OPT_GO_BIN,
	OPT_NO_AUTO,
	OPT_PID,
	OPT_CGROUP,
	OPT_NETNS,
	OPT_HOOK,
	OPT_EVENTS,
	OPT_RING_SIZE,
	OPT_PERF_PAGES,
	OPT_MAX_CHUNKS,
	OPT_NODE,
	OPT_METRICS,
	OPT_STATS,
	OPT_FLOW_TIMEOUT,
	OPT_VERSION,
	OPT_CONFIG,
	OPT_GSO,
	OPT_NICE,
	OPT_PROBE_SITES,
};

static const struct option long_opts[] = {
	{ "tvn", required_argument, NULL, OPT_TVN },
	{ "vni", required_argument, NULL, OPT_VNI },
	{ "mtu", required_argument, NULL, OPT_MTU },
	{ "lib", required_argument, NULL, OPT_LIB },
	{ "bin", required_argument, NULL, OPT_BIN },
	{ "go-bin", required_argument, NULL, OPT_GO_BIN },
	{ "no-auto", no_argument, NULL, OPT_NO_AUTO },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "netns", required_argument, NULL, OPT_NETNS },
	{ "socket-hook", required_argument, NULL, OPT_HOOK },
	{ "events", required_argument, NULL, OPT_EVENTS },
	{ "ring-size", required_argument, NULL, OPT_RING_SIZE },
	{ "perf-pages", required_argument, NULL, OPT_PERF_PAGES },
	{ "max-chunks", required_argument, NULL, OPT_MAX_CHUNKS },
	{ "node", required_argument, NULL, OPT_NODE },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "stats-interval", required_argument, NULL, OPT_STATS },
	{ "flow-timeout", required_argument, NULL, OPT_FLOW_TIMEOUT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "gso", required_argument, NULL, OPT_GSO },
	{ "nice", required_argument, NULL, OPT_NICE },
	{ "probe-sites", required_argument, NULL, OPT_PROBE_SITES },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

static int bad_value(const char *prog, const char *flag, const char *val, const char *why)
{
	fprintf(stderr, "%s: invalid value '%s' for --%s: %s\n", prog, val, flag, why);
	usage(stderr, prog);
	return 2;
}

/* A nice value, -20..19 (args_parse_u64 takes no sign). Returns 0 or -EINVAL. */
static int parse_nice(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < -20 || v > 19)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int add_list(const char **list, size_t *n, const char *v)
{
	if (*n >= MAX_LIST)
		return -ENOSPC;
	list[(*n)++] = v;
	return 0;
}

/* Parses argv into opt. Returns -1 to go on, or the exit status (0 for --help and
 * --version, 2 for bad usage). */
static int parse_args(int argc, char **argv, struct options *opt)
{
	const char *prog = argv[0];
	uint64_t v;
	int c;

	memset(opt, 0, sizeof(*opt));
	opt->vni = 1;
	opt->mtu = CONN_MTU_DEFAULT;
	opt->auto_discover = true;
	opt->perf_pages = 512; /* 2 MiB per CPU: one 1 MiB call (64 chunks) fits */
	opt->max_chunks = ECV_MAX_CHUNKS;
	opt->flow_timeout_ms = CONN_IDLE_DEFAULT_NS / NS_PER_MS;
	if (gethostname(opt->node, sizeof(opt->node) - 1) < 0)
		snprintf(opt->node, sizeof(opt->node), "unknown");

	while ((c = getopt_long(argc, argv, "vh", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_TVN:
			if (add_list(opt->tvns, &opt->n_tvns, optarg))
				return bad_value(prog, "tvn", optarg, "too many TVNs");
			break;
		case OPT_VNI:
			if (args_parse_u64(optarg, 0, VXLAN_VNI_MAX, &v))
				return bad_value(prog, "vni", optarg, "expected 0..16777215");
			opt->vni = (uint32_t)v;
			break;
		case OPT_MTU:
			if (args_parse_u64(optarg, 128, 9000, &v))
				return bad_value(prog, "mtu", optarg, "expected 128..9000");
			opt->mtu = (unsigned)v;
			break;
		case OPT_LIB:
			if (add_list(opt->libs, &opt->n_libs, optarg))
				return bad_value(prog, "lib", optarg, "too many libraries");
			break;
		case OPT_BIN:
			if (add_list(opt->bins, &opt->n_bins, optarg))
				return bad_value(prog, "bin", optarg, "too many binaries");
			break;
		case OPT_GO_BIN:
			if (add_list(opt->go_bins, &opt->n_go_bins, optarg))
				return bad_value(prog, "go-bin", optarg, "too many binaries");
			break;
		case OPT_NO_AUTO:
			opt->auto_discover = false;
			break;
		case OPT_PID:
			if (args_parse_u64(optarg, 1, 0x3fffffff, &v))
				return bad_value(prog, "pid", optarg, "expected a process id");
			opt->pid = (pid_t)v;
			break;
		case OPT_CGROUP:
			opt->cgroup = optarg;
			break;
		case OPT_NETNS:
			opt->netns = optarg;
			break;
		case OPT_HOOK:
			if (probe_hook_parse(optarg, &opt->hook))
				return bad_value(prog, "socket-hook", optarg,
						 "expected auto, kprobe, fentry, tracepoint or "
						 "syscalls");
			break;
		case OPT_PROBE_SITES:
			if (sites_mode_parse(optarg, &opt->sites))
				return bad_value(prog, "probe-sites", optarg,
						 "expected auto or exported");
			break;
		case OPT_EVENTS:
			if (probe_events_parse(optarg, &opt->events))
				return bad_value(prog, "events", optarg,
						 "expected auto, ringbuf or perf");
			break;
		case OPT_RING_SIZE:
			if (args_parse_size(optarg, 4096, 1u << 30, &v) || (v & (v - 1)))
				return bad_value(prog, "ring-size", optarg,
						 "expected a power of two, 4k..1g");
			opt->ring_bytes = v;
			break;
		case OPT_PERF_PAGES:
			if (args_parse_u64(optarg, 1, 1u << 16, &v) || (v & (v - 1)))
				return bad_value(prog, "perf-pages", optarg,
						 "expected a power of two, 1..65536");
			opt->perf_pages = (unsigned)v;
			break;
		case OPT_MAX_CHUNKS:
			if (args_parse_u64(optarg, 1, ECV_MAX_CHUNKS, &v))
				return bad_value(prog, "max-chunks", optarg, "expected 1..64");
			opt->max_chunks = (unsigned)v;
			break;
		case OPT_NODE:
			if (!*optarg || strlen(optarg) >= sizeof(opt->node))
				return bad_value(prog, "node", optarg, "expected 1..63 characters");
			snprintf(opt->node, sizeof(opt->node), "%s", optarg);
			break;
		case OPT_METRICS: {
			char host[256];
			uint16_t port;

			if (args_split_hostport(optarg, host, sizeof(host), &port, 0) || !port)
				return bad_value(prog, "metrics", optarg, "expected ADDR:PORT");
			opt->metrics_addr = optarg;
			break;
		}
		case OPT_STATS:
			if (args_parse_duration_ms(optarg, 0, 86400000ull, &opt->stats_ms))
				return bad_value(prog, "stats-interval", optarg,
						 "expected a duration such as 10s");
			break;
		case OPT_FLOW_TIMEOUT:
			if (args_parse_duration_ms(optarg, 1000, 86400000ull,
						   &opt->flow_timeout_ms))
				return bad_value(prog, "flow-timeout", optarg,
						 "expected a duration of 1s..24h");
			break;
		case 'v':
			opt->verbose = true;
			break;
		case OPT_CONFIG: /* already merged into argv by config_merge() */
			break;
		case OPT_GSO:
			if (!strcmp(optarg, "auto"))
				opt->gso = SHIP_GSO_AUTO;
			else if (!strcmp(optarg, "on"))
				opt->gso = SHIP_GSO_ON;
			else if (!strcmp(optarg, "off"))
				opt->gso = SHIP_GSO_OFF;
			else
				return bad_value(prog, "gso", optarg, "expected auto, on or off");
			break;
		case OPT_NICE:
			if (parse_nice(optarg, &opt->nice))
				return bad_value(prog, "nice", optarg, "expected -20..19");
			opt->nice_set = true;
			break;
		case OPT_VERSION:
			printf("ecv-agent %s\n", ECV_VERSION);
			return 0;
		case 'h':
			usage(stdout, prog);
			return 0;
		default:
			usage(stderr, prog);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		usage(stderr, prog);
		return 2;
	}
	if (!opt->n_tvns)
		opt->tvns[opt->n_tvns++] = "127.0.0.1";
	if (!opt->auto_discover && !opt->n_libs && !opt->n_bins && !opt->n_go_bins) {
		fprintf(stderr, "%s: --no-auto needs at least one --lib, --bin or --go-bin\n",
			prog);
		usage(stderr, prog);
		return 2;
	}
	return -1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- lookups handed to conn ------------------------------------------------- */

static const struct proc_entry *proc_lookup(struct agent *a, uint32_t tgid)
{
	struct proc_entry *e = &a->procs[tgid % PROC_CACHE];
	uint64_t now = mono_ns();

	if (e->tgid != tgid || !e->read_ns || now - e->read_ns > PROC_CACHE_NS) {
		e->tgid = tgid;
		e->read_ns = now;
		e->err = procinfo_read((pid_t)tgid, &e->info);
		procinfo_ssl_lib((pid_t)tgid, e->lib, sizeof(e->lib));
	}
	return e;
}

/* Discovery saw tgid running with a libssl: read who it is now (comm, cgroup, container
 * id), while it exists; flows it makes within PROC_CACHE_NS use this. */
static void on_ssl_process(void *ctx, pid_t pid)
{
	struct agent *a = ctx;

	if (a->procs)
		proc_lookup(a, (uint32_t)pid);
}

static int lookup_proc(void *ctx, uint32_t tgid, struct procinfo *out)
{
	const struct proc_entry *e = proc_lookup(ctx, tgid);

	*out = e->info;
	return e->err;
}

static void lookup_lib(void *ctx, uint32_t tgid, char *out, size_t cap)
{
	const struct proc_entry *e = proc_lookup(ctx, tgid);

	snprintf(out, cap, "%s", e->lib);
}

static bool lookup_listens(void *ctx, uint32_t tgid, int family, uint16_t port)
{
	(void)ctx;
	return procinfo_listens((pid_t)tgid, family, port);
}

static void lookup_l2(void *ctx, const uint8_t laddr[16], const uint8_t raddr[16], uint64_t now_ns,
		      struct pkt_l2 *l2)
{
	struct agent *a = ctx;

	netinfo_l2(a->ni, laddr, raddr, now_ns, l2);
}

static int on_frame(void *ctx, const struct ecv_tuple *flow, const uint8_t *frame, size_t len)
{
	struct agent *a = ctx;

	return ship_send(a->ship, flow, frame, len);
}

static uint8_t *frame_buf(void *ctx, const struct ecv_tuple *flow, size_t need)
{
	struct agent *a = ctx;

	return ship_frame_buf(a->ship, flow, need);
}

static void handle_event(void *ctx, const struct ecv_event *ev, size_t size)
{
	struct agent *a = ctx;

	if (log_get_level() >= LOG_DEBUG)
		log_debug("event type %u tgid %u ssl %#llx dir %u offset %llu len %u flags %#x "
			  "ts %llu",
			  ev->type, ev->tgid, (unsigned long long)ev->ssl, ev->dir,
			  (unsigned long long)ev->offset, ev->len, ev->flags,
			  (unsigned long long)ev->ts_ns);
	conn_handle(a->conns, ev, size, mono_ns());
}

/* Perf samples are sorted per poll round (reorder.h) before they reach the table; the
 * copy into the reorder buffer is the one copy a sample gets before its frames are built.
 * The ring buffer's records need neither: one ring holds them in the order they were
 * reserved, which for one SSL object is the order of its calls (OpenSSL forbids
 * concurrent calls on an object), and 8-byte aligned; they are handled where they sit
 * (the 16 KiB copy was a quarter of the agent's CPU time in a bulk download). */
static void on_event(void *ctx, const void *sample, size_t size)
{
	struct agent *a = ctx;

	if (a->in_order && !((uintptr_t)sample & 7)) {
		handle_event(a, sample, size);
		return;
	}
	if (reorder_add(a->reorder, sample, size) == 0)
		return;
	/* Out of memory: unsorted beats lost. */
	memcpy(a->scratch, sample, size);
	handle_event(a, a->scratch, size);
}

/* One poll round: events in kernel order, then expiry and the batch. */
static int poll_round(struct agent *a, int timeout_ms)
{
	int n = probe_poll(a->probe, timeout_ms);

	reorder_drain(a->reorder, handle_event, a);
	conn_expire(a->conns, mono_ns()); /* closed flows after their grace period */
	ship_flush(a->ship);
	return n;
}

static void on_lost(void *ctx, int cpu, uint64_t count)
{
	struct agent *a = ctx;

	if (cpu < 0)
		log_debug("lost %llu events (ring buffer full)", (unsigned long long)count);
	else
		log_debug("lost %llu events on CPU %d (perf buffer full)",
			  (unsigned long long)count, cpu);
	a->lost += count;
}

/* --- metrics and stats ------------------------------------------------------ */

static int mirror_counter(struct agent *a, struct mirror *x, const char *name, const char *help,
			  const char *labels)
{
	x->m = metrics_counter(a->metrics, name, help, labels);
	return x->m ? 0 : -errno;
}

static int metrics_setup(struct agent *a)
{
	int err = 0;

	a->metrics = metrics_new();
	if (!a->metrics)
		return -errno;
	err |= mirror_counter(a, &a->events, "ecv_agent_events_total", "BPF events received", NULL);
	err |= mirror_counter(a, &a->bytes_w, "ecv_agent_bytes_total", "plaintext bytes captured",
			      "dir=\"write\"");
	err |= mirror_counter(a, &a->bytes_r, "ecv_agent_bytes_total", "plaintext bytes captured",
			      "dir=\"read\"");
	err |= mirror_counter(a, &a->lost_m, "ecv_agent_lost_events_total",
			      "events lost: ring or perf buffer full", NULL);
	err |= mirror_counter(a, &a->truncated, "ecv_agent_truncated_total",
			      "SSL calls longer than the capture limit", NULL);
	err |= mirror_counter(a, &a->gaps, "ecv_agent_gaps_total",
			      "holes left in a stream's sequence space", NULL);
	err |= mirror_counter(a, &a->gap_bytes, "ecv_agent_gap_bytes_total",
			      "bytes of sequence space in those holes (not captured, not shipped)",
			      NULL);
	err |= mirror_counter(a, &a->flows, "ecv_agent_flows_total", "flows started", NULL);
	err |= mirror_counter(a, &a->backlog_dropped, "ecv_agent_backlog_dropped_total",
			      "events dropped before their connection's tuple was known", NULL);
	err |= mirror_counter(a, &a->invalid, "ecv_agent_invalid_events_total",
			      "malformed events rejected", NULL);
	err |= mirror_counter(a, &a->tx_packets, "ecv_agent_tx_packets_total",
			      "VxLAN datagrams sent", NULL);
	err |= mirror_counter(a, &a->tx_bytes, "ecv_agent_tx_bytes_total",
			      "VxLAN UDP payload bytes sent", NULL);
	err |= mirror_counter(a, &a->tx_errors, "ecv_agent_tx_errors_total",
			      "datagrams not sent (send errors, oversized frames)", NULL);
	a->flows_active = metrics_gauge(a->metrics, "ecv_agent_flows_active",
					"connections in the table", NULL);
	if (err || !a->flows_active)
		return -ENOMEM;
	for (int k = TARGET_NONE + 1; k < TARGET_KIND_N; k++) {
		char labels[48];

		snprintf(labels, sizeof(labels), "kind=\"%s\"", targets_kind_name(k));
		a->targets[k] =
			metrics_gauge(a->metrics, "ecv_agent_targets",
				      "library and binary files hooked, per TLS stack", labels);
		if (!a->targets[k])
			return -ENOMEM;
	}
	for (int f = 0; f < SITE_N; f++) {
		for (int in = 0; in < 2; in++) {
			char labels[96];

			snprintf(labels, sizeof(labels), "func=\"%s\",site=\"%s\"",
				 sites_func_name(f), in ? "internal" : "exported");
			a->sites[f][in] = metrics_gauge(a->metrics, "ecv_agent_probe_sites",
							"hooked files whose data function is "
							"probed at that site",
							labels);
			if (!a->sites[f][in])
				return -ENOMEM;
		}
	}
	return 0;
}

static void mirror(struct mirror *x, uint64_t now)
{
	if (now > x->last)
		metric_add(x->m, now - x->last);
	x->last = now;
}

static void probe_sync(struct agent *a)
{
	if (!a->probe)
		return;
	a->n_targets = probe_targets(a->probe);
	for (int k = 0; k < TARGET_KIND_N; k++)
		a->n_kind[k] = probe_targets_kind(a->probe, k);
	a->n_truncated = probe_truncated(a->probe);
	for (int f = 0; f < SITE_N; f++)
		for (int in = 0; in < 2; in++)
			a->n_sites[f][in] = probe_sites(a->probe, f, in);
}

static void metrics_sync(struct agent *a)
{
	const struct conn_stats *cs = conn_stats(a->conns);
	const struct ship_stats *ss = ship_stats(a->ship);

	if (!a->metrics)
		return;
	mirror(&a->events, cs->events);
	mirror(&a->bytes_w, cs->bytes[ECV_DIR_WRITE]);
	mirror(&a->bytes_r, cs->bytes[ECV_DIR_READ]);
	mirror(&a->lost_m, a->lost);
	probe_sync(a);
	mirror(&a->truncated, a->n_truncated);
	mirror(&a->gaps, cs->gaps);
	mirror(&a->gap_bytes, cs->gap_bytes);
	mirror(&a->flows, cs->flows_started);
	mirror(&a->backlog_dropped, cs->backlog_dropped);
	mirror(&a->invalid, cs->invalid);
	mirror(&a->tx_packets, ss->tx_packets);
	mirror(&a->tx_bytes, ss->tx_bytes);
	mirror(&a->tx_errors, ss->tx_errors);
	metric_set(a->flows_active, (int64_t)cs->flows_active);
	for (int k = TARGET_NONE + 1; k < TARGET_KIND_N; k++)
		metric_set(a->targets[k], a->n_kind[k]);
	for (int f = 0; f < SITE_N; f++)
		for (int in = 0; in < 2; in++)
			metric_set(a->sites[f][in], a->n_sites[f][in]);
}

static void print_stats(struct agent *a)
{
	const struct conn_stats *cs = conn_stats(a->conns);
	const struct ship_stats *ss = ship_stats(a->ship);
	json_int_t sites[2] = { 0, 0 };
	json_t *o;
	char *line;

	probe_sync(a);
	for (int f = 0; f < SITE_N; f++)
		for (int in = 0; in < 2; in++)
			sites[in] += a->n_sites[f][in];
	o = json_pack(
		"{s:s, s:I, s:s, s:I, s:{s:I, s:I}, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
		"s:I, s:I, s:I, s:I, s:{s:I, s:I}}",
		"type", "stats", "ts", (json_int_t)time(NULL), "node", a->opt->node, "events",
		(json_int_t)cs->events, "bytes", "write", (json_int_t)cs->bytes[ECV_DIR_WRITE],
		"read", (json_int_t)cs->bytes[ECV_DIR_READ], "lost", (json_int_t)a->lost,
		"truncated", (json_int_t)a->n_truncated, "gaps", (json_int_t)cs->gaps, "gap_bytes",
		(json_int_t)cs->gap_bytes, "flows_active", (json_int_t)cs->flows_active, "flows",
		(json_int_t)cs->flows_started, "backlog_dropped", (json_int_t)cs->backlog_dropped,
		"tx_packets", (json_int_t)ss->tx_packets, "tx_bytes", (json_int_t)ss->tx_bytes,
		"tx_errors", (json_int_t)ss->tx_errors, "targets", (json_int_t)a->n_targets,
		"probe_sites", "internal", sites[1], "exported", sites[0]);
	if (!o)
		return;
	line = json_dumps(o, JSON_COMPACT);
	if (line)
		fprintf(stderr, "%s\n", line);
	free(line);
	json_decref(o);
}

/* --- start-up --------------------------------------------------------------- */

static int inode_of(const char *what, const char *path, uint64_t *ino)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int err = -errno;

		log_err("failed to open %s %s: %s", what, path, strerror(errno));
		return err;
	}
	*ino = st.st_ino;
	return 0;
}

/* Each --go-bin must be a Go program whose crypto/tls decodes: said at once, as bad
 * usage, before anything is loaded. */
static int check_go_bins(const struct options *opt)
{
	for (size_t i = 0; i < opt->n_go_bins; i++) {
		struct sites_go g;
		char why[SITE_WHY_LEN];

		if (sites_go(opt->go_bins[i], &g, why, sizeof(why))) {
			log_err("--go-bin %s: %s", opt->go_bins[i], why);
			return -EINVAL;
		}
	}
	return 0;
}

static int check_targets(const struct options *opt)
{
	for (size_t i = 0; i < opt->n_libs; i++) {
		if (access(opt->libs[i], R_OK) < 0) {
			int err = -errno;

			log_err("failed to hook %s: %s", opt->libs[i], strerror(errno));
			return err;
		}
	}
	for (size_t i = 0; i < opt->n_bins; i++) {
		if (access(opt->bins[i], R_OK) < 0) {
			int err = -errno;

			log_err("failed to hook %s: %s", opt->bins[i], strerror(errno));
			return err;
		}
	}
	return 0;
}

/* Least privilege once the probes are attached (issue 6): what later discovery, /proc
 * metadata and, for a privileged metrics port, its bind need; everything else goes, from
 * every set including the bounding set. Logs what was kept. */
static int drop_caps(const struct options *opt)
{
	uint64_t keep = caps_needed(opt->auto_discover), eff = 0;
	char host[256], names[512];
	uint16_t port = 0;
	int err;

	if (opt->metrics_addr &&
	    args_split_hostport(opt->metrics_addr, host, sizeof(host), &port, 0) == 0 &&
	    port < 1024)
		keep |= CAPS_BIT(CAP_NET_BIND_SERVICE);
	err = caps_limit(keep);
	if (!err)
		err = caps_effective(&eff);
	if (err) {
		log_err("failed to drop capabilities: %s", strerror(-err));
		return err;
	}
	log_info("capabilities dropped; kept: %s", caps_names(eff, names, sizeof(names)));
	return 0;
}

static int run(struct agent *a)
{
	uint64_t now, last_stats;
	int err = 0, n;

	now = last_stats = mono_ns();
	while (!exiting) {
		n = poll_round(a, 100);
		if (n < 0 && n != -EINTR) {
			err = n;
			log_err("failed to poll the event buffer: %s", strerror(-n));
			break;
		}
		now = mono_ns();
		metrics_sync(a);
		if (a->opt->stats_ms && now - last_stats >= a->opt->stats_ms * NS_PER_MS) {
			print_stats(a);
			last_stats = now;
		}
	}
	return err;
}

int main(int argc, char **argv)
{
	struct options opt;
	struct agent a;
	struct probe_cfg pcfg;
	struct conn_cfg ccfg;
	struct ship_cfg scfg;
	struct sigaction sa;
	char cfg_err[512], **av = NULL;
	uint64_t ino = 0;
	int ac, err, rc;

	if (config_merge(argc, argv, long_opts, &ac, &av, cfg_err, sizeof(cfg_err))) {
		fprintf(stderr, "%s: %s\n", argv[0], cfg_err);
		usage(stderr, argv[0]);
		return 2;
	}
	/* opt keeps pointers into av: it lives until the end of main(). */
	rc = parse_args(ac, av, &opt);
	if (rc >= 0) {
		config_argv_free(av);
		return rc;
	}
	log_set_ident("ecv-agent");
	log_set_level(opt.verbose ? LOG_DEBUG : LOG_INFO);
	if (check_go_bins(&opt)) {
		config_argv_free(av);
		return 2;
	}
	memset(&a, 0, sizeof(a));
	a.opt = &opt;

	memset(&pcfg, 0, sizeof(pcfg));
	pcfg.libs = opt.libs;
	pcfg.n_libs = opt.n_libs;
	pcfg.bins = opt.bins;
	pcfg.n_bins = opt.n_bins;
	pcfg.go_bins = opt.go_bins;
	pcfg.n_go_bins = opt.n_go_bins;
	pcfg.auto_discover = opt.auto_discover;
	pcfg.rescan_ms = 1000;
	pcfg.pid = opt.pid;
	pcfg.hook = opt.hook;
	pcfg.sites = opt.sites;
	pcfg.events = opt.events;
	pcfg.ring_bytes = opt.ring_bytes;
	pcfg.perf_pages = opt.perf_pages;
	pcfg.max_chunks = opt.max_chunks;
	pcfg.on_ssl_process = on_ssl_process;

	err = check_targets(&opt);
	if (err)
		goto cleanup;
	if (opt.netns) {
		err = inode_of("network namespace", opt.netns, &ino);
		if (err)
			goto cleanup;
		pcfg.netns_ino = (uint32_t)ino;
	}
	if (opt.cgroup) {
		err = inode_of("cgroup", opt.cgroup, &ino);
		if (err)
			goto cleanup;
		pcfg.cgroup_id = ino;
	}

	/* Resolve TVNs before touching the kernel: a typo must not leave probes behind. */
	memset(&scfg, 0, sizeof(scfg));
	scfg.tvns = opt.tvns;
	scfg.n_tvns = opt.n_tvns;
	scfg.vni = opt.vni;
	scfg.gso = opt.gso;
	scfg.max_frame =
		PKT_ETH_LEN + PKT_VLAN_LEN + (opt.mtu > META_MAX_JSON ? opt.mtu : META_MAX_JSON);
	a.ship = ship_new(&scfg);
	if (!a.ship) {
		err = errno ? -errno : -EINVAL; /* ship_new() logged the cause */
		goto cleanup;
	}

	a.procs = calloc(PROC_CACHE, sizeof(*a.procs));
	a.ni = netinfo_new();
	a.reorder = reorder_new();
	a.scratch = malloc(sizeof(*a.scratch));
	if (!a.procs || !a.ni || !a.reorder || !a.scratch) {
		err = -ENOMEM;
		log_err("failed to allocate agent buffers: %s", strerror(ENOMEM));
		goto cleanup;
	}
	memset(&ccfg, 0, sizeof(ccfg));
	ccfg.mtu = opt.mtu;
	ccfg.idle_ns = opt.flow_timeout_ms * NS_PER_MS;
	ccfg.node = opt.node;
	ccfg.emit = on_frame;
	ccfg.emit_ctx = &a;
	ccfg.frame_buf = frame_buf;
	ccfg.lookup.proc = lookup_proc;
	ccfg.lookup.lib = lookup_lib;
	ccfg.lookup.listens = lookup_listens;
	ccfg.lookup.l2 = lookup_l2;
	ccfg.lookup.ctx = &a;
	a.conns = conn_table_new(&ccfg);
	if (!a.conns) {
		err = -errno;
		log_err("failed to create connection table: %s", strerror(errno));
		goto cleanup;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The nice value is per thread on Linux: set on this one (the consumer) before the
	 * HTTP server's thread starts and inherits it, and while CAP_SYS_NICE is held. */
	if (opt.nice_set && setpriority(PRIO_PROCESS, 0, opt.nice)) {
		err = -errno;
		log_err("failed to set --nice %d: %s%s", opt.nice, strerror(-err),
			err == -EACCES || err == -EPERM ? " (a negative value needs CAP_SYS_NICE)"
							: "");
		goto cleanup;
	}
	a.probe = probe_new(&pcfg, on_event, on_lost, &a);
	if (!a.probe) {
		err = errno ? -errno : -EINVAL;
		goto cleanup; /* probe_new() logged the cause */
	}
	a.in_order = !strcmp(probe_events_name(a.probe), "ringbuf");
	/* Before any thread starts (capabilities are per thread): the HTTP server's thread
	 * must not keep what the agent gave up. */
	err = drop_caps(&opt);
	if (err)
		goto cleanup;
	/* Served once the probes are attached: /healthz answering means capturing. */
	if (opt.metrics_addr) {
		err = metrics_setup(&a);
		if (err) {
			log_err("failed to register metrics: %s", strerror(-err));
			goto cleanup;
		}
		metrics_sync(&a);
		a.httpd = httpd_new(opt.metrics_addr, a.metrics, NULL, NULL);
		if (!a.httpd) {
			err = errno ? -errno : -EINVAL;
			goto cleanup;
		}
	}
	log_info("capturing with socket hook %s, events by %s, %u target(s), node %s, mtu %u, "
		 "vni %u",
		 probe_hook_name(a.probe), probe_events_name(a.probe), probe_targets(a.probe),
		 opt.node, opt.mtu, opt.vni);

	err = run(&a);

	/* Orderly end: take what the event buffer still holds, close every open flow so
	 * the TVN sees FINs and end records, then detach. Detaching a few dozen uprobes
	 * takes seconds on some kernels: FINs sent after it would reach the TVN later than
	 * its skew allows after the other node's copy. Nothing is polled after the drain,
	 * so no event can reopen a closed flow. */
	poll_round(&a, 0);
	conn_close_all(a.conns, mono_ns());
	ship_flush(a.ship);
	probe_sync(&a);
	probe_free(a.probe);
	a.probe = NULL;
	metrics_sync(&a);
	if (opt.stats_ms)
		print_stats(&a);
	log_info("stopped: %llu events, %llu frames, %llu datagrams sent, %llu send errors, "
		 "%llu lost",
		 (unsigned long long)conn_stats(a.conns)->events,
		 (unsigned long long)conn_stats(a.conns)->frames,
		 (unsigned long long)ship_stats(a.ship)->tx_packets,
		 (unsigned long long)ship_stats(a.ship)->tx_errors, (unsigned long long)a.lost);

cleanup:
	probe_free(a.probe);
	httpd_free(a.httpd);
	conn_table_free(a.conns);
	ship_free(a.ship);
	netinfo_free(a.ni);
	reorder_free(a.reorder);
	free(a.scratch);
	free(a.procs);
	metrics_free(a.metrics);
	config_argv_free(av);
	return err ? 1 : 0;
}
