/* agent/ship.h - delivery of synthesized frames to the TVNs over VxLAN/UDP.
 * Owns: the TVN list (resolved once at start), the choice of TVN per flow (rendezvous
 * hashing on the canonical 5-tuple, so both nodes' copies of a flow meet at the same
 * TVN without a coordinator), the VxLAN header, the outer UDP source port, sendmmsg
 * batches and the send counters.
 * Outer source port: RFC 7348 §5 wants it derived from the inner flow so ECMP keeps a
 * flow on one path. A UDP socket sends from the one port it is bound to, so ship keeps
 * a small pool of non-blocking sockets bound to ports in 49152..65535 (SHIP_PORTS per
 * address family, shared by every TVN through sendmmsg's per-message destination); a
 * flow always leaves from the socket tuple_hash() picks, so its outer source port is
 * stable and flows spread over SHIP_PORTS ports. Raw sockets would allow one port per
 * flow but need CAP_NET_RAW and IP header synthesis for a marginal ECMP gain.
 * Does not own: the frames (the caller's, copied into the batch). Not thread-safe. */
#ifndef AGENT_SHIP_H
#define AGENT_SHIP_H

#include <stddef.h>
#include <stdint.h>

#include "tuple.h"

#define SHIP_PORTS 8  /* source-port sockets per address family */
#define SHIP_BATCH 64 /* datagrams per sendmmsg() */
#define SHIP_MAX_TVNS 64

/* UDP GSO (UDP_SEGMENT): a run of equal-sized frames leaves in one send and is split
 * into datagrams by the kernel: at the device for a path through a NIC, at the
 * receiving socket for a local one (the tvn's). A kernel tunnel endpoint reached over
 * veth/bridge on the same host (a Linux vxlan device as the receiver) takes such a run
 * as one datagram and loses all but its first frame, hence the default: */
enum ship_gso {
	SHIP_GSO_AUTO = 0, /* on for a loopback TVN, a TVN reached through a hardware device,
			    * or one whose socket on this host a process holds (peer.h);
			    * off for a socket no process holds (a kernel vxlan device) or
			    * none found */
	SHIP_GSO_ON,
	SHIP_GSO_OFF,
};

struct ship_cfg {
	const char *const *tvns; /* "HOST[:PORT]" (port default 4789), 1..SHIP_MAX_TVNS */
	size_t n_tvns;
	uint32_t vni;	    /* 24 bits */
	unsigned max_frame; /* largest inner frame to carry (bytes) */
	enum ship_gso gso;
};

struct ship_stats {
	uint64_t tx_packets; /* datagrams the kernel accepted */
	uint64_t tx_bytes;   /* their UDP payload bytes (VxLAN header + inner frame) */
	uint64_t tx_errors;  /* datagrams not sent: send errors (ECONNREFUSED, EAGAIN, ...),
			      * frames over max_frame, and datagrams an ICMP error came back
			      * for (counted at ship_flush) */
};

struct ship;

/* Resolves every TVN and opens the sockets. Returns NULL with errno set, after logging
 * one line naming the cause ("failed to resolve TVN 'x': ..."). */
struct ship *ship_new(const struct ship_cfg *cfg);
/* Flushes pending datagrams and closes the sockets (NULL-safe). */
void ship_free(struct ship *s);

/* Queues one inner frame of flow (either direction) for its TVN; sends the batch when
 * it is full. Never blocks. Returns 0, or -EMSGSIZE (counted) for an oversized frame. */
int ship_send(struct ship *s, const struct ecv_tuple *flow, const uint8_t *frame, size_t len);
/* Where the next frame of flow may be built in place (need bytes or more), so that
 * ship_send() of that pointer queues it without a copy; NULL if need is over max_frame.
 * Valid until the next ship_send()/ship_flush(). */
uint8_t *ship_frame_buf(struct ship *s, const struct ecv_tuple *flow, size_t need);
/* Sends every queued datagram, then counts the ICMP errors (a TVN down: port
 * unreachable) queued on the sockets since the last call as tx_errors; never blocks.
 * Call it at the end of each poll round, also when nothing was queued. */
void ship_flush(struct ship *s);
const struct ship_stats *ship_stats(const struct ship *s);

/* Rendezvous (highest random weight) choice: the index in ids[0..n) with the highest
 * mix of (ids[i], canonical flow). The same for a tuple and its reverse; removing one
 * id moves only the flows that chose it. n must be > 0. Pure. */
size_t ship_rendezvous(const uint64_t *ids, size_t n, const struct ecv_tuple *flow);
/* Stable identity of a TVN for rendezvous: a hash of its 16-byte address and port, so
 * every node computes the same weights for the same TVN list. Pure. */
uint64_t ship_tvn_id(const uint8_t addr[16], uint16_t port);

#endif
