/* tvn/afpacket.c - the AF_PACKET TPACKET_V3 ring behind --rx ring. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "afpacket.h"
#include "log.h"
#include "pkt.h"

#define AFP_MIN_BLOCKS 32
/* Frame slots only matter to the kernel's arithmetic in TPACKET_V3 (frames are packed in
 * a block); the size must divide the block. */
#define AFP_FRAME_SLOT 2048
/* A block the kernel started is handed over at the latest after this long, so that a
 * trickle of datagrams is not held until a whole block has come (ms; empty blocks are
 * never handed over, so an idle ring wakes nobody). It is also the ring's capacity at
 * low rates: every such interval with traffic takes a block however little is in it,
 * so n_blocks x this is how long tvn may stall without loss. At 1 ms a 32 MiB ring
 * (256 blocks) lost 2762 of 3783 datagrams sent at 4000/s to a tvn stopped for a
 * second, where the socket path lost none; at 10 ms it holds 2.5 s and adds at most
 * 10 ms of latency to a trickle. */
#define AFP_BLOCK_TIMEOUT_MS 10
/* Blocks read per afp_poll(): the caller gets control back every few thousand frames. */
#define AFP_BLOCKS_PER_POLL 64
/* The virtio-net header type of a UDP GSO/GRO run (Linux 6.2 uapi; older headers lack
 * the name). */
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

struct afp {
	int fd;
	unsigned ifindex;
	char iface[IF_NAMESIZE];
	bool down; /* the interface went down: checked on every poll until it is up */
	uint8_t *map;
	size_t n_blocks;
	size_t next;	 /* the block to read next */
	uint64_t frames; /* frames read */
	uint64_t drops;	 /* frames the kernel dropped, accumulated (the kernel resets) */
};

/* The Ethernet-style link type libpcap compiles the filter for, from the interface's
 * ARPHRD type: loopback frames carry a (zeroed) Ethernet header too. */
static int link_type(int fd, const char *iface, int *dlt)
{
	struct ifreq ifr = { 0 };

	if (strlen(iface) >= sizeof(ifr.ifr_name))
		return -ENODEV;
	strcpy(ifr.ifr_name, iface);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		return -errno;
	switch (ifr.ifr_hwaddr.sa_family) {
	case ARPHRD_ETHER:
	case ARPHRD_LOOPBACK:
		*dlt = DLT_EN10MB;
		return 0;
	default:
		log_err("--rx ring: interface %s has link type %u; only Ethernet and loopback "
			"interfaces are supported (use --rx socket)",
			iface, ifr.ifr_hwaddr.sa_family);
		return -EPROTONOSUPPORT;
	}
}

static int attach_filter(int fd, int dlt, const char *expr)
{
	struct bpf_program prog = { 0 };
	struct sock_fprog fp;
	pcap_t *dead;
	int err = 0;

	dead = pcap_open_dead(dlt, 65535);
	if (!dead)
		return -ENOMEM;
	if (pcap_compile(dead, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) < 0) {
		log_err("--rx ring: cannot compile the capture filter \"%s\": %s", expr,
			pcap_geterr(dead));
		err = -EINVAL;
		goto cleanup;
	}
	/* libpcap's struct bpf_insn is the kernel's struct sock_filter. */
	fp.len = (unsigned short)prog.bf_len;
	fp.filter = (struct sock_filter *)prog.bf_insns;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) < 0) {
		err = -errno;
		log_err("--rx ring: cannot attach the capture filter: %s", strerror(errno));
	}
	pcap_freecode(&prog);
cleanup:
	pcap_close(dead);
	return err;
}

static int set_int(int fd, int opt, int val, const char *what)
{
	if (setsockopt(fd, SOL_PACKET, opt, &val, sizeof(val)) < 0) {
		int err = -errno;

		log_err("--rx ring: the kernel refuses %s: %s (use --rx socket)", what,
			strerror(errno));
		return err == -EINVAL || err == -ENOPROTOOPT ? -EPROTONOSUPPORT : err;
	}
	return 0;
}

bool afp_carries_gso(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	/* Before 6.2 the kernel has no virtio-net type for a UDP GSO/GRO run: the ring
	 * drops such frames (counted) instead of handing them over with a segment size. */
	if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return false;
	return major > 6 || (major == 6 && minor >= 2);
}

struct afp *afp_new(const struct afp_cfg *cfg)
{
	struct tpacket_req3 req = { 0 };
	struct sockaddr_ll ll = { 0 };
	struct afp *a;
	unsigned ifindex;
	int err, dlt = DLT_EN10MB, one = 1;

	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->map = MAP_FAILED;
	/* Protocol 0: nothing is queued before the filter is attached and the socket is
	 * bound to its interface. */
	a->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (a->fd < 0) {
		err = -errno;
		if (errno == EPERM || errno == EACCES)
			log_err("--rx ring: an AF_PACKET socket needs CAP_NET_RAW (run as root, "
				"grant the capability, or use --rx socket)");
		else
			log_err("--rx ring: cannot create an AF_PACKET socket: %s",
				strerror(errno));
		goto cleanup;
	}
	ifindex = if_nametoindex(cfg->iface);
	a->ifindex = ifindex;
	snprintf(a->iface, sizeof(a->iface), "%s", cfg->iface);
	if (!ifindex) {
		err = -ENODEV;
		log_err("--rx ring: no interface %s (--rx-iface)", cfg->iface);
		goto cleanup;
	}
	err = link_type(a->fd, cfg->iface, &dlt);
	if (err)
		goto cleanup;
	err = attach_filter(a->fd, dlt, cfg->filter);
	if (err)
		goto cleanup;
	err = set_int(a->fd, PACKET_VERSION, TPACKET_V3, "TPACKET_V3");
	if (!err) /* a GSO/GRO run's segment size; must precede the ring */
		err = set_int(a->fd, PACKET_VNET_HDR, 1, "PACKET_VNET_HDR");
	if (err)
		goto cleanup;
	/* Linux >= 4.20; without it frames sent from this host are skipped below. */
	setsockopt(a->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));

	a->n_blocks = (cfg->ring_bytes + AFP_BLOCK - 1) / AFP_BLOCK;
	if (a->n_blocks < AFP_MIN_BLOCKS)
		a->n_blocks = AFP_MIN_BLOCKS;
	req.tp_block_size = AFP_BLOCK;
	req.tp_block_nr = (unsigned)a->n_blocks;
	req.tp_frame_size = AFP_FRAME_SLOT;
	req.tp_frame_nr = (unsigned)(a->n_blocks * (AFP_BLOCK / AFP_FRAME_SLOT));
	req.tp_retire_blk_tov = AFP_BLOCK_TIMEOUT_MS;
	if (setsockopt(a->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0) {
		err = -errno;
		log_err("--rx ring: cannot set up a %zu KiB ring: %s",
			a->n_blocks * AFP_BLOCK >> 10, strerror(errno));
		goto cleanup;
	}
	a->map = mmap(NULL, a->n_blocks * AFP_BLOCK, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);
	if (a->map == MAP_FAILED) {
		err = -errno;
		log_err("--rx ring: cannot map the ring: %s", strerror(errno));
		goto cleanup;
	}
	ll.sll_family = AF_PACKET;
	ll.sll_protocol = htons(ETH_P_ALL);
	ll.sll_ifindex = (int)ifindex;
	if (bind(a->fd, (struct sockaddr *)&ll, sizeof(ll)) < 0) {
		err = -errno;
		log_err("--rx ring: cannot bind to %s: %s", cfg->iface, strerror(errno));
		goto cleanup;
	}
	if (!afp_carries_gso())
		log_warn("--rx ring: before Linux 6.2 the ring drops UDP GSO/GRO runs "
			 "(tvn_rx_dropped_buffers_total): UDP GRO stays off on the port, and "
			 "ecv-agents on this host need --gso off");
	log_info("capturing on %s: AF_PACKET ring of %zu blocks of %u KiB, filter \"%s\"",
		 cfg->iface, a->n_blocks, AFP_BLOCK >> 10, cfg->filter);
	return a;
cleanup:
	afp_free(a);
	errno = -err;
	return NULL;
}

void afp_free(struct afp *a)
{
	if (!a)
		return;
	if (a->map != MAP_FAILED)
		munmap(a->map, a->n_blocks * AFP_BLOCK);
	if (a->fd >= 0)
		close(a->fd);
	free(a);
}

uint64_t afp_frames(const struct afp *a)
{
	return a ? a->frames : 0;
}

uint64_t afp_drops(struct afp *a)
{
	struct tpacket_stats_v3 st;
	socklen_t sl = sizeof(st);

	/* Reading the statistics resets them in the kernel: keep the sum. */
	if (a && !getsockopt(a->fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl))
		a->drops += st.tp_drops;
	return a ? a->drops : 0;
}

static struct tpacket_block_desc *block(const struct afp *a, size_t i)
{
	return (struct tpacket_block_desc *)(a->map + i * AFP_BLOCK);
}

static bool block_ready(const struct tpacket_block_desc *bd)
{
	return __atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER;
}

/* Hands every frame of one block to fn. The kernel wrote the headers: they are still
 * checked against the block's bounds, a frame that does not fit ends the block. */
static int read_block(struct afp *a, struct tpacket_block_desc *bd, afp_frame_fn fn, void *ctx)
{
	const uint8_t *base = (const uint8_t *)bd, *end = base + AFP_BLOCK;
	const size_t ll_off = TPACKET_ALIGN(sizeof(struct tpacket3_hdr));
	uint32_t i, n = bd->hdr.bh1.num_pkts, off = bd->hdr.bh1.offset_to_first_pkt;
	struct afp_frame f;
	int count = 0;

	for (i = 0; i < n && off && off < AFP_BLOCK; i++) {
		const struct tpacket3_hdr *h = (const void *)(base + off);
		const struct sockaddr_ll *ll = (const void *)((const uint8_t *)h + ll_off);
		size_t room = (size_t)(end - (const uint8_t *)h);
		const struct virtio_net_hdr *vh;
		bool run;

		if (room < ll_off + sizeof(*ll) || h->tp_mac < sizeof(*vh) ||
		    h->tp_mac + (size_t)h->tp_snaplen > room)
			break;
		vh = (const void *)((const uint8_t *)h + h->tp_mac - sizeof(*vh));
		/* Frames this host sends are not for us (a kernel without
		 * PACKET_IGNORE_OUTGOING shows them on loopback twice). */
		if (ll->sll_pkttype != PACKET_OUTGOING) {
			f.frame = (const uint8_t *)h + h->tp_mac;
			f.len = h->tp_snaplen;
			f.truncated = h->tp_snaplen < h->tp_len;
			f.csum_ok =
				(h->tp_status & (TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID)) ||
				(vh->flags &
				 (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID));
			/* A UDP GSO/GRO run; the legacy UDP type (UFO) is one datagram
			 * to be fragmented, not a run. */
			run = (vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_UDP_L4;
			f.gso_size = run ? vh->gso_size : 0;
			f.ts_ns = (uint64_t)h->tp_sec * 1000000000ull + h->tp_nsec;
			a->frames++;
			count++;
			fn(ctx, &f);
		}
		off = h->tp_next_offset ? off + h->tp_next_offset : 0;
	}
	return count;
}

/* Whether the ring's interface still exists: an error, or while it is down a check
 * per poll, tells. The kernel reports a deletion only as the "down" that precedes it
 * (the socket's error is set once), so a down interface is looked at again until it is
 * up (the kernel then resumes the capture by itself) or gone (nothing can arrive any
 * more: fatal, so that a supervisor restarts tvn). Reading SO_ERROR clears the error,
 * or poll() would return at once again and again. */
static int check_iface(struct afp *a, bool error)
{
	struct ifreq ifr = { 0 };
	int err = 0;
	socklen_t el = sizeof(err);

	if (error && getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return -errno;
	if (if_nametoindex(a->iface) != a->ifindex) {
		log_err("--rx ring: interface %s is gone", a->iface);
		return -ENODEV;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", a->iface);
	if (ioctl(a->fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP)) {
		if (a->down)
			log_info("--rx ring: %s is up again, capturing", a->iface);
		a->down = false;
	} else if (!a->down) {
		log_warn("--rx ring: %s is down (%s); the capture resumes when it is up again",
			 a->iface, strerror(err ? err : ENETDOWN));
		a->down = true;
	}
	return 0;
}

int afp_poll(struct afp *a, int timeout_ms, afp_frame_fn fn, void *ctx)
{
	struct tpacket_block_desc *bd = block(a, a->next);
	int blocks, total = 0, err;

	if (!block_ready(bd)) {
		struct pollfd p = { .fd = a->fd, .events = POLLIN };

		if (poll(&p, 1, timeout_ms) < 0)
			return errno == EINTR ? 0 : -errno;
		if ((p.revents & POLLERR) || a->down) {
			err = check_iface(a, p.revents & POLLERR);
			if (err)
				return err;
		}
		if (!block_ready(bd))
			return 0;
	}
	for (blocks = 0; blocks < AFP_BLOCKS_PER_POLL && block_ready(bd); blocks++) {
		total += read_block(a, bd, fn, ctx);
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		a->next = (a->next + 1) % a->n_blocks;
		bd = block(a, a->next);
	}
	return total;
}

int afp_outer(const uint8_t *frame, size_t len, bool csum_ok, const uint8_t **payload, size_t *plen,
	      uint8_t src[16])
{
	struct pkt_info info;

	if (pkt_parse(frame, len, &info) != 0 || info.tuple.proto != IPPROTO_UDP)
		return -1;
	if (csum_ok) {
		/* The UDP checksum is vouched for; the IPv4 header's never is. */
		if (info.tuple.family == AF_INET &&
		    pkt_csum(frame + info.l3_off, info.l4_off - info.l3_off) != 0)
			return -1;
	} else if (!pkt_checksums_ok(frame, &info)) {
		return -1;
	}
	*payload = info.payload;
	*plen = info.payload_len;
	memcpy(src, info.tuple.saddr, 16);
	return 0;
}
