/* tvn/ingest.h - the receiving edge of tvn: UDP sockets and per-datagram validation.
 * Owns: the listening sockets (recvmmsg batches, UDP GRO, the receive hold, multicast
 * membership, the kernel's drop count),
 * the checks every datagram passes before anything trusts it (--allow, VxLAN header,
 * --vni, inner frame parse, metadata decode) and the malformed-reason table.
 * Does not own: what happens to accepted frames (shard.h) or the metrics registry. */
#ifndef TVN_INGEST_H
#define TVN_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "args.h"
#include "dedup.h"
#include "meta.h"
#include "pkt.h"

/* Malformed reasons: the VxLAN codes, the pkt_parse() codes, then tvn's own. */
enum {
	INGEST_R_VXLAN = 0,				/* + VXLAN_E_* - 1 */
	INGEST_R_PKT = INGEST_R_VXLAN + 3,		/* + PKT_E_* - 1 */
	INGEST_R_SOURCE = INGEST_R_PKT + PKT_E_MAX - 1, /* outer source not in --allow */
	INGEST_R_VNI,					/* VNI not in --vni */
	INGEST_R_META,					/* metadata JSON rejected */
	INGEST_R_TRUNCATED,				/* datagram or capture cut short */
	INGEST_R_OUTER,					/* offline: outer frame not IP/UDP */
	INGEST_N_REASONS
};

/* Metric label of a reason index ("short", "ip_len", "source", ...). */
const char *ingest_reason_name(int reason);

struct ingest_cfg {
	const struct args_cidr *allow; /* n_allow == 0: every source accepted */
	size_t n_allow;
	const uint32_t *vnis; /* n_vnis == 0: every VNI accepted */
	size_t n_vnis;
	bool strict_vxlan; /* reject reserved VxLAN bits */
};

enum ingest_kind { INGEST_FRAME = 0, INGEST_META = 1 };

/* One validated inner frame or metadata message. Pointers point into the caller's
 * datagram. */
struct ingest_pkt {
	enum ingest_kind kind;
	const uint8_t *frame;
	size_t len;
	struct pkt_info info;
	struct dedup_src src;
	struct meta_flow meta; /* kind == INGEST_META */
};

/* Validates one VxLAN datagram (UDP payload) received from src_addr (16-byte form).
 * Returns INGEST_FRAME or INGEST_META with out filled, or -1 - reason (a negative
 * number; reason = -ret - 1) when the datagram must be dropped. Never reads outside
 * dgram[0..len). This is the function the fuzz harness drives. */
int ingest_datagram(const struct ingest_cfg *cfg, const uint8_t *dgram, size_t len,
		    const uint8_t src_addr[16], struct ingest_pkt *out);
/* The same for an inner Ethernet frame that arrived without a tunnel (offline captures
 * of inner frames); src is used as given. */
int ingest_frame(const uint8_t *frame, size_t len, const struct dedup_src *src,
		 struct ingest_pkt *out);

/* --- live sockets --- */

struct ingest_sock_cfg {
	const char *const *listen; /* "ADDR:PORT" strings */
	size_t n_listen;
	const char *join_iface; /* NULL: no multicast membership */
	int rcvbuf;		/* SO_RCVBUF bytes (ring: ring bytes), 0 = kernel default */
	/* --rx ring: datagrams are read from an AF_PACKET ring (tvn/afpacket.h) on
	 * ring_iface (NULL: the interface holding the listen addresses); the UDP sockets
	 * stay bound, with a filter that drops everything, so that senders see an open
	 * port and multicast memberships hold. */
	bool ring;
	const char *ring_iface;
};

struct ingest;

/* reason argument of ingest_dgram_fn: the datagram is to be validated and delivered. */
#define INGEST_OK (-1)

/* One received datagram; buf is valid only during the call. ts_ns: CLOCK_REALTIME when
 * its recvmmsg() batch returned (one clock read per batch, not per datagram), or the
 * kernel's receive time (ring). reason: INGEST_OK, or INGEST_R_TRUNCATED /
 * INGEST_R_OUTER when the receive path already found the datagram unusable (cut short;
 * ring: bad outer IP/UDP headers) and it is only to be counted. */
typedef void (*ingest_dgram_fn)(void *ctx, const uint8_t *buf, size_t len,
				const uint8_t src_addr[16], int reason, uint64_t ts_ns);

/* Opens, binds and (for multicast groups with join_iface) joins every listen address,
 * and with cfg->ring opens the ring. Returns NULL with errno set and a logged reason
 * (EINVAL for a ring without an interface to capture on: a wildcard or multicast listen
 * address without ring_iface, or addresses on different interfaces). */
struct ingest *ingest_new(const struct ingest_sock_cfg *cfg);
void ingest_free(struct ingest *in); /* NULL-safe */
/* Waits up to timeout_ms for datagrams and hands every one of at most a few batches to
 * fn. While datagrams keep coming it does not wait in poll() (a wake-up per arriving
 * buffer) but sleeps a short adaptive hold (at most 0.1 ms, less when the socket buffer
 * is small for the rate) and then takes everything queued in one go. Returns the number
 * of datagrams, 0 on timeout, or -errno. */
int ingest_poll(struct ingest *in, int timeout_ms, ingest_dgram_fn fn, void *ctx);
/* Receive buffers the kernel dropped for a full socket buffer, all sockets: the count
 * SO_RXQ_OVFL reports, read with SO_MEMINFO (a system call per socket: call it once in
 * a while, not per datagram); ring: frames dropped for a full ring. A buffer is one
 * datagram, or with UDP GRO a coalesced run of up to 64: a lower bound on the
 * datagrams lost. */
uint64_t ingest_kernel_drops(struct ingest *in);
/* Buffers received so far: one per datagram, or one per run of datagrams the kernel
 * coalesced (UDP GRO; ring: one frame). Read by the thread that calls ingest_poll(). */
uint64_t ingest_buffers(const struct ingest *in);
/* The local port of the first socket (for logs and tests that bind port 0). */
unsigned ingest_port(const struct ingest *in);

#endif
