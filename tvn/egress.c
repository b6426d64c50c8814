/* tvn/egress.c - outputs, each drained by its own thread from per-producer SPSC rings. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "egress.h"
#include "log.h"
#include "pkt.h"
#include "ring.h"
#include "tuple.h"
#include "vxlan.h"

#define EGRESS_MAX_CAPTURES 8
#define EGRESS_BATCH 64
#define EGRESS_FRAME_MAX 65600 /* a 64 KiB inner frame + a VLAN tag + VxLAN header */
#define EGRESS_SNAPLEN 262144
#define EGRESS_PCAP_BUF (1u << 20) /* records of a pcap output, written in one go */
/* vxlan: outputs send from this many UDP source ports, one chosen by the inner flow hash
 * (RFC 7348 section 5), so ECMP and RSS on the way to the tool spread the flows while
 * each flow keeps its path and its order. */
#define EGRESS_VXLAN_PORTS 16

/* What a ring record starts with; the frame follows. */
struct rec {
	uint64_t ts_ns;
	struct dedup_src src;
	uint32_t len;
};

struct output {
	struct egress_out_cfg cfg;
	struct egress *eg;
	struct ring **rings; /* one per producer */
	pthread_t thread;
	bool started;
	struct metric *m_pkts, *m_drops;
	_Atomic uint64_t pkts, drops;
	/* filter */
	pcap_t *dead;
	struct bpf_program prog;
	bool have_prog;
	/* pcap */
	pcap_dumper_t *dumper;
	uint8_t *wbuf; /* EGRESS_PCAP_BUF: records not yet written; outlives every file */
	size_t wlen;
	int header_err; /* errno of writing the file header, for pcap_check() */
	uint64_t file_bytes, file_start_ns;
	unsigned file_index;
	bool dirty;
	/* vxlan / iface */
	int fds[EGRESS_VXLAN_PORTS]; /* iface: fds[0] only */
	unsigned n_fds;
	struct mmsghdr msgs[EGRESS_BATCH];
	struct mmsghdr group[EGRESS_BATCH]; /* the messages of one socket, at flush */
	uint8_t sock_of[EGRESS_BATCH];	    /* fds[] index of each message */
	struct iovec iov[EGRESS_BATCH];
	uint8_t *batch; /* EGRESS_BATCH * EGRESS_FRAME_MAX */
	unsigned n_batch;
	uint8_t scratch[EGRESS_FRAME_MAX];
	bool send_err_logged;
	bool stuck_logged;
	uint64_t retry_ns;    /* pcap: when to try again a file that failed to open */
	bool batch_failed;    /* pcap: a write since the last publish() failed */
	_Atomic bool failed;  /* some frame could not be written (egress_get_stats()) */
	uint64_t unpublished; /* frames written, not yet added to pkts/m_pkts (or drops) */
};

struct capture {
	_Atomic int state; /* 0 free, 1 attached */
	struct ring **rings;
	unsigned cur; /* producer ring of the record last returned */
	struct metric *m_drops;
	_Atomic uint64_t drops;
};

struct egress {
	struct egress_cfg cfg;
	struct output *outs;
	size_t n_outs;
	struct capture caps[EGRESS_MAX_CAPTURES];
	_Atomic unsigned n_captures; /* attached readers: 0 spares producers the slot scan */
	_Atomic bool stop;
};

/* --- spec parsing --- */

static int set_opt(struct egress_out_cfg *o, const char *key, size_t klen, const char *val,
		   const char **why)
{
	uint64_t v;

	if (klen == 6 && !strncmp(key, "filter", 6)) {
		if (strlen(val) >= sizeof(o->filter))
			return *why = "filter too long", -EINVAL;
		strcpy(o->filter, val);
	} else if (klen == 7 && !strncmp(key, "snaplen", 7)) {
		if (args_parse_u64(val, 14, 262144, &v))
			return *why = "bad snaplen (14..262144)", -EINVAL;
		o->snaplen = (uint32_t)v;
	} else if (klen == 6 && !strncmp(key, "origin", 6)) {
		if (strcmp(val, "vlan"))
			return *why = "origin must be vlan", -EINVAL;
		o->origin_vlan = true;
	} else if (klen == 5 && !strncmp(key, "queue", 5)) {
		if (args_parse_size(val, 1u << 20, 1ull << 32, &v))
			return *why = "bad queue (1m..4g)", -EINVAL;
		o->queue_bytes = v;
	} else if (klen == 4 && !strncmp(key, "size", 4) && o->type == EGRESS_PCAP) {
		if (args_parse_size(val, 4096, UINT64_MAX, &v))
			return *why = "bad size (at least 4k)", -EINVAL;
		o->rotate_bytes = v;
	} else if (klen == 4 && !strncmp(key, "time", 4) && o->type == EGRESS_PCAP) {
		if (args_parse_duration_ms(val, 1000, UINT64_MAX, &v))
			return *why = "bad time (at least 1s)", -EINVAL;
		o->rotate_ms = v;
	} else if (klen == 3 && !strncmp(key, "vni", 3) && o->type == EGRESS_VXLAN) {
		if (args_parse_u64(val, 0, VXLAN_VNI_MAX, &v))
			return *why = "bad vni (0..16777215)", -EINVAL;
		o->vni = (uint32_t)v;
	} else {
		return *why = "unknown option for this output", -EINVAL;
	}
	return 0;
}

int egress_check_filter(const struct egress_out_cfg *out, const char **why)
{
	struct bpf_program prog;
	pcap_t *dead;
	int err = 0;

	if (!out->filter[0])
		return 0;
	dead = pcap_open_dead(DLT_EN10MB, EGRESS_SNAPLEN);
	if (!dead)
		return *why = "out of memory", -ENOMEM;
	if (pcap_compile(dead, &prog, out->filter, 1, PCAP_NETMASK_UNKNOWN) < 0) {
		log_err("failed to compile filter '%s': %s", out->filter, pcap_geterr(dead));
		*why = "bad filter expression";
		err = -EINVAL;
	} else {
		pcap_freecode(&prog);
	}
	pcap_close(dead);
	return err;
}

int egress_parse_spec(const char *spec, struct egress_out_cfg *out, const char **why)
{
	const char *p, *comma, *eq;
	char val[EGRESS_FILTER_MAX];
	size_t n;
	int err;

	*why = NULL;
	memset(out, 0, sizeof(*out));
	out->vni = 1;
	if (!strncmp(spec, "pcap:", 5))
		out->type = EGRESS_PCAP, p = spec + 5;
	else if (!strncmp(spec, "vxlan:", 6))
		out->type = EGRESS_VXLAN, p = spec + 6;
	else if (!strncmp(spec, "iface:", 6))
		out->type = EGRESS_IFACE, p = spec + 6;
	else
		return *why = "expected pcap:, vxlan: or iface:", -EINVAL;
	comma = strchr(p, ',');
	n = comma ? (size_t)(comma - p) : strlen(p);
	if (!n || n >= sizeof(out->target))
		return *why = "missing or too long target", -EINVAL;
	memcpy(out->target, p, n);
	snprintf(out->name, sizeof(out->name), "%.*s", (int)(p - spec + n), spec);
	p = comma;
	while (p && *p == ',') {
		p++;
		eq = strchr(p, '=');
		comma = strchr(p, ',');
		if (!eq || (comma && comma < eq))
			return *why = "expected key=value", -EINVAL;
		if (eq - p == 6 && !strncmp(p, "filter", 6)) {
			const char *v = eq + 1;

			if (*v == '"' || *v == '\'') {
				const char *end = strchr(v + 1, *v);

				if (!end || (end[1] && end[1] != ','))
					return *why = "unterminated quoted filter", -EINVAL;
				n = (size_t)(end - v - 1);
				comma = end[1] ? end + 1 : NULL;
				v++;
			} else {
				/* Unquoted: the filter is the rest of the string, commas and all.
				 */
				n = strlen(v);
				comma = NULL;
			}
			if (n >= sizeof(val))
				return *why = "filter too long", -EINVAL;
			memcpy(val, v, n);
			val[n] = 0;
		} else {
			const char *end = comma ? comma : eq + strlen(eq);

			n = (size_t)(end - eq - 1);
			if (n >= sizeof(val))
				return *why = "value too long", -EINVAL;
			memcpy(val, eq + 1, n);
			val[n] = 0;
		}
		err = set_opt(out, p, (size_t)(eq - p), val, why);
		if (err)
			return err;
		p = comma;
	}
	return 0;
}

uint16_t egress_origin_vlan_id(const struct dedup_src *src)
{
	uint16_t id = (uint16_t)(((src->addr[14] << 8) | src->addr[15]) & 0xfff);

	return id == 0 || id == 0xfff ? 4094 : id;
}

static double capture_clients(void *ctx)
{
	struct egress *eg = ctx;
	int i, n = 0;

	for (i = 0; i < EGRESS_MAX_CAPTURES; i++)
		n += atomic_load(&eg->caps[i].state) == 1;
	return n;
}

/* --- outputs --- */

/* A time-rotated name with strftime() conversions, like tcpdump -G. */
static bool timed_name(const struct output *o)
{
	return o->cfg.rotate_ms && strchr(o->cfg.target, '%');
}

/* libpcap wrote the file header into the FILE; the records go through o->wbuf and
 * write(2) (see pcap_write()), so the header is pushed out now, before any record. A
 * failure stays in ferror() for the next pcap_check(). Only this output's thread
 * touches the FILE (or before the thread starts / after it ended): stdio's lock buys
 * nothing. */
static void pcap_started(struct output *o)
{
	FILE *f = pcap_dump_file(o->dumper);

	__fsetlocking(f, FSETLOCKING_BYCALLER);
	errno = 0;
	o->header_err = fflush(f) || ferror(f) ? (errno ? errno : EIO) : 0;
	o->wlen = 0;
	o->dirty = true;
}

/* Writes the buffered records to the file. Returns 0 or -errno (they are then lost). */
static int pcap_write_out(struct output *o)
{
	int fd = fileno(pcap_dump_file(o->dumper)), err = 0;
	size_t off = 0;
	ssize_t n;

	while (off < o->wlen) {
		n = write(fd, o->wbuf + off, o->wlen - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)n;
	}
	o->wlen = 0;
	return err;
}

static int pcap_open_file(struct output *o, uint64_t ts_ns)
{
	char name[sizeof(o->cfg.target) + 32], base[sizeof(o->cfg.target) + 16];
	FILE *f;

	if (!strcmp(o->cfg.target, "-")) {
		/* Flushed when the output goes idle, so a pipe reader is not kept waiting. */
		o->dumper = pcap_dump_fopen(o->dead, stdout);
		if (!o->dumper) {
			log_err("failed to open pcap on stdout: %s", pcap_geterr(o->dead));
			return -EIO;
		}
		pcap_started(o);
		return 0;
	}
	if (timed_name(o)) {
		time_t t = ts_ns ? (time_t)(ts_ns / 1000000000ull) : time(NULL);
		struct tm tm;

		gmtime_r(&t, &tm);
		if (!strftime(base, sizeof(base), o->cfg.target, &tm))
			snprintf(base, sizeof(base), "%s", o->cfg.target);
	} else {
		snprintf(base, sizeof(base), "%s", o->cfg.target);
	}
	/* Like tcpdump -C: file, file1, file2, ... (with -G names, only when -C is given) */
	if (o->file_index && (!timed_name(o) || o->cfg.rotate_bytes))
		snprintf(name, sizeof(name), "%s%u", base, o->file_index);
	else
		snprintf(name, sizeof(name), "%s", base);
	f = fopen(name, "w");
	if (!f) {
		int err = -errno;

		log_err("failed to open %s: %s", name, strerror(errno));
		return err;
	}
	o->dumper = pcap_dump_fopen(o->dead, f);
	if (!o->dumper) {
		log_err("failed to start pcap file %s: %s", name, pcap_geterr(o->dead));
		fclose(f);
		return -EIO;
	}
	pcap_started(o);
	o->file_bytes = 24;
	o->file_start_ns = ts_ns; /* 0: set by the first frame */
	return 0;
}

/* Frames since the last publish() count as drops; the first failure is logged. */
static void pcap_failed(struct output *o, int err)
{
	o->batch_failed = true;
	if (!atomic_exchange(&o->failed, true))
		log_err("failed to write %s: %s (counted as drops)", o->cfg.name, strerror(err));
}

/* Writes the buffered records out and checks that every write since the last check made
 * it: a full disk (or /dev/full) shows only here, and those frames must count as drops. */
static void pcap_check(struct output *o)
{
	FILE *f;
	int err;

	if (!o->dumper || !o->dirty)
		return;
	o->dirty = false;
	f = pcap_dump_file(o->dumper);
	if (o->header_err) {
		err = o->header_err;
		o->header_err = 0;
		o->wlen = 0; /* not after a header that did not make it */
		clearerr(f);
	} else {
		err = -pcap_write_out(o);
		if (!err)
			return;
	}
	pcap_failed(o, err);
}

static void pcap_close_file(struct output *o)
{
	if (!o->dumper)
		return;
	pcap_check(o);
	pcap_dump_close(o->dumper); /* also fcloses stdout for "-": we are done with it */
	o->dumper = NULL;
}

/* Returns false when the frame could not be written (no file open). */
static bool pcap_write(struct output *o, const uint8_t *frame, uint32_t caplen, uint32_t len,
		       uint64_t ts_ns)
{
	uint32_t h[4];

	if (o->dumper && o->file_start_ns == 0)
		o->file_start_ns = ts_ns;
	if (o->dumper &&
	    ((o->cfg.rotate_bytes && o->file_bytes + 16 + caplen > o->cfg.rotate_bytes &&
	      o->file_bytes > 24) ||
	     (o->cfg.rotate_ms && ts_ns > o->file_start_ns &&
	      ts_ns - o->file_start_ns >= o->cfg.rotate_ms * 1000000ull))) {
		pcap_close_file(o);
		o->file_index++;
		o->retry_ns = 0;
	}
	/* A file that failed to open (full disk, removed directory) is retried once a
	 * second of traffic; meanwhile its frames are drops, not deliveries. */
	if (!o->dumper && ts_ns >= o->retry_ns && pcap_open_file(o, ts_ns)) {
		o->retry_ns = ts_ns + 1000000000ull;
		atomic_store(&o->failed, true);
	}
	if (!o->dumper)
		return false;
	/* The savefile record, as pcap_dump() writes it: seconds, nanoseconds (the file is
	 * nanosecond-precision), captured and original length, 32 bits each in host order.
	 * Built here and copied once: pcap_dump() makes two stdio calls per frame (~100
	 * instructions beside the copy). caplen <= EGRESS_FRAME_MAX fits an empty buffer. */
	if (o->wlen + sizeof(h) + caplen > EGRESS_PCAP_BUF) {
		int err = pcap_write_out(o);

		if (err)
			pcap_failed(o, -err);
	}
	h[0] = (uint32_t)(ts_ns / 1000000000ull);
	h[1] = (uint32_t)(ts_ns % 1000000000ull);
	h[2] = caplen;
	h[3] = len;
	memcpy(o->wbuf + o->wlen, h, sizeof(h));
	memcpy(o->wbuf + o->wlen + sizeof(h), frame, caplen);
	o->wlen += sizeof(h) + caplen;
	o->file_bytes += 16 + caplen;
	o->dirty = true;
	return true;
}

static void send_group(struct output *o, int fd, struct mmsghdr *msgs, unsigned cnt)
{
	unsigned done = 0;
	int n;

	while (done < cnt) {
		n = sendmmsg(fd, msgs + done, cnt - done, 0);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (!o->send_err_logged)
				log_warn("output %s: failed to send: %s (counted as drops)",
					 o->cfg.name, strerror(errno));
			o->send_err_logged = true;
			atomic_fetch_add(&o->drops, 1);
			metric_inc(o->m_drops);
			done++; /* skip the frame that failed, keep the rest */
			continue;
		}
		o->unpublished += (uint64_t)n;
		done += (unsigned)n;
	}
}

/* One sendmmsg() per source port in the batch: a flow's frames keep their order (they
 * all use one socket); frames of different flows may leave in another order. */
static void batch_flush(struct output *o)
{
	unsigned i, k, cnt;

	if (o->n_fds == 1) {
		send_group(o, o->fds[0], o->msgs, o->n_batch);
		o->n_batch = 0;
		return;
	}
	for (k = 0; k < o->n_fds; k++) {
		cnt = 0;
		for (i = 0; i < o->n_batch; i++)
			if (o->sock_of[i] == k)
				o->group[cnt++] = o->msgs[i];
		if (cnt)
			send_group(o, o->fds[k], o->group, cnt);
	}
	o->n_batch = 0;
}

/* The socket (source port) of a frame: a hash of its inner 5-tuple, the same for both
 * directions of a connection. Frames that do not parse share socket 0. */
static unsigned flow_socket(const struct output *o, const uint8_t *frame, uint32_t len)
{
	struct pkt_info info;

	if (o->n_fds == 1 || pkt_parse(frame, len, &info) < 0)
		return 0;
	return (unsigned)(tuple_hash(&info.tuple) % o->n_fds);
}

static void batch_add(struct output *o, const uint8_t *frame, uint32_t len, unsigned sock)
{
	uint8_t *slot = o->batch + (size_t)o->n_batch * EGRESS_FRAME_MAX;
	size_t off = 0;

	if (o->cfg.type == EGRESS_VXLAN) {
		vxlan_encode(slot, o->cfg.vni);
		off = VXLAN_HDR_LEN;
	}
	memcpy(slot + off, frame, len);
	o->iov[o->n_batch] = (struct iovec){ .iov_base = slot, .iov_len = off + len };
	o->msgs[o->n_batch].msg_hdr =
		(struct msghdr){ .msg_iov = &o->iov[o->n_batch], .msg_iovlen = 1 };
	o->sock_of[o->n_batch] = (uint8_t)sock;
	if (++o->n_batch == EGRESS_BATCH)
		batch_flush(o);
}

/* Inserts an 802.1Q tag after the MAC addresses into o->scratch. */
static const uint8_t *tag_frame(struct output *o, const uint8_t *frame, uint32_t *len,
				const struct dedup_src *src)
{
	uint16_t tci = htons(egress_origin_vlan_id(src)), tpid = htons(0x8100);

	if (*len < 12 || *len + 4 > sizeof(o->scratch))
		return frame;
	memcpy(o->scratch, frame, 12);
	memcpy(o->scratch + 12, &tpid, 2);
	memcpy(o->scratch + 14, &tci, 2);
	memcpy(o->scratch + 16, frame + 12, *len - 12);
	*len += 4;
	return o->scratch;
}

static void output_one(struct output *o, const struct rec *r, const uint8_t *frame)
{
	uint32_t len = r->len, caplen;
	unsigned sock = 0;

	if (o->have_prog) {
		struct pcap_pkthdr h = { .caplen = len, .len = len };

		if (!pcap_offline_filter(&o->prog, &h, frame))
			return;
	}
	if (o->cfg.type == EGRESS_VXLAN)
		sock = flow_socket(o, frame, len);
	if (o->cfg.origin_vlan)
		frame = tag_frame(o, frame, &len, &r->src);
	caplen = o->cfg.snaplen && o->cfg.snaplen < len ? o->cfg.snaplen : len;
	/* Batch slots hold EGRESS_FRAME_MAX bytes; ingest should never pass a larger frame,
	 * but a stray one must be a counted drop, not a heap overflow. */
	if ((o->cfg.type == EGRESS_VXLAN ? VXLAN_HDR_LEN : 0) + (size_t)caplen > EGRESS_FRAME_MAX) {
		atomic_fetch_add_explicit(&o->drops, 1, memory_order_relaxed);
		metric_inc(o->m_drops);
		return;
	}
	if (o->cfg.type == EGRESS_PCAP) {
		if (pcap_write(o, frame, caplen, len, r->ts_ns)) {
			o->unpublished++;
		} else {
			atomic_fetch_add_explicit(&o->drops, 1, memory_order_relaxed);
			metric_inc(o->m_drops);
		}
	} else {
		batch_add(o, frame, caplen, sock);
	}
}

static void publish(struct output *o)
{
	/* A frame counts as delivered only once its bytes left the stdio buffer. */
	if (o->cfg.type == EGRESS_PCAP)
		pcap_check(o);
	if (!o->unpublished)
		return;
	if (o->batch_failed) {
		atomic_fetch_add_explicit(&o->drops, o->unpublished, memory_order_relaxed);
		metric_add(o->m_drops, o->unpublished);
	} else {
		atomic_fetch_add_explicit(&o->pkts, o->unpublished, memory_order_relaxed);
		metric_add(o->m_pkts, o->unpublished);
	}
	o->unpublished = 0;
	o->batch_failed = false;
}

static void output_idle(struct output *o)
{
	if (o->n_batch)
		batch_flush(o);
	publish(o); /* flushes a pcap output */
}

static void *output_thread(void *arg)
{
	struct output *o = arg;
	struct egress *eg = o->eg;
	unsigned p, got, quiet = 0;
	size_t len;
	void *data;

	for (;;) {
		bool stopping = atomic_load(&eg->stop);

		got = 0;
		for (p = 0; p < eg->cfg.n_producers; p++) {
			while (got < 4096 && (data = ring_peek(o->rings[p], &len))) {
				const struct rec *r = data;

				output_one(o, r, (const uint8_t *)(r + 1));
				ring_release(o->rings[p]);
				got++;
			}
		}
		if (got) {
			publish(o);
			quiet = 0;
			continue;
		}
		output_idle(o);
		if (stopping)
			break;
		/* Sleep a little longer the longer we are idle: cheap when quiet, quick
		 * when traffic resumes. (A flat 1 ms saved ~4000 wake-ups per 520k
		 * datagrams, but with tvn pinned to a CPU that other work shared, its
		 * receiving thread then waited 3-10x longer for that CPU and lost
		 * datagrams: docs/bench-tvn.md.) */
		usleep(quiet < 10 ? 200 : 1000);
		quiet++;
	}
	output_idle(o);
	if (o->cfg.type == EGRESS_PCAP)
		pcap_close_file(o);
	return NULL;
}

static int open_socket_output(struct output *o)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int err;

	if (o->cfg.type == EGRESS_VXLAN) {
		err = args_resolve(o->cfg.target, VXLAN_PORT, &ss, &sl);
		if (err) {
			log_err("failed to resolve %s: %s", o->cfg.name,
				err == -EHOSTUNREACH ? "name does not resolve" : strerror(-err));
			return err;
		}
		/* connect() binds each socket to its own ephemeral port. */
		for (o->n_fds = 0; o->n_fds < EGRESS_VXLAN_PORTS; o->n_fds++) {
			int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

			if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) < 0) {
				err = -errno;
				log_err("failed to connect %s: %s", o->cfg.name, strerror(errno));
				if (fd >= 0)
					close(fd);
				return err;
			}
			o->fds[o->n_fds] = fd;
		}
	} else {
		struct sockaddr_ll sll = { .sll_family = AF_PACKET };

		sll.sll_ifindex = (int)if_nametoindex(o->cfg.target);
		if (!sll.sll_ifindex) {
			err = -errno;
			log_err("failed to find interface %s: %s", o->cfg.target, strerror(errno));
			return err;
		}
		/* Protocol 0: a send-only socket, nothing is queued for us to read. */
		o->fds[0] = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
		if (o->fds[0] < 0 || bind(o->fds[0], (struct sockaddr *)&sll, sizeof(sll)) < 0) {
			err = -errno;
			log_err("failed to open %s: %s", o->cfg.name, strerror(errno));
			return err;
		}
		o->n_fds = 1;
	}
	o->batch = malloc((size_t)EGRESS_BATCH * EGRESS_FRAME_MAX);
	return o->batch ? 0 : -ENOMEM;
}

static int open_output(struct egress *eg, struct output *o, const struct egress_out_cfg *cfg)
{
	char label[300], esc[260];
	unsigned p;
	int err;

	o->cfg = *cfg;
	o->eg = eg;
	for (p = 0; p < EGRESS_VXLAN_PORTS; p++)
		o->fds[p] = -1;
	o->rings = calloc(eg->cfg.n_producers, sizeof(*o->rings));
	if (!o->rings)
		return -ENOMEM;
	for (p = 0; p < eg->cfg.n_producers; p++) {
		o->rings[p] = ring_new(cfg->queue_bytes ? cfg->queue_bytes : eg->cfg.ring_bytes);
		if (!o->rings[p])
			return -ENOMEM;
	}
	o->dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, EGRESS_SNAPLEN,
						       PCAP_TSTAMP_PRECISION_NANO);
	if (!o->dead)
		return -ENOMEM;
	if (cfg->type == EGRESS_PCAP) {
		o->wbuf = malloc(EGRESS_PCAP_BUF);
		if (!o->wbuf)
			return -ENOMEM;
	}
	if (cfg->filter[0]) {
		if (pcap_compile(o->dead, &o->prog, cfg->filter, 1, PCAP_NETMASK_UNKNOWN) < 0) {
			log_err("failed to compile filter of %s: %s", cfg->name,
				pcap_geterr(o->dead));
			return -EINVAL;
		}
		o->have_prog = true;
	}
	if (cfg->type == EGRESS_PCAP && timed_name(o))
		err = 0; /* named after its first frame's time: opened then */
	else if (cfg->type == EGRESS_PCAP)
		err = pcap_open_file(o, 0);
	else
		err = open_socket_output(o);
	if (err)
		return err;
	snprintf(label, sizeof(label), "out=\"%s\"", metrics_escape(cfg->name, esc, sizeof(esc)));
	if (eg->cfg.metrics) {
		o->m_pkts = metrics_counter(eg->cfg.metrics, "tvn_egress_packets_total",
					    "Frames delivered by an output", label);
		o->m_drops = metrics_counter(eg->cfg.metrics, "tvn_egress_dropped_total",
					     "Frames an output dropped (queue full or send error)",
					     label);
	}
	return 0;
}

static void close_output(struct output *o, unsigned n_producers)
{
	unsigned p;

	if (o->started)
		return; /* stuck (a pipe nobody reads): its memory stays allocated */
	if (o->cfg.type == EGRESS_PCAP)
		pcap_close_file(o);
	if (o->have_prog)
		pcap_freecode(&o->prog);
	if (o->dead)
		pcap_close(o->dead);
	for (p = 0; p < EGRESS_VXLAN_PORTS; p++)
		if (o->fds[p] >= 0)
			close(o->fds[p]);
	free(o->batch);
	free(o->wbuf); /* after pcap_close_file(): the last file's records are out */
	for (p = 0; o->rings && p < n_producers; p++)
		ring_free(o->rings[p]);
	free(o->rings);
}

struct egress *egress_new(const struct egress_cfg *cfg)
{
	struct egress *eg;
	unsigned p;
	size_t i;
	int err = 0;

	if (!cfg->n_producers) {
		errno = EINVAL;
		return NULL;
	}
	eg = calloc(1, sizeof(*eg));
	if (!eg)
		return NULL;
	eg->cfg = *cfg;
	eg->outs = calloc(cfg->n_outs ? cfg->n_outs : 1, sizeof(*eg->outs));
	if (!eg->outs) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < cfg->n_outs; i++) {
		err = open_output(eg, &eg->outs[i], &cfg->outs[i]);
		eg->n_outs = i + 1;
		if (err)
			goto cleanup;
	}
	for (i = 0; i < EGRESS_MAX_CAPTURES; i++) {
		struct capture *c = &eg->caps[i];

		c->rings = calloc(cfg->n_producers, sizeof(*c->rings));
		if (!c->rings) {
			err = -ENOMEM;
			goto cleanup;
		}
		for (p = 0; p < cfg->n_producers; p++) {
			/* Readers are humans with curl: 4 MiB per producer is plenty. */
			c->rings[p] = ring_new(4u << 20);
			if (!c->rings[p]) {
				err = -ENOMEM;
				goto cleanup;
			}
		}
	}
	if (cfg->metrics) {
		struct metric *m;

		metrics_gauge_fn(cfg->metrics, "tvn_capture_clients", "Attached /capture readers",
				 NULL, capture_clients, eg);
		m = metrics_counter(cfg->metrics, "tvn_egress_dropped_total",
				    "Frames an output dropped (queue full or send error)",
				    "out=\"capture\"");

		for (i = 0; i < EGRESS_MAX_CAPTURES; i++)
			eg->caps[i].m_drops = m;
	}
	for (i = 0; i < eg->n_outs; i++) {
		err = -pthread_create(&eg->outs[i].thread, NULL, output_thread, &eg->outs[i]);
		if (err) {
			log_err("failed to start output thread: %s", strerror(-err));
			goto cleanup;
		}
		eg->outs[i].started = true;
		log_info("output %s ready", eg->outs[i].cfg.name);
	}
	return eg;
cleanup:
	egress_free(eg);
	errno = -err;
	return NULL;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int egress_drain(struct egress *eg, unsigned timeout_ms)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	unsigned p;
	bool busy = true;
	size_t i;

	while (busy) {
		if (timeout_ms && mono_ms() >= deadline)
			return -ETIMEDOUT;
		busy = false;
		for (i = 0; i < eg->n_outs; i++)
			for (p = 0; p < eg->cfg.n_producers; p++)
				if (eg->outs[i].started && !ring_empty(eg->outs[i].rings[p]))
					busy = true;
		if (busy)
			usleep(1000);
	}
	return 0;
}

int egress_stop(struct egress *eg, unsigned timeout_ms)
{
	struct timespec deadline;
	int err = 0;
	size_t i;

	atomic_store(&eg->stop, true);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	for (i = 0; i < eg->n_outs; i++) {
		struct output *o = &eg->outs[i];

		if (!o->started)
			continue;
		if (o->stuck_logged) { /* abandoned by an earlier call */
			err = -EBUSY;
			continue;
		}
		if (pthread_timedjoin_np(o->thread, NULL, &deadline) == 0) {
			o->started = false;
			continue;
		}
		if (!o->stuck_logged)
			log_warn("output %s does not move (a reader that stopped reading?); "
				 "abandoning what is queued for it",
				 o->cfg.name);
		o->stuck_logged = true;
		err = -EBUSY;
	}
	return err;
}

void egress_free(struct egress *eg)
{
	unsigned p;
	size_t i;

	if (!eg)
		return;
	/* A stuck thread still uses its output, eg->stop, eg->cfg and the metrics once its
	 * blocked write returns: leak them all on purpose; the process is about to _exit(). */
	if (egress_stop(eg, 3000) == -EBUSY)
		return;
	for (i = 0; i < eg->n_outs; i++)
		close_output(&eg->outs[i], eg->cfg.n_producers);
	for (i = 0; i < EGRESS_MAX_CAPTURES; i++) {
		for (p = 0; eg->caps[i].rings && p < eg->cfg.n_producers; p++)
			ring_free(eg->caps[i].rings[p]);
		free(eg->caps[i].rings);
	}
	free(eg->outs);
	free(eg);
}

static bool push_one(struct ring *r, const uint8_t *frame, size_t len, uint64_t ts_ns,
		     const struct dedup_src *src, bool block, _Atomic bool *stop)
{
	struct rec *rec;

	while (!(rec = ring_reserve(r, sizeof(*rec) + len))) {
		if (!block || atomic_load(stop) || len + sizeof(*rec) > ring_max_record(r))
			return false;
		usleep(50);
	}
	rec->ts_ns = ts_ns;
	rec->src = *src;
	rec->len = (uint32_t)len;
	memcpy(rec + 1, frame, len);
	ring_commit(r);
	return true;
}

void egress_push(struct egress *eg, unsigned producer, const uint8_t *frame, size_t len,
		 uint64_t ts_ns, const struct dedup_src *src)
{
	size_t i;

	for (i = 0; i < eg->n_outs; i++) {
		struct output *o = &eg->outs[i];

		if (!push_one(o->rings[producer], frame, len, ts_ns, src, eg->cfg.block,
			      &eg->stop)) {
			atomic_fetch_add_explicit(&o->drops, 1, memory_order_relaxed);
			metric_inc(o->m_drops);
		}
	}
	if (!atomic_load_explicit(&eg->n_captures, memory_order_relaxed))
		return;
	for (i = 0; i < EGRESS_MAX_CAPTURES; i++) {
		struct capture *c = &eg->caps[i];

		if (atomic_load_explicit(&c->state, memory_order_acquire) != 1)
			continue;
		if (!push_one(c->rings[producer], frame, len, ts_ns, src, false, &eg->stop)) {
			atomic_fetch_add_explicit(&c->drops, 1, memory_order_relaxed);
			metric_inc(c->m_drops);
		}
	}
}

void egress_get_stats(const struct egress *eg, size_t out, struct egress_out_stats *st)
{
	st->packets = atomic_load(&eg->outs[out].pkts);
	st->dropped = atomic_load(&eg->outs[out].drops);
	st->failed = atomic_load(&eg->outs[out].failed);
}

int egress_capture_attach(struct egress *eg)
{
	unsigned p;
	int i, expect;

	for (i = 0; i < EGRESS_MAX_CAPTURES; i++) {
		struct capture *c = &eg->caps[i];

		expect = 0;
		/* 2 = being prepared: producers skip it, the ring is ours to reset. */
		if (!atomic_compare_exchange_strong(&c->state, &expect, 2))
			continue;
		for (p = 0; p < eg->cfg.n_producers; p++)
			ring_discard(c->rings[p]);
		atomic_store(&c->drops, 0);
		c->cur = 0;
		atomic_store_explicit(&c->state, 1, memory_order_release);
		atomic_fetch_add(&eg->n_captures, 1);
		return i;
	}
	return -EBUSY;
}

int egress_capture_next(struct egress *eg, int slot, struct egress_frame *f)
{
	struct capture *c = &eg->caps[slot];
	unsigned k, p;
	size_t len;
	void *data;

	/* Round-robin over producers so one busy shard does not starve the others. */
	for (k = 0; k < eg->cfg.n_producers; k++) {
		p = (c->cur + k) % eg->cfg.n_producers;
		data = ring_peek(c->rings[p], &len);
		if (data) {
			const struct rec *r = data;

			f->data = (const uint8_t *)(r + 1);
			f->len = r->len;
			f->ts_ns = r->ts_ns;
			f->src = r->src;
			c->cur = p;
			return 1;
		}
	}
	return 0;
}

void egress_capture_release(struct egress *eg, int slot)
{
	struct capture *c = &eg->caps[slot];

	ring_release(c->rings[c->cur]);
	c->cur = (c->cur + 1) % eg->cfg.n_producers;
}

void egress_capture_detach(struct egress *eg, int slot)
{
	int one = 1;

	if (slot >= 0 && slot < EGRESS_MAX_CAPTURES &&
	    atomic_compare_exchange_strong(&eg->caps[slot].state, &one, 0))
		atomic_fetch_sub(&eg->n_captures, 1);
}

uint64_t egress_capture_drops(const struct egress *eg, int slot)
{
	return atomic_load(&eg->caps[slot].drops);
}
