/* agent/netinfo.h - Ethernet addresses for synthesized frames.
 * Owns: the lookups of DESIGN §2 "Header synthesis": the MAC of the interface owning
 * the local address (getifaddrs), the default gateway's MAC (/proc/net/route +
 * /proc/net/arp), and the locally administered fallbacks derived from IP addresses when
 * either is unknown (loopback, IPv6 gateways, processes in another network namespace
 * than the agent's). Results are cached; the parsers are pure and take text.
 * Does not own: the frames (pkt.h). Not thread-safe. */
#ifndef AGENT_NETINFO_H
#define AGENT_NETINFO_H

#include <stdint.h>

#include "pkt.h"

struct netinfo;

/* Returns a lookup cache, or NULL with errno set. */
struct netinfo *netinfo_new(void);
void netinfo_free(struct netinfo *ni); /* NULL-safe */

/* Fills l2 for a frame travelling local -> remote: src = MAC of the interface holding
 * laddr, dst = the default gateway's MAC when laddr is on the default route's interface.
 * Any part not found gets netinfo_fallback_mac() of the matching address. now_ns
 * (monotonic) decides when cached entries are refreshed. Never fails. */
void netinfo_l2(struct netinfo *ni, const uint8_t laddr[16], const uint8_t raddr[16],
		uint64_t now_ns, struct pkt_l2 *l2);

/* The fallback: 02:ec + the last 4 bytes of the 16-byte address (locally administered,
 * unicast, and distinct per IPv4 address). */
void netinfo_fallback_mac(const uint8_t addr[16], uint8_t mac[6]);

/* Finds the IPv4 default route in /proc/net/route text: interface name into ifname and
 * gateway address (network order) into gw. Returns 0 or -ENOENT. */
int netinfo_parse_route(const char *text, char *ifname, size_t cap, uint8_t gw[4]);
/* Finds a complete entry for ip in /proc/net/arp text. Returns 0 or -ENOENT. */
int netinfo_parse_arp(const char *text, const uint8_t ip[4], uint8_t mac[6]);

#endif
