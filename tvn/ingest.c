/* tvn/ingest.c - UDP sockets and the validation every datagram passes. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/filter.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "afpacket.h"
#include "ingest.h"
#include "log.h"
#include "tuple.h"
#include "vxlan.h"

#define INGEST_MAX_SOCKS 16
#define INGEST_BATCH 64
#define INGEST_BUF 65536 /* the largest UDP payload or GRO buffer fits: nothing is cut short */
/* Room for the UDP_GRO segment size. */
#define INGEST_CTRL CMSG_SPACE(sizeof(int))
/* Receive hold: while datagrams keep coming, wait this long between drains instead of
 * sleeping in poll(), which wakes the thread for every buffer that arrives (a context
 * switch each: ~8% of tvn's CPU at 300k datagrams/s). The wait adapts down (to
 * INGEST_HOLD_MIN_NS) so that what accumulates in one stays well inside the socket
 * buffer; at most this much latency is added. 0.1 ms halves the receiving thread's
 * wake-ups at 300k datagrams/s; 0.5 ms saved a little more, but a receiver that sleeps
 * longer comes back later when it shares its CPU with other work (docs/bench-tvn.md). */
#define INGEST_HOLD_MAX_NS 100000
#define INGEST_HOLD_MIN_NS 20000
/* Rough kernel charge of one queued buffer beyond its bytes (sk_buff, truesize). */
#define INGEST_SKB_OVERHEAD 1024

const char *ingest_reason_name(int reason)
{
	if (reason < 0 || reason >= INGEST_N_REASONS)
		return "unknown";
	if (reason < INGEST_R_PKT)
		return vxlan_strerror(-(reason - INGEST_R_VXLAN + 1));
	if (reason < INGEST_R_SOURCE)
		return pkt_strerror(-(reason - INGEST_R_PKT + 1));
	switch (reason) {
	case INGEST_R_SOURCE:
		return "source";
	case INGEST_R_VNI:
		return "vni";
	case INGEST_R_META:
		return "meta";
	case INGEST_R_TRUNCATED:
		return "truncated";
	default:
		return "outer";
	}
}

static bool source_allowed(const struct ingest_cfg *cfg, const uint8_t addr[16])
{
	size_t i;

	if (!cfg->n_allow)
		return true;
	for (i = 0; i < cfg->n_allow; i++)
		if (args_cidr_match(&cfg->allow[i], addr))
			return true;
	return false;
}

static bool vni_allowed(const struct ingest_cfg *cfg, uint32_t vni)
{
	size_t i;

	if (!cfg->n_vnis)
		return true;
	for (i = 0; i < cfg->n_vnis; i++)
		if (cfg->vnis[i] == vni)
			return true;
	return false;
}

int ingest_frame(const uint8_t *frame, size_t len, const struct dedup_src *src,
		 struct ingest_pkt *out)
{
	int ret;

	out->frame = frame;
	out->len = len;
	out->src = *src;
	ret = pkt_parse(frame, len, &out->info);
	if (ret < 0)
		return -1 - (INGEST_R_PKT + (-ret) - 1);
	if (ret == PKT_META) {
		if (meta_decode((const char *)out->info.payload, out->info.payload_len, &out->meta,
				NULL) < 0)
			return -1 - INGEST_R_META;
		out->kind = INGEST_META;
		return INGEST_META;
	}
	out->kind = INGEST_FRAME;
	return INGEST_FRAME;
}

int ingest_datagram(const struct ingest_cfg *cfg, const uint8_t *dgram, size_t len,
		    const uint8_t src_addr[16], struct ingest_pkt *out)
{
	const uint8_t *inner;
	size_t inner_len;
	uint32_t vni;
	int ret;

	/* The cheapest test first: a source we do not trust is not parsed at all. */
	if (!source_allowed(cfg, src_addr))
		return -1 - INGEST_R_SOURCE;
	ret = vxlan_decode(dgram, len, cfg->strict_vxlan, &vni, &inner, &inner_len);
	if (ret < 0)
		return -1 - (INGEST_R_VXLAN + (-ret) - 1);
	if (!vni_allowed(cfg, vni))
		return -1 - INGEST_R_VNI;
	memcpy(out->src.addr, src_addr, 16);
	out->src.vni = vni;
	return ingest_frame(inner, inner_len, &out->src, out);
}

/* --- sockets --- */

struct ingest {
	int fds[INGEST_MAX_SOCKS];
	size_t n;
	unsigned port;
	size_t rcvbuf;		 /* smallest socket buffer (the kernel's accounting), bytes */
	uint64_t hold_ns;	 /* current receive hold; adapted per drain */
	bool flowing;		 /* the last drain found datagrams: hold instead of poll() */
	bool backlog;		 /* the last drain stopped with datagrams still queued */
	size_t charge;		 /* estimated socket-buffer bytes the current drain took */
	uint64_t buffers;	 /* received buffers: datagrams, or GRO runs of them */
	struct afp *afp;	 /* --rx ring; NULL: recvmmsg() on the sockets */
	ingest_dgram_fn ring_fn; /* the consumer, during afp_poll() */
	void *ring_ctx;
	int ring_count; /* datagrams handed on during afp_poll() */
	struct mmsghdr msgs[INGEST_BATCH];
	struct iovec iov[INGEST_BATCH];
	struct sockaddr_storage from[INGEST_BATCH];
	char ctrl[INGEST_BATCH][INGEST_CTRL];
	uint8_t *bufs; /* INGEST_BATCH * INGEST_BUF */
};

static bool sockaddr_is_multicast(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return IN_MULTICAST(ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr));
	return IN6_IS_ADDR_MULTICAST(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static int join_group(int fd, const struct sockaddr_storage *ss, const char *iface)
{
	unsigned ifindex = if_nametoindex(iface);

	if (!ifindex)
		return -errno;
	if (ss->ss_family == AF_INET) {
		struct ip_mreqn mr = { .imr_ifindex = (int)ifindex };

		mr.imr_multiaddr = ((const struct sockaddr_in *)ss)->sin_addr;
		if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
			return -errno;
	} else {
		struct ipv6_mreq mr = { .ipv6mr_interface = ifindex };

		mr.ipv6mr_multiaddr = ((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof(mr)) < 0)
			return -errno;
	}
	return 0;
}

static int open_one(const char *spec, const struct ingest_sock_cfg *cfg, int *out_fd,
		    unsigned *port, bool *mcast)
{
	struct sockaddr_storage ss, bound;
	socklen_t sl, bl = sizeof(bound);
	uint8_t baddr[16];
	uint16_t bport;
	int fd = -1, one = 1, err;

	err = args_resolve(spec, VXLAN_PORT, &ss, &sl);
	if (err) {
		log_err("failed to parse listen address %s: %s", spec, strerror(-err));
		return err;
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		log_err("failed to create socket for %s: %s", spec, strerror(errno));
		return err;
	}
	/* Several monitors on one host may join the same group (overlay mirroring). */
	if (sockaddr_is_multicast(&ss)) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	}
	if (cfg->rcvbuf > 0 && !cfg->ring &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &cfg->rcvbuf, sizeof(cfg->rcvbuf)) < 0) {
		int got = 0;
		socklen_t gl = sizeof(got);

		/* Without CAP_NET_ADMIN the kernel caps it at net.core.rmem_max, silently;
		 * the buffer is what absorbs bursts and pauses, so say so. (The kernel
		 * reports twice the size it was given.) */
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cfg->rcvbuf, sizeof(cfg->rcvbuf));
		if (!getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &gl) && got / 2 < cfg->rcvbuf)
			log_warn("receive buffer of %s is %d bytes, not the %d asked (--rcvbuf): "
				 "raise net.core.rmem_max or grant CAP_NET_ADMIN, or bursts are "
				 "dropped (tvn_rx_dropped_buffers_total)",
				 spec, got / 2, cfg->rcvbuf);
	}
	/* UDP GRO (Linux >= 5.0): a GSO run from an agent (or datagrams the NIC coalesced)
	 * arrives as one buffer with its segment size in a control message, so the kernel's
	 * per-datagram receive cost is paid once per run. Older kernels refuse the option
	 * and deliver datagrams one by one, which drain_socket() handles the same way.
	 * With --rx ring it also makes the NIC's GRO coalesce this port's datagrams, which
	 * a ring before Linux 6.2 would drop: off there. */
	if ((!cfg->ring || afp_carries_gso()) &&
	    setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) < 0)
		log_debug("UDP_GRO not available on %s: %s", spec, strerror(errno));
	if (cfg->ring) {
		/* The ring takes the datagrams; this socket only keeps the port bound (no
		 * ICMP port unreachable to the agents) and the multicast membership, and
		 * drops everything at once. With UDP_GRO on (above) it drops a GSO run as
		 * one buffer. The kernel counts those drops as UDP InErrors. */
		struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
		struct sock_fprog fp = { .len = 1, .filter = &drop };

		if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) < 0) {
			err = -errno;
			log_err("failed to attach the drop filter to %s: %s", spec,
				strerror(errno));
			goto cleanup;
		}
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
		err = -errno;
		log_err("failed to bind %s: %s", spec, strerror(errno));
		goto cleanup;
	}
	*mcast = sockaddr_is_multicast(&ss);
	if (*mcast) {
		if (!cfg->join_iface) {
			log_warn("listening on multicast group %s without --join: no membership",
				 spec);
		} else {
			err = join_group(fd, &ss, cfg->join_iface);
			if (err) {
				log_err("failed to join %s on %s: %s", spec, cfg->join_iface,
					strerror(-err));
				goto cleanup;
			}
			log_info("joined multicast group %s on %s", spec, cfg->join_iface);
		}
	}
	if (getsockname(fd, (struct sockaddr *)&bound, &bl) == 0 &&
	    args_from_sockaddr((struct sockaddr *)&bound, baddr, &bport) == 0)
		*port = bport;
	*out_fd = fd;
	return 0;
cleanup:
	close(fd);
	return err;
}

/* --- the ring (--rx ring) --- */

static bool sockaddr_is_any(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* Bytes of an address, and their count, for comparing with an interface's. */
static const uint8_t *addr_bytes(const struct sockaddr *sa, size_t *n)
{
	if (sa->sa_family == AF_INET) {
		*n = 4;
		return (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	}
	*n = 16;
	return (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
}

/* How well interface address ifa matches a: 2 the same address, 1 in its subnet. */
static int addr_match(const struct ifaddrs *ifa, const struct sockaddr_storage *a)
{
	const uint8_t *x, *y, *m;
	size_t n, i;
	bool same = true, net = true;

	if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != a->ss_family || !ifa->ifa_netmask)
		return 0;
	x = addr_bytes((const struct sockaddr *)a, &n);
	y = addr_bytes(ifa->ifa_addr, &n);
	m = addr_bytes(ifa->ifa_netmask, &n);
	for (i = 0; i < n; i++) {
		same &= x[i] == y[i];
		net &= (x[i] & m[i]) == (y[i] & m[i]);
	}
	return same ? 2 : net ? 1 : 0;
}

/* The interface that receives datagrams for address a: the one holding it, else the
 * one whose subnet holds it (127.0.0.2 is lo's). */
static int iface_of(const struct sockaddr_storage *a, char *name, size_t cap)
{
	struct ifaddrs *all, *ifa;
	int best = 0, m;

	if (getifaddrs(&all) < 0)
		return -errno;
	for (ifa = all; ifa; ifa = ifa->ifa_next) {
		m = addr_match(ifa, a);
		if (m > best) {
			best = m;
			snprintf(name, cap, "%s", ifa->ifa_name);
		}
	}
	freeifaddrs(all);
	return best ? 0 : -ENODEV;
}

/* Builds the capture filter (UDP to every bound address and port; the port alone for a
 * wildcard address) and finds the interface to capture on. */
static int ring_target(const struct ingest *in, const struct ingest_sock_cfg *cfg, char *filter,
		       size_t fcap, char *iface, size_t icap)
{
	char host[TUPLE_ADDR_STRLEN], name[IF_NAMESIZE];
	struct sockaddr_storage ss;
	uint8_t addr[16];
	socklen_t sl;
	size_t i, off = 0;
	uint16_t port;
	int n;

	if (cfg->ring_iface)
		snprintf(iface, icap, "%s", cfg->ring_iface);
	else
		iface[0] = '\0';
	for (i = 0; i < in->n; i++) {
		sl = sizeof(ss);
		if (getsockname(in->fds[i], (struct sockaddr *)&ss, &sl) < 0)
			return -errno;
		if (args_from_sockaddr((struct sockaddr *)&ss, addr, &port))
			return -EAFNOSUPPORT;
		tuple_addr_str(addr, host);
		if (sockaddr_is_any(&ss))
			n = snprintf(filter + off, fcap - off, "%s(udp dst port %u)",
				     i ? " or " : "", port);
		else
			n = snprintf(filter + off, fcap - off,
				     "%s(udp dst port %u and dst host %s)", i ? " or " : "", port,
				     host);
		if (n < 0 || (size_t)n >= fcap - off)
			return -ENAMETOOLONG;
		off += (size_t)n;
		if (cfg->ring_iface)
			continue;
		if (sockaddr_is_any(&ss) || sockaddr_is_multicast(&ss)) {
			if (sockaddr_is_multicast(&ss) && cfg->join_iface) {
				snprintf(name, sizeof(name), "%s", cfg->join_iface);
			} else {
				log_err("--rx ring: %s is a %s address: say which interface "
					"to capture on with --rx-iface",
					cfg->listen[i],
					sockaddr_is_any(&ss) ? "wildcard" : "multicast");
				return -EINVAL;
			}
		} else if (iface_of(&ss, name, sizeof(name)) < 0) {
			log_err("--rx ring: no interface holds %s: give --rx-iface",
				cfg->listen[i]);
			return -EINVAL;
		}
		if (iface[0] && strcmp(iface, name)) {
			log_err("--rx ring: the listen addresses are on %s and %s: one "
				"ring captures on one interface; give --rx-iface",
				iface, name);
			return -EINVAL;
		}
		snprintf(iface, icap, "%s", name);
	}
	return 0;
}

static int open_ring(struct ingest *in, const struct ingest_sock_cfg *cfg)
{
	char filter[2048], iface[IF_NAMESIZE];
	struct afp_cfg ac;
	int err;

	err = ring_target(in, cfg, filter, sizeof(filter), iface, sizeof(iface));
	if (err)
		return err;
	ac = (struct afp_cfg){
		.iface = iface,
		.filter = filter,
		.ring_bytes = cfg->rcvbuf > 0 ? (size_t)cfg->rcvbuf : 32u << 20,
	};
	in->afp = afp_new(&ac);
	return in->afp ? 0 : -errno;
}

struct ingest *ingest_new(const struct ingest_sock_cfg *cfg)
{
	struct ingest *in;
	bool mcast, any_mcast = false;
	uint16_t port = 0;
	size_t i;
	int err = 0, k;

	if (!cfg->n_listen || cfg->n_listen > INGEST_MAX_SOCKS) {
		errno = EINVAL;
		return NULL;
	}
	in = calloc(1, sizeof(*in));
	if (!in)
		return NULL;
	for (i = 0; i < INGEST_MAX_SOCKS; i++)
		in->fds[i] = -1;
	in->bufs = malloc((size_t)INGEST_BATCH * INGEST_BUF);
	if (!in->bufs) {
		err = -ENOMEM;
		goto cleanup;
	}
	/* Set up once: recvmmsg() only rewrites the lengths, reset per batch. */
	for (k = 0; k < INGEST_BATCH; k++) {
		in->iov[k].iov_base = in->bufs + (size_t)k * INGEST_BUF;
		in->iov[k].iov_len = INGEST_BUF;
		in->msgs[k].msg_hdr = (struct msghdr){
			.msg_name = &in->from[k],
			.msg_iov = &in->iov[k],
			.msg_iovlen = 1,
			.msg_control = in->ctrl[k],
		};
	}
	for (i = 0; i < cfg->n_listen; i++) {
		unsigned p = 0;

		err = open_one(cfg->listen[i], cfg, &in->fds[i], &p, &mcast);
		if (err)
			goto cleanup;
		any_mcast |= mcast;
		if (i == 0)
			port = (uint16_t)p;
		in->n++;
		log_info("listening on %s (port %u)", cfg->listen[i], p);
	}
	if (cfg->ring) {
		err = open_ring(in, cfg);
		if (err)
			goto cleanup;
	}
	in->rcvbuf = SIZE_MAX;
	for (i = 0; i < in->n; i++) {
		int got = 0;
		socklen_t gl = sizeof(got);

		if (!getsockopt(in->fds[i], SOL_SOCKET, SO_RCVBUF, &got, &gl) && got > 0 &&
		    (size_t)got < in->rcvbuf)
			in->rcvbuf = (size_t)got;
	}
	if (in->rcvbuf == SIZE_MAX) /* unreadable: assume the usual rmem_default, small */
		in->rcvbuf = 212992;
	in->hold_ns = INGEST_HOLD_MAX_NS;
	if (cfg->join_iface && !any_mcast)
		log_warn("--join %s ignored: no --listen address is a multicast group",
			 cfg->join_iface);
	in->port = port;
	return in;
cleanup:
	ingest_free(in);
	errno = -err;
	return NULL;
}

void ingest_free(struct ingest *in)
{
	size_t i;

	if (!in)
		return;
	for (i = 0; i < INGEST_MAX_SOCKS; i++)
		if (in->fds[i] >= 0)
			close(in->fds[i]);
	afp_free(in->afp);
	free(in->bufs);
	free(in);
}

unsigned ingest_port(const struct ingest *in)
{
	return in ? in->port : 0;
}

uint64_t ingest_kernel_drops(struct ingest *in)
{
	uint32_t mem[SK_MEMINFO_VARS];
	socklen_t ml;
	uint64_t sum = 0;
	size_t i;

	/* The socket's drop count (what SO_RXQ_OVFL would put in a control message of
	 * every buffer) read on demand: one system call per publish instead of a control
	 * message per received buffer. */
	if (in && in->afp)
		return afp_drops(in->afp);
	for (i = 0; in && i < in->n; i++) {
		ml = sizeof(mem);
		if (!getsockopt(in->fds[i], SOL_SOCKET, SO_MEMINFO, mem, &ml) &&
		    ml > SK_MEMINFO_DROPS * sizeof(mem[0]))
			sum += mem[SK_MEMINFO_DROPS];
	}
	return sum;
}

uint64_t ingest_buffers(const struct ingest *in)
{
	if (in && in->afp)
		return afp_frames(in->afp);
	return in ? in->buffers : 0;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The UDP_GRO segment size of one received buffer, or 0 when it is one datagram. */
static size_t gro_segment(struct msghdr *mh)
{
	struct cmsghdr *c;
	size_t seg = 0;
	int gso;

	if (mh->msg_controllen < sizeof(struct cmsghdr))
		return 0;
	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
			memcpy(&gso, CMSG_DATA(c), sizeof(gso));
			if (gso > 0)
				seg = (size_t)gso;
		}
	}
	return seg;
}

/* Hands on one received buffer: a datagram, or (seg > 0) a GSO/GRO run of datagrams of
 * seg bytes, the last one possibly shorter; each is handed on (validated, counted) on
 * its own, as if it had arrived alone. Returns the number of datagrams. */
static int deliver_run(ingest_dgram_fn fn, void *ctx, const uint8_t *buf, size_t len, size_t seg,
		       const uint8_t addr[16], bool trunc, uint64_t ts)
{
	size_t off;
	int n = 0;

	if (!seg || seg >= len) {
		fn(ctx, buf, len, addr, trunc ? INGEST_R_TRUNCATED : INGEST_OK, ts);
		return 1;
	}
	for (off = 0; off < len; off += seg, n++) {
		bool last = len - off <= seg;

		fn(ctx, buf + off, last ? len - off : seg, addr,
		   trunc && last ? INGEST_R_TRUNCATED : INGEST_OK, ts);
	}
	return n;
}

static int drain_socket(struct ingest *in, size_t s, ingest_dgram_fn fn, void *ctx)
{
	uint8_t addr[16];
	uint16_t port;
	uint64_t ts;
	size_t seg, len;
	int n, i, total = 0, rounds, used = INGEST_BATCH;

	/* A few batches per wake-up keep one busy socket from starving the others. */
	for (rounds = 0; rounds < 8; rounds++) {
		for (i = 0; i < used; i++) {
			in->msgs[i].msg_hdr.msg_namelen = sizeof(in->from[i]);
			in->msgs[i].msg_hdr.msg_controllen = sizeof(in->ctrl[i]);
		}
		n = recvmmsg(in->fds[s], in->msgs, INGEST_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			return -errno;
		}
		used = n;
		if (!n)
			break;
		in->buffers += (uint64_t)n;
		/* The datagrams of one batch were all queued when it returned: one clock
		 * read stands for all of them (a read per datagram costs ~2% at 1 Mpps). */
		ts = realtime_ns();
		for (i = 0; i < n; i++) {
			struct msghdr *mh = &in->msgs[i].msg_hdr;
			const uint8_t *buf = in->iov[i].iov_base;
			bool trunc = (mh->msg_flags & MSG_TRUNC) != 0;

			seg = gro_segment(mh);
			if (args_from_sockaddr((struct sockaddr *)&in->from[i], addr, &port))
				memset(addr, 0, sizeof(addr));
			len = in->msgs[i].msg_len;
			in->charge += len + INGEST_SKB_OVERHEAD;
			total += deliver_run(fn, ctx, buf, len, seg, addr, trunc, ts);
		}
		if (n < INGEST_BATCH)
			break;
	}
	if (rounds == 8)
		in->backlog = true;
	return total;
}

/* Drains every socket (all of them: after a hold any may have data). */
static int drain_all(struct ingest *in, ingest_dgram_fn fn, void *ctx)
{
	size_t i;
	int n, total = 0;

	for (i = 0; i < in->n; i++) {
		n = drain_socket(in, i, fn, ctx);
		if (n < 0)
			return n;
		total += n;
	}
	return total;
}

/* After a drain: keep what one hold accumulates under an eighth of the socket buffer
 * (halve the hold when a drain took more than that), and grow it back slowly when
 * the rate falls. */
static void adapt_hold(struct ingest *in)
{
	if (in->charge > in->rcvbuf / 8) {
		in->hold_ns /= 2;
		if (in->hold_ns < INGEST_HOLD_MIN_NS)
			in->hold_ns = INGEST_HOLD_MIN_NS;
	} else if (in->charge < in->rcvbuf / 32 && in->hold_ns < INGEST_HOLD_MAX_NS) {
		in->hold_ns += in->hold_ns / 4;
		if (in->hold_ns > INGEST_HOLD_MAX_NS)
			in->hold_ns = INGEST_HOLD_MAX_NS;
	}
}

/* One ring frame: its outer headers checked here, as the kernel's IP/UDP receive would
 * have before a socket got it, then its datagrams handed on. */
static void on_ring_frame(void *ctx, const struct afp_frame *f)
{
	static const uint8_t none[16];
	struct ingest *in = ctx;
	const uint8_t *payload;
	uint8_t addr[16];
	size_t plen;

	if (f->truncated || afp_outer(f->frame, f->len, f->csum_ok, &payload, &plen, addr) < 0) {
		in->ring_fn(in->ring_ctx, f->frame, 0, none,
			    f->truncated ? INGEST_R_TRUNCATED : INGEST_R_OUTER, f->ts_ns);
		in->ring_count++;
		return;
	}
	in->ring_count += deliver_run(in->ring_fn, in->ring_ctx, payload, plen, f->gso_size, addr,
				      false, f->ts_ns);
}

int ingest_poll(struct ingest *in, int timeout_ms, ingest_dgram_fn fn, void *ctx)
{
	struct pollfd pfd[INGEST_MAX_SOCKS];
	size_t i;
	int n, total = 0, err;

	if (in->afp) {
		in->ring_fn = fn;
		in->ring_ctx = ctx;
		in->ring_count = 0;
		err = afp_poll(in->afp, timeout_ms, on_ring_frame, in);
		return err < 0 ? err : in->ring_count;
	}

	if (in->flowing) {
		struct timespec hold = { 0, (long)in->hold_ns };

		/* Still queued from the last drain: no wait. A signal ends the wait early. */
		if (!in->backlog)
			nanosleep(&hold, NULL);
		in->backlog = false;
		in->charge = 0;
		total = drain_all(in, fn, ctx);
		if (total < 0)
			return total;
		adapt_hold(in);
		in->flowing = total > 0;
		if (total)
			return total;
		/* Nothing came during the hold: traffic stopped, wait in poll() again. */
	}
	in->charge = 0;
	for (i = 0; i < in->n; i++)
		pfd[i] = (struct pollfd){ .fd = in->fds[i], .events = POLLIN };
	n = poll(pfd, in->n, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < in->n && n > 0; i++) {
		if (!(pfd[i].revents & POLLIN))
			continue;
		err = drain_socket(in, i, fn, ctx);
		if (err < 0)
			return err;
		total += err;
	}
	in->flowing = total > 0;
	return total;
}
