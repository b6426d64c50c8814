/* tools/ecv-replay.c - sends a capture to a tvn as real VxLAN datagrams.
 *
 * Reads a pcap of VxLAN datagrams (UDP to port 4789: the UDP payload is sent as is) or of
 * inner Ethernet frames (each is wrapped in a VxLAN header with --vni), and sends them
 * with sendmmsg from --from (e.g. 127.0.0.2, so one host can play several agents) to
 * --to, at --rate datagrams per second or at full speed. --garbage N mixes N malformed
 * datagrams evenly into the stream, for robustness tests. --gso sends runs of equal-sized
 * datagrams as one UDP GSO send (UDP_SEGMENT), as ecv-agent does, so a tvn with UDP_GRO
 * receives them coalesced. Below --rate 64000 every datagram is sent alone (paced one by
 * one), so --gso only groups at higher rates or at full speed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "log.h"
#include "pkt.h"
#include "vxlan.h"

#define BATCH 64
#define DGRAM_MAX 65536
/* Largest GSO run: the whole run must fit one IPv4/IPv6 UDP datagram before the kernel
 * segments it. */
#define GSO_MAX_BYTES 65000
#define GSO_MAX_SEGS 64

struct replay {
	int fd;
	uint64_t rate, vni, garbage, loops;
	uint64_t sent, garbage_sent, bytes, total_hint;
	uint64_t start_ns;
	uint64_t rng;
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	uint8_t *bufs;
	unsigned n;
	bool gso;
	struct mmsghdr gmsgs[BATCH]; /* --gso: one message per run of equal sizes */
	char gctrl[BATCH][CMSG_SPACE(sizeof(uint16_t))];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(struct replay *r)
{
	r->rng ^= r->rng >> 12;
	r->rng ^= r->rng << 25;
	r->rng ^= r->rng >> 27;
	return r->rng * 2685821657736338717ull;
}

/* Groups the queued datagrams into GSO runs: equal sizes, the last one of a run may be
 * shorter (what UDP_SEGMENT produces). Returns the number of messages in r->gmsgs. */
static unsigned gso_group(struct replay *r)
{
	unsigned j = 0, m = 0, k;
	size_t seg, total;

	while (j < r->n) {
		seg = r->iov[j].iov_len;
		total = seg;
		k = 1;
		while (j + k < r->n && k < GSO_MAX_SEGS && r->iov[j + k].iov_len <= seg &&
		       total + r->iov[j + k].iov_len <= GSO_MAX_BYTES) {
			total += r->iov[j + k].iov_len;
			k++;
			if (r->iov[j + k - 1].iov_len < seg)
				break;
		}
		r->gmsgs[m].msg_hdr = (struct msghdr){ .msg_iov = &r->iov[j], .msg_iovlen = k };
		if (k > 1) {
			struct msghdr *mh = &r->gmsgs[m].msg_hdr;
			struct cmsghdr *c;
			uint16_t gso = (uint16_t)seg;

			mh->msg_control = r->gctrl[m];
			mh->msg_controllen = sizeof(r->gctrl[m]);
			c = CMSG_FIRSTHDR(mh);
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(gso));
			memcpy(CMSG_DATA(c), &gso, sizeof(gso));
		}
		j += k;
		m++;
	}
	return m;
}

static int flush(struct replay *r)
{
	struct mmsghdr *msgs = r->msgs;
	unsigned done = 0, total = r->n;
	int n;

	if (r->gso) {
		total = gso_group(r);
		msgs = r->gmsgs;
	}
	while (done < total) {
		n = sendmmsg(r->fd, msgs + done, total - done, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* ECONNREFUSED: nobody listens (yet); the datagram is gone, go on. */
			if (errno == ECONNREFUSED) {
				done++;
				continue;
			}
			log_err("failed to send: %s", strerror(errno));
			return -errno;
		}
		done += (unsigned)n;
	}
	r->n = 0;
	return 0;
}

static void pace(struct replay *r)
{
	uint64_t due, now;

	if (!r->rate)
		return;
	/* Datagram k is due at start + k / rate. */
	due = r->start_ns + (r->sent + r->garbage_sent) * 1000000000ull / r->rate;
	now = now_ns();
	if (due > now) {
		struct timespec ts = { .tv_sec = (time_t)((due - now) / 1000000000ull),
				       .tv_nsec = (long)((due - now) % 1000000000ull) };

		nanosleep(&ts, NULL);
	}
}

static int queue(struct replay *r, const uint8_t *hdr, size_t hlen, const uint8_t *data, size_t len)
{
	uint8_t *buf = r->bufs + (size_t)r->n * DGRAM_MAX;
	unsigned limit = r->rate && r->rate < 64000 ? 1 : BATCH;

	if (hlen + len > DGRAM_MAX)
		return 0;
	if (hlen)
		memcpy(buf, hdr, hlen);
	memcpy(buf + hlen, data, len);
	r->iov[r->n] = (struct iovec){ .iov_base = buf, .iov_len = hlen + len };
	r->msgs[r->n].msg_hdr = (struct msghdr){ .msg_iov = &r->iov[r->n], .msg_iovlen = 1 };
	r->n++;
	r->bytes += hlen + len;
	if (r->n >= limit) {
		pace(r);
		return flush(r);
	}
	return 0;
}

/* Malformed datagrams of several kinds, each dropped by tvn for a different reason. */
static int queue_garbage(struct replay *r)
{
	uint8_t b[128];
	size_t len, i;
	const char *bad_json = "{\"v\":1,\"type\":\"flow\"";

	for (i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)rnd(r);
	switch (r->garbage_sent % 6) {
	case 0: /* shorter than a VxLAN header */
		len = 3;
		break;
	case 1: /* I flag clear */
		b[0] = 0x00;
		len = 80;
		break;
	case 2: /* inner Ethernet cut off */
		vxlan_encode(b, (uint32_t)r->vni);
		len = VXLAN_HDR_LEN + 10;
		break;
	case 3: /* IPv4 with IHL beyond the packet */
		vxlan_encode(b, (uint32_t)r->vni);
		b[20] = 0x08, b[21] = 0x00, b[22] = 0x4f;
		len = VXLAN_HDR_LEN + 14 + 24;
		break;
	case 4: /* unknown EtherType */
		vxlan_encode(b, (uint32_t)r->vni);
		b[20] = 0x12, b[21] = 0x34;
		len = VXLAN_HDR_LEN + 64;
		break;
	default: /* metadata frame with broken JSON */
		vxlan_encode(b, (uint32_t)r->vni);
		b[20] = 0x88, b[21] = 0xb5;
		memcpy(b + 22, bad_json, strlen(bad_json));
		len = 22 + strlen(bad_json);
		break;
	}
	r->garbage_sent++;
	return queue(r, NULL, 0, b, len);
}

static int replay_file(struct replay *r, const char *path)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *d;
	struct pkt_info info;
	uint8_t hdr[VXLAN_HDR_LEN];
	pcap_t *p;
	int ret, err = 0;

	p = pcap_open_offline(path, errbuf);
	if (!p) {
		log_err("failed to open %s: %s", path, errbuf);
		return -ENOENT;
	}
	vxlan_encode(hdr, (uint32_t)r->vni);
	while (!err && (ret = pcap_next_ex(p, &h, &d)) == 1) {
		if (pkt_parse(d, h->caplen, &info) == 0 && info.tuple.proto == 17 &&
		    info.tuple.dport == VXLAN_PORT)
			err = queue(r, NULL, 0, info.payload, info.payload_len);
		else
			err = queue(r, hdr, sizeof(hdr), d, h->caplen);
		r->sent++;
		/* Spread garbage evenly over the first loop's packets. */
		while (!err && r->garbage_sent < r->garbage && r->total_hint &&
		       r->garbage_sent * r->total_hint < r->sent * r->garbage)
			err = queue_garbage(r);
	}
	pcap_close(p);
	return err;
}

static uint64_t count_packets(const char *path)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *d;
	uint64_t n = 0;
	pcap_t *p = pcap_open_offline(path, errbuf);

	if (!p)
		return 0;
	while (pcap_next_ex(p, &h, &d) == 1)
		n++;
	pcap_close(p);
	return n;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: ecv-replay --to HOST[:PORT] [OPTIONS] FILE.pcap...\n"
		   "  --to HOST[:PORT]   tvn to send to (default port 4789)\n"
		   "  --from ADDR        local source address (e.g. 127.0.0.2)\n"
		   "  --vni N            VNI for captures of inner frames (default 1)\n"
		   "  --rate PPS         datagrams per second (default 0 = full speed)\n"
		   "  --loop N           send the files N times (default 1)\n"
		   "  --garbage N        mix N malformed datagrams into the stream\n"
		   "  --gso              send runs of equal-sized datagrams as one UDP GSO send\n"
		   "  --quiet            no summary line\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "to", required_argument, NULL, 't' },
		{ "from", required_argument, NULL, 'f' },
		{ "vni", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "loop", required_argument, NULL, 'l' },
		{ "garbage", required_argument, NULL, 'g' },
		{ "gso", no_argument, NULL, 'G' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct replay r = { .fd = -1, .vni = 1, .loops = 1, .rng = 88172645463325252ull };
	const char *to = NULL, *from = NULL;
	struct sockaddr_storage dst, src;
	socklen_t dl, sl;
	uint64_t loop, secs_ns;
	bool quiet = false;
	int opt, i, err = 0, bufsz = 4 << 20;

	log_set_ident("ecv-replay");
	while ((opt = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		int bad = 0;

		switch (opt) {
		case 't':
			to = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 'n':
			bad = args_parse_u64(optarg, 0, VXLAN_VNI_MAX, &r.vni);
			break;
		case 'r':
			bad = args_parse_u64(optarg, 0, 100000000, &r.rate);
			break;
		case 'l':
			bad = args_parse_u64(optarg, 1, 1000000, &r.loops);
			break;
		case 'g':
			bad = args_parse_u64(optarg, 0, 100000000, &r.garbage);
			break;
		case 'G':
			r.gso = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
		default:
			return cli_help_or_usage_error(opt, usage);
		}
		if (bad)
			return cli_invalid_value("ecv-replay", optarg, usage);
	}
	if (!to || optind >= argc)
		return cli_usage_error(usage);
	if (args_resolve(to, VXLAN_PORT, &dst, &dl)) {
		fprintf(stderr, "ecv-replay: cannot resolve '%s'\n", to);
		return CLI_EXIT_USAGE;
	}
	r.fd = socket(dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (r.fd < 0) {
		log_err("failed to create socket: %s", strerror(errno));
		return 1;
	}
	setsockopt(r.fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	if (from) {
		if (args_resolve(from, 0, &src, &sl) || bind(r.fd, (struct sockaddr *)&src, sl)) {
			log_err("failed to bind %s: %s", from, strerror(errno));
			err = -EINVAL;
			goto cleanup;
		}
	}
	if (connect(r.fd, (struct sockaddr *)&dst, dl) < 0) {
		log_err("failed to connect %s: %s", to, strerror(errno));
		err = -errno;
		goto cleanup;
	}
	r.bufs = malloc((size_t)BATCH * DGRAM_MAX);
	if (!r.bufs) {
		err = -ENOMEM;
		goto cleanup;
	}
	if (r.garbage)
		for (i = optind; i < argc; i++)
			r.total_hint += count_packets(argv[i]);
	r.start_ns = now_ns();
	for (loop = 0; loop < r.loops && !err; loop++)
		for (i = optind; i < argc && !err; i++)
			err = replay_file(&r, argv[i]);
	while (!err && r.garbage_sent < r.garbage)
		err = queue_garbage(&r);
	if (!err) {
		pace(&r);
		err = flush(&r);
	}
	secs_ns = now_ns() - r.start_ns;
	if (!quiet)
		fprintf(stderr,
			"ecv-replay: sent %llu datagrams + %llu garbage, %llu bytes in %.3f s "
			"(%.0f datagrams/s)\n",
			(unsigned long long)r.sent, (unsigned long long)r.garbage_sent,
			(unsigned long long)r.bytes, secs_ns / 1e9,
			(r.sent + r.garbage_sent) / (secs_ns / 1e9 + 1e-9));
cleanup:
	close(r.fd);
	free(r.bufs);
	return err ? 1 : 0;
}
