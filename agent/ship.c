/* agent/ship.c - VxLAN shipping with sendmmsg batches and a source-port pool. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "args.h"
#include "log.h"
#include "ship.h"
#include "vxlan.h"

/* Outer send buffer: a burst of a few thousand datagrams queues instead of failing with
 * EAGAIN while the poll loop is busy. */
#define SHIP_SNDBUF (4 << 20)
/* Ports tried from the hashed start when the first choice is taken by another socket. */
#define SHIP_BIND_TRIES 256

struct ship_tvn {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int family_idx; /* 0: IPv4 pool, 1: IPv6 pool */
	uint64_t id;
	char name[128];
};

/* The datagrams queued on one socket. */
struct ship_sock {
	int fd;
	unsigned n;
	struct mmsghdr msgs[SHIP_BATCH];
	struct iovec iov[SHIP_BATCH];
	uint8_t *bufs; /* SHIP_BATCH slots of slot_len bytes */
};

struct ship {
	struct ship_tvn *tvns;
	uint64_t *ids;
	size_t n_tvns;
	uint32_t vni;
	size_t slot_len;
	struct ship_sock socks[2][SHIP_PORTS];
	struct ship_stats st;
};

static uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* FNV-1a over bytes, finished with a mixer: stable across hosts and runs. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t ship_tvn_id(const uint8_t addr[16], uint16_t port)
{
	uint8_t pb[2] = { (uint8_t)(port >> 8), (uint8_t)port };
	uint64_t h = 0xcbf29ce484222325ull;

	h = hash_bytes(h, addr, 16);
	h = hash_bytes(h, pb, 2);
	return mix64(h);
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
	fh = mix64(hash_bytes(0xcbf29ce484222325ull, &canon, sizeof(canon)));
	for (size_t i = 0; i < n; i++) {
		uint64_t w = mix64(ids[i] ^ fh);

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

static int open_pool(struct ship *s, int idx)
{
	int family = idx ? AF_INET6 : AF_INET, err;

	for (unsigned i = 0; i < SHIP_PORTS; i++) {
		struct ship_sock *k = &s->socks[idx][i];
		int sndbuf = SHIP_SNDBUF;

		k->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (k->fd < 0)
			return -errno;
		setsockopt(k->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		err = bind_src_port(k->fd, family, mix64(((uint64_t)getpid() << 8) | i));
		if (err)
			return err;
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
		char addr_str[TUPLE_ADDR_STRLEN];
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
		need[t->family_idx] = true;
		t->id = ship_tvn_id(a16, port);
		s->ids[i] = t->id;
		log_info("shipping to TVN %s (%s port %u)", t->name, tuple_addr_str(a16, addr_str),
			 port);
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

static void sock_flush(struct ship *s, struct ship_sock *k)
{
	unsigned done = 0;

	while (done < k->n) {
		int n = sendmmsg(k->fd, k->msgs + done, k->n - done, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* The first datagram failed (EAGAIN, ECONNREFUSED from an ICMP error,
			 * ENETUNREACH): count it and move on; later ones may still go. */
			s->st.tx_errors++;
			done++;
			continue;
		}
		for (int i = 0; i < n; i++) {
			s->st.tx_packets++;
			s->st.tx_bytes += k->iov[done + i].iov_len;
		}
		done += (unsigned)n;
	}
	k->n = 0;
}

void ship_flush(struct ship *s)
{
	if (!s)
		return;
	for (int f = 0; f < 2; f++)
		for (int i = 0; i < SHIP_PORTS; i++)
			if (s->socks[f][i].fd >= 0 && s->socks[f][i].n)
				sock_flush(s, &s->socks[f][i]);
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
	t = &s->tvns[s->n_tvns == 1 ? 0 : ship_rendezvous(s->ids, s->n_tvns, flow)];
	k = &s->socks[t->family_idx][tuple_hash(flow) % SHIP_PORTS];
	i = k->n;
	slot = k->bufs + (size_t)i * s->slot_len;
	vxlan_encode(slot, s->vni);
	memcpy(slot + VXLAN_HDR_LEN, frame, len);
	k->iov[i].iov_base = slot;
	k->iov[i].iov_len = VXLAN_HDR_LEN + len;
	memset(&k->msgs[i], 0, sizeof(k->msgs[i]));
	k->msgs[i].msg_hdr.msg_name = (void *)&t->addr;
	k->msgs[i].msg_hdr.msg_namelen = t->addr_len;
	k->msgs[i].msg_hdr.msg_iov = &k->iov[i];
	k->msgs[i].msg_hdr.msg_iovlen = 1;
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
