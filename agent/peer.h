/* agent/peer.h - what receives the datagrams sent to a TVN address, as far as this host
 * can tell: whether UDP GSO runs reach a receiver that splits them.
 * Owns: the route lookup (RTM_GETROUTE: the egress device, hardware or software) and,
 * for a receiver on this host (a software device: veth, bridge, lo), the search of every
 * network namespace's UDP sockets (/proc/PID/net/udp{,6}) for the one bound to the
 * address and whether a process holds it (a user-space receiver such as tvn, which takes
 * GSO runs) or none does (a kernel socket: a Linux vxlan device, which keeps only the
 * first frame of a run). The parser of /proc/net/udp text is pure.
 * Does not own: the sockets that send (ship.c). */
#ifndef AGENT_PEER_H
#define AGENT_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum peer_kind {
	PEER_UNKNOWN = 0, /* no socket found bound to the address on this host */
	PEER_HARDWARE,	  /* leaves through a hardware device: segmented before the wire */
	PEER_USER,	  /* a process's socket on this host */
	PEER_KERNEL,	  /* a socket no process holds (a kernel vxlan device's) */
};

/* Who receives datagrams to dst; dev (IF_NAMESIZE bytes) gets the egress device name or
 * "?". Never fails: what it cannot tell is PEER_UNKNOWN. */
enum peer_kind peer_classify(const struct sockaddr_storage *dst, char *dev);
const char *peer_kind_name(enum peer_kind k);

/* Inodes of the sockets in /proc/net/udp or udp6 text (v6: the udp6 format) bound to
 * addr (16 bytes, IPv4 as ::ffff:a.b.c.d) or to the wildcard, port port; up to max in
 * inodes. Returns how many were found. Pure. */
size_t peer_udp_bound(const char *text, const uint8_t addr[16], uint16_t port, bool v6,
		      uint64_t *inodes, size_t max);

#endif
