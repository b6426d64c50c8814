/* agent/ship.c - VxLAN shipping with sendmmsg batches and a source-port pool. */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/errqueue.h> /* after <time.h>: it uses struct timespec */

#include "args.h"
#include "hash.h"
#include "log.h"
#include "peer.h"
#include "ship.h"
#include "vxlan.h"

/* Outer send buffer: a burst of a few thousand datagrams queues instead of failing with
 * EAGAIN while the poll loop is busy. */
#define SHIP_SNDBUF (4 << 20)
/* UDP GSO (UDP_SEGMENT, Linux >= 4.18): a run of equal-sized datagrams for one TVN leaves
 * in one send and crosses the IP stack once, as one large skb split at the device (or
 * at the receiving socket on loopback). A 16 KiB SSL record becomes 12 frames of which
 * 11 have the MSS: per-datagram stack cost was two thirds of the agent's CPU time.
 * Bounds: the kernel's UDP_MAX_SEGMENTS (64 on older kernels) and one IP datagram
 * (64 KiB) for the whole run. */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#define SHIP_GSO_SEGS 40
#define SHIP_GSO_BYTES 60000
/* Ports tried from the hashed start when the first choice is taken by another socket. */
#define SHIP_BIND_TRIES 256
/* Queued ICMP errors read per socket and round: the queue is bounded by the receive
 * buffer anyway, this only bounds the time one round may spend on it. */
#define SHIP_ERRQ_MAX 4096

struct ship_tvn {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int family_idx; /* 0: IPv4 pool, 1: IPv6 pool */
	bool gso;	/* runs of frames to it may leave as one UDP GSO send */
	uint64_t id;
	char name[128];
};

/* Control message carrying a UDP_SEGMENT size. */
union ship_cmsg {
	char buf[CMSG_SPACE(sizeof(uint16_t))];
	struct cmsghdr align;
};

/* The datagrams queued on one socket. */
struct ship_sock {
	int fd;
	bool gso; /* UDP_SEGMENT usable; cleared for good when a send refuses it */
	unsigned n;
	struct iovec iov[SHIP_BATCH];		/* one per queued datagram */
	const struct ship_tvn *dst[SHIP_BATCH]; /* its TVN */
	/* Built at flush: one message per datagram, or per GSO run of them. */
	struct mmsghdr msgs[SHIP_BATCH];
	unsigned segs[SHIP_BATCH]; /* datagrams in msgs[i] */
	union ship_cmsg ctrl[SHIP_BATCH];
	uint8_t *bufs; /* SHIP_BATCH slots of slot_len bytes */
};

struct ship {
	struct ship_tvn *tvns;
	uint64_t *ids;
	size_t n_tvns;
	uint32_t vni;
	size_t slot_len;
	struct ship_sock socks[2][SHIP_PORTS];
	/* The last flow's choice: a segment train is a dozen frames of one flow, and the
	 * byte-wise hashes cost more than comparing the tuple. */
	struct ecv_tuple last_flow;
	const struct ship_tvn *last_tvn;
	struct ship_sock *last_sock;
	struct ship_stats st;
};

uint64_t ship_tvn_id(const uint8_t addr[16], uint16_t port)
{
	uint8_t pb[2] = { (uint8_t)(port >> 8), (uint8_t)port };
	uint64_t h = HASH_FNV_OFFSET;

	h = hash_fnv1a(h, addr, 16);
	h = hash_fnv1a(h, pb, 2);
	return hash_mix64(h);
}

size_t ship_rendezvous(const uint64_t *ids, size_t n, const struct ecv_tuple *flow)
{
	struct ecv_tuple canon;
	uint64_t fh, best = 0;
	size_t pick = 0;

	/* The canonical direction (DESIGN §3) makes both nodes hash the same bytes. */
	if (tuple_dir(flow))
		tuple_reverse(&canon, flow);
	else
		canon = *flow;
	fh = hash_mix64(hash_fnv1a(HASH_FNV_OFFSET, &canon, sizeof(canon)));
	for (size_t i = 0; i < n; i++) {
		uint64_t w = hash_mix64(ids[i] ^ fh);

		if (i == 0 || w > best) {
			best = w;
			pick = i;
		}
	}
	return pick;
}

/* Binds fd to a free port in 49152..65535 starting at the one vxlan_src_port() gives
 * for seed; falls back to a kernel-chosen port when the range is crowded. */
static int bind_src_port(int fd, int family, uint64_t seed)
{
	uint16_t start = vxlan_src_port(seed);

	for (unsigned i = 0; i <= SHIP_BIND_TRIES; i++) {
		uint16_t port = i == SHIP_BIND_TRIES ? 0 : 49152 + (start - 49152 + i) % 16384;
		struct sockaddr_storage ss;
		socklen_t len;

		memset(&ss, 0, sizeof(ss));
		if (family == AF_INET) {
			struct sockaddr_in *sin = (void *)&ss;

			sin->sin_family = AF_INET;
			sin->sin_port = htons(port);
			len = sizeof(*sin);
		} else {
			struct sockaddr_in6 *sin6 = (void *)&ss;

			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(port);
			len = sizeof(*sin6);
		}
		if (bind(fd, (struct sockaddr *)&ss, len) == 0)
			return 0;
		if (errno != EADDRINUSE && errno != EACCES)
			return -errno;
	}
	return -EADDRINUSE;
}

/* 127.0.0.0/8 (as ::ffff:127.x.y.z) or ::1. */
static bool addr_is_loopback(const uint8_t a[16])
{
	static const uint8_t v6_lo[16] = { [15] = 1 };

	if (tuple_addr_is_v4(a))
		return a[12] == 127;
	return memcmp(a, v6_lo, 16) == 0;
}

/* True if the kernel knows UDP_SEGMENT (the size itself is given per send). */
static bool gso_supported(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0;
}

static int open_pool(struct ship *s, int idx)
{
	int family = idx ? AF_INET6 : AF_INET, err;

	for (unsigned i = 0; i < SHIP_PORTS; i++) {
		struct ship_sock *k = &s->socks[idx][i];
		int sndbuf = SHIP_SNDBUF, one = 1;

		k->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (k->fd < 0)
			return -errno;
		setsockopt(k->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		/* An unconnected UDP socket drops ICMP errors unless asked for them: with
		 * RECVERR a TVN that is down (port unreachable) reaches tx_errors. */
		if (setsockopt(k->fd, idx ? SOL_IPV6 : SOL_IP, idx ? IPV6_RECVERR : IP_RECVERR,
			       &one, sizeof(one)))
			return -errno;
		err = bind_src_port(k->fd, family, hash_mix64(((uint64_t)getpid() << 8) | i));
		if (err)
			return err;
		k->gso = gso_supported(k->fd);
		k->bufs = malloc(SHIP_BATCH * s->slot_len);
		if (!k->bufs)
			return -ENOMEM;
	}
	return 0;
}

struct ship *ship_new(const struct ship_cfg *cfg)
{
	struct ship *s = NULL;
	bool need[2] = { false, false };
	int err = -EINVAL;

	if (!cfg || cfg->n_tvns == 0 || cfg->n_tvns > SHIP_MAX_TVNS || cfg->vni > VXLAN_VNI_MAX) {
		log_err("failed to set up shipping: need 1..%d TVNs and a 24-bit VNI",
			SHIP_MAX_TVNS);
		goto fail;
	}
	err = -ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	for (int f = 0; f < 2; f++)
		for (int i = 0; i < SHIP_PORTS; i++)
			s->socks[f][i].fd = -1;
	s->tvns = calloc(cfg->n_tvns, sizeof(*s->tvns));
	s->ids = calloc(cfg->n_tvns, sizeof(*s->ids));
	if (!s->tvns || !s->ids)
		goto fail;
	s->n_tvns = cfg->n_tvns;
	s->vni = cfg->vni;
	s->slot_len = VXLAN_HDR_LEN + (cfg->max_frame ? cfg->max_frame : 9216);

	for (size_t i = 0; i < cfg->n_tvns; i++) {
		struct ship_tvn *t = &s->tvns[i];
		char addr_str[TUPLE_ADDR_STRLEN], dev[IF_NAMESIZE], dev_why[192];
		const char *why;
		uint8_t a16[16];
		uint16_t port;

		snprintf(t->name, sizeof(t->name), "%s", cfg->tvns[i]);
		err = args_resolve(cfg->tvns[i], VXLAN_PORT, &t->addr, &t->addr_len);
		if (err == -EHOSTUNREACH) {
			log_err("failed to resolve TVN '%s': name does not resolve", t->name);
			goto fail;
		}
		if (err) {
			log_err("failed to parse TVN '%s': expected HOST[:PORT]", t->name);
			goto fail;
		}
		err = args_from_sockaddr((struct sockaddr *)&t->addr, a16, &port);
		if (err) {
			log_err("failed to resolve TVN '%s': not an IPv4/IPv6 address", t->name);
			goto fail;
		}
		t->family_idx = t->addr.ss_family == AF_INET6;
		why = cfg->gso == SHIP_GSO_ON ? "forced" : "off";
		if (cfg->gso == SHIP_GSO_AUTO && addr_is_loopback(a16)) {
			why = "loopback";
		} else if (cfg->gso == SHIP_GSO_AUTO) {
			enum peer_kind k = peer_classify(&t->addr, dev);

			if (k == PEER_HARDWARE || k == PEER_USER)
				snprintf(dev_why, sizeof(dev_why), "on: through %s, %s", dev,
					 k == PEER_HARDWARE ? "a hardware device"
							    : "to a process's socket on this host");
			else
				snprintf(dev_why, sizeof(dev_why),
					 "off: through %s to %s on this host (a kernel vxlan "
					 "device keeps one frame of a run; --gso on if it is a "
					 "tvn)",
					 dev,
					 k == PEER_KERNEL ? "a socket no process holds"
							  : "no socket a process holds");
			why = dev_why;
		}
		t->gso = cfg->gso == SHIP_GSO_ON ||
			 (cfg->gso == SHIP_GSO_AUTO && strncmp(why, "off", 3) != 0);
		need[t->family_idx] = true;
		t->id = ship_tvn_id(a16, port);
		s->ids[i] = t->id;
		log_info("shipping to TVN %s (%s port %u, UDP GSO %s)", t->name,
			 tuple_addr_str(a16, addr_str), port, why);
	}
	for (int f = 0; f < 2; f++) {
		if (!need[f])
			continue;
		err = open_pool(s, f);
		if (err) {
			log_err("failed to open %s UDP sockets: %s", f ? "IPv6" : "IPv4",
				strerror(-err));
			goto fail;
		}
	}
	return s;
fail:
	ship_free(s);
	errno = -err;
	return NULL;
}

/* Datagrams from iov[i] on that can leave as one GSO send: same TVN, equal sizes, only
 * the last one shorter. */
static unsigned gso_run(const struct ship_sock *k, unsigned i)
{
	size_t seg = k->iov[i].iov_len, total = seg;
	unsigned n = 1;

	if (!k->gso || !k->dst[i]->gso)
		return 1;
	while (i + n < k->n && n < SHIP_GSO_SEGS && k->dst[i + n] == k->dst[i] &&
	       k->iov[i + n].iov_len <= seg && total + k->iov[i + n].iov_len <= SHIP_GSO_BYTES) {
		total += k->iov[i + n].iov_len;
		if (k->iov[i + n++].iov_len < seg)
			break;
	}
	return n;
}

/* Builds messages for the queued datagrams from index i on; returns how many. */
static unsigned build_msgs(struct ship_sock *k, unsigned i)
{
	unsigned m = 0;

	while (i < k->n) {
		struct msghdr *h = &k->msgs[m].msg_hdr;
		unsigned n = gso_run(k, i);

		memset(h, 0, sizeof(*h));
		h->msg_name = (void *)&k->dst[i]->addr;
		h->msg_namelen = k->dst[i]->addr_len;
		h->msg_iov = &k->iov[i];
		h->msg_iovlen = n;
		if (n > 1) {
			struct cmsghdr *c;
			uint16_t seg = (uint16_t)k->iov[i].iov_len;

			h->msg_control = k->ctrl[m].buf;
			h->msg_controllen = sizeof(k->ctrl[m].buf);
			c = CMSG_FIRSTHDR(h);
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(c), &seg, sizeof(seg));
		}
		k->segs[m++] = n;
		i += n;
	}
	return m;
}

static void count_sent(struct ship *s, const struct ship_sock *k, unsigned i, unsigned n)
{
	s->st.tx_packets += n;
	for (unsigned j = i; j < i + n; j++)
		s->st.tx_bytes += k->iov[j].iov_len;
}

static void sock_flush(struct ship *s, struct ship_sock *k)
{
	unsigned done = 0;

	while (done < k->n) {
		unsigned m = build_msgs(k, done);
		int n = sendmmsg(k->fd, k->msgs, m, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* A route whose device cannot segment UDP (EIO) or whose MTU is below
			 * the datagram (EINVAL) refuses GSO: send singly from now on. */
			if (k->segs[0] > 1 && (errno == EIO || errno == EINVAL)) {
				log_debug("UDP GSO refused (%s); sending datagrams singly",
					  strerror(errno));
				k->gso = false;
				continue;
			}
			/* The first message failed (EAGAIN, ECONNREFUSED from an ICMP error,
			 * ENETUNREACH): count its datagrams and move on; later ones may go. */
			s->st.tx_errors += k->segs[0];
			done += k->segs[0];
			continue;
		}
		for (int i = 0; i < n; i++) {
			count_sent(s, k, done, k->segs[i]);
			done += k->segs[i];
		}
	}
	k->n = 0;
}

/* Counts the remote errors (ICMP unreachable: a TVN down) queued on fd, one per refused
 * datagram. Local errors are skipped: the send that met them failed and was counted. */
static void drain_errqueue(struct ship *s, int fd)
{
	for (unsigned i = 0; i < SHIP_ERRQ_MAX; i++) {
		union {
			char buf[CMSG_SPACE(sizeof(struct sock_extended_err) +
					    sizeof(struct sockaddr_in6))];
			struct cmsghdr align;
		} ctrl;
		struct msghdr h = { .msg_control = ctrl.buf, .msg_controllen = sizeof(ctrl.buf) };
		bool local = false;

		if (recvmsg(fd, &h, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
			if (errno == EINTR)
				continue;
			return; /* EAGAIN: the queue is empty */
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
			struct sock_extended_err ee;

			if (!((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
			      (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)))
				continue;
			memcpy(&ee, CMSG_DATA(c), sizeof(ee));
			local = ee.ee_origin == SO_EE_ORIGIN_LOCAL;
		}
		if (!local)
			s->st.tx_errors++;
	}
}

/* One poll() over the pool finds the sockets with queued errors; never blocks. */
static void drain_errors(struct ship *s)
{
	struct pollfd pfd[2 * SHIP_PORTS];
	nfds_t n = 0;

	for (int f = 0; f < 2; f++)
		for (int i = 0; i < SHIP_PORTS; i++)
			if (s->socks[f][i].fd >= 0)
				pfd[n++] = (struct pollfd){ .fd = s->socks[f][i].fd };
	if (!n || poll(pfd, n, 0) <= 0)
		return;
	for (nfds_t j = 0; j < n; j++)
		if (pfd[j].revents & POLLERR)
			drain_errqueue(s, pfd[j].fd);
}

void ship_flush(struct ship *s)
{
	if (!s)
		return;
	for (int f = 0; f < 2; f++)
		for (int i = 0; i < SHIP_PORTS; i++)
			if (s->socks[f][i].fd >= 0 && s->socks[f][i].n)
				sock_flush(s, &s->socks[f][i]);
	drain_errors(s);
}

/* The TVN and socket of flow. */
static struct ship_sock *flow_sock(struct ship *s, const struct ecv_tuple *flow,
				   const struct ship_tvn **tvn)
{
	if (!s->last_sock || memcmp(&s->last_flow, flow, sizeof(*flow)) != 0) {
		const struct ship_tvn *t =
			&s->tvns[s->n_tvns == 1 ? 0 : ship_rendezvous(s->ids, s->n_tvns, flow)];

		s->last_flow = *flow;
		s->last_tvn = t;
		s->last_sock = &s->socks[t->family_idx][tuple_hash(flow) % SHIP_PORTS];
	}
	*tvn = s->last_tvn;
	return s->last_sock;
}

uint8_t *ship_frame_buf(struct ship *s, const struct ecv_tuple *flow, size_t need)
{
	const struct ship_tvn *t;
	struct ship_sock *k = flow_sock(s, flow, &t);

	if (VXLAN_HDR_LEN + need > s->slot_len)
		return NULL;
	return k->bufs + (size_t)k->n * s->slot_len + VXLAN_HDR_LEN;
}

int ship_send(struct ship *s, const struct ecv_tuple *flow, const uint8_t *frame, size_t len)
{
	const struct ship_tvn *t;
	struct ship_sock *k;
	uint8_t *slot;
	unsigned i;

	if (VXLAN_HDR_LEN + len > s->slot_len) {
		s->st.tx_errors++;
		return -EMSGSIZE;
	}
	k = flow_sock(s, flow, &t);
	i = k->n;
	slot = k->bufs + (size_t)i * s->slot_len;
	vxlan_encode(slot, s->vni);
	if (frame != slot + VXLAN_HDR_LEN) /* built in place by ship_frame_buf()'s caller */
		memcpy(slot + VXLAN_HDR_LEN, frame, len);
	k->iov[i].iov_base = slot;
	k->iov[i].iov_len = VXLAN_HDR_LEN + len;
	k->dst[i] = t;
	k->n++;
	if (k->n == SHIP_BATCH)
		sock_flush(s, k);
	return 0;
}

const struct ship_stats *ship_stats(const struct ship *s)
{
	return &s->st;
}

void ship_free(struct ship *s)
{
	if (!s)
		return;
	for (int f = 0; f < 2; f++) {
		for (int i = 0; i < SHIP_PORTS; i++) {
			struct ship_sock *k = &s->socks[f][i];

			if (k->fd >= 0 && k->n)
				sock_flush(s, k);
			if (k->fd >= 0)
				close(k->fd);
			free(k->bufs);
		}
	}
	free(s->tvns);
	free(s->ids);
	free(s);
}
