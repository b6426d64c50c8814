/* agent/netinfo.c - interface and gateway MACs, with fallbacks. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "netinfo.h"
#include "tuple.h"

#define NETINFO_CACHE 32
/* Interfaces and neighbours change rarely; re-reading them every few seconds keeps a
 * new gateway entry from being missed without a syscall per frame. */
#define NETINFO_REFRESH_NS (5ull * 1000000000ull)

struct netinfo_entry {
	uint8_t laddr[16];
	uint8_t mac[6];
	char ifname[IF_NAMESIZE];
	int has_mac;
};

struct netinfo {
	struct netinfo_entry cache[NETINFO_CACHE];
	unsigned n_cache;
	char gw_ifname[IF_NAMESIZE];
	uint8_t gw_mac[6];
	int has_gw;
	char *arp; /* /proc/net/arp as last read, for on-link peers */
	uint64_t loaded_ns;
	int loaded;
};

struct netinfo *netinfo_new(void)
{
	return calloc(1, sizeof(struct netinfo));
}

void netinfo_free(struct netinfo *ni)
{
	if (!ni)
		return;
	free(ni->arp);
	free(ni);
}

void netinfo_fallback_mac(const uint8_t addr[16], uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = 0xec;
	memcpy(mac + 2, addr + 12, 4);
}

int netinfo_parse_route(const char *text, char *ifname, size_t cap, uint8_t gw[4])
{
	const char *line;

	if (!text)
		return -ENOENT;
	line = strchr(text, '\n'); /* header */
	while (line && *++line) {
		char name[IF_NAMESIZE + 1];
		unsigned long dst, gwv, mask;
		unsigned flags;

		if (sscanf(line, "%16s %lx %lx %x %*d %*d %*d %lx", name, &dst, &gwv, &flags,
			   &mask) == 5 &&
		    dst == 0 && mask == 0 && (flags & 0x1 /* RTF_UP */)) {
			/* The kernel prints the __be32 as a host integer: copying the
			 * integer's bytes gives back network order on any endianness. */
			uint32_t v = (uint32_t)gwv;

			memcpy(gw, &v, 4);
			snprintf(ifname, cap, "%s", name);
			return 0;
		}
		line = strchr(line, '\n');
	}
	return -ENOENT;
}

int netinfo_parse_arp(const char *text, const uint8_t ip[4], uint8_t mac[6])
{
	char want[INET_ADDRSTRLEN];
	const char *line;

	if (!text || !inet_ntop(AF_INET, ip, want, sizeof(want)))
		return -ENOENT;
	line = strchr(text, '\n');
	while (line && *++line) {
		char addr[64];
		unsigned type, flags, m[6];

		if (sscanf(line, "%63s %x %x %x:%x:%x:%x:%x:%x", addr, &type, &flags, &m[0], &m[1],
			   &m[2], &m[3], &m[4], &m[5]) == 9 &&
		    !strcmp(addr, want) && (flags & 0x2 /* ATF_COM */)) {
			for (int i = 0; i < 6; i++)
				mac[i] = (uint8_t)m[i];
			return 0;
		}
		line = strchr(line, '\n');
	}
	return -ENOENT;
}

static char *slurp(const char *path)
{
	char *buf = NULL;
	size_t cap = 0;
	FILE *f;
	ssize_t n;

	f = fopen(path, "re");
	if (!f)
		return NULL;
	n = getdelim(&buf, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int mac_is_zero(const uint8_t mac[6])
{
	static const uint8_t zero[6];

	return memcmp(mac, zero, 6) == 0;
}

/* Re-reads every interface address and the default gateway into the cache. */
static void netinfo_load(struct netinfo *ni)
{
	struct ifaddrs *ifs = NULL, *i, *j;
	uint8_t gw[4];
	char *text;

	ni->n_cache = 0;
	ni->has_gw = 0;
	ni->gw_ifname[0] = '\0';
	if (getifaddrs(&ifs) == 0) {
		for (i = ifs; i && ni->n_cache < NETINFO_CACHE; i = i->ifa_next) {
			struct netinfo_entry *e = &ni->cache[ni->n_cache];

			if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET &&
					     i->ifa_addr->sa_family != AF_INET6))
				continue;
			memset(e, 0, sizeof(*e));
			if (i->ifa_addr->sa_family == AF_INET) {
				const struct sockaddr_in *sin = (const void *)i->ifa_addr;

				tuple_addr_from_v4(e->laddr, (const uint8_t *)&sin->sin_addr);
			} else {
				const struct sockaddr_in6 *sin6 = (const void *)i->ifa_addr;

				memcpy(e->laddr, &sin6->sin6_addr, 16);
			}
			snprintf(e->ifname, sizeof(e->ifname), "%s", i->ifa_name);
			for (j = ifs; j; j = j->ifa_next) {
				const struct sockaddr_ll *ll = (const void *)j->ifa_addr;

				if (!ll || ll->sll_family != AF_PACKET || ll->sll_halen != 6 ||
				    strcmp(j->ifa_name, i->ifa_name))
					continue;
				memcpy(e->mac, ll->sll_addr, 6);
				e->has_mac = !mac_is_zero(e->mac);
			}
			ni->n_cache++;
		}
		freeifaddrs(ifs);
	}

	free(ni->arp);
	ni->arp = slurp("/proc/net/arp");
	text = slurp("/proc/net/route");
	if (netinfo_parse_route(text, ni->gw_ifname, sizeof(ni->gw_ifname), gw) == 0)
		ni->has_gw = netinfo_parse_arp(ni->arp, gw, ni->gw_mac) == 0;
	free(text);
}

void netinfo_l2(struct netinfo *ni, const uint8_t laddr[16], const uint8_t raddr[16],
		uint64_t now_ns, struct pkt_l2 *l2)
{
	const struct netinfo_entry *e = NULL;

	memset(l2, 0, sizeof(*l2));
	netinfo_fallback_mac(laddr, l2->src);
	netinfo_fallback_mac(raddr, l2->dst);
	if (!ni)
		return;
	if (!ni->loaded || now_ns - ni->loaded_ns > NETINFO_REFRESH_NS) {
		netinfo_load(ni);
		ni->loaded = 1;
		ni->loaded_ns = now_ns;
	}
	for (unsigned k = 0; k < ni->n_cache; k++) {
		if (!memcmp(ni->cache[k].laddr, laddr, 16)) {
			e = &ni->cache[k];
			break;
		}
	}
	if (!e)
		return; /* the process lives in another network namespace */
	if (e->has_mac)
		memcpy(l2->src, e->mac, 6);
	/* An on-link peer in the neighbour table is its own next hop; otherwise the
	 * gateway's MAC is the next hop for traffic leaving through the default route's
	 * interface; loopback peers keep the derived address. */
	if (tuple_addr_is_v4(raddr) && netinfo_parse_arp(ni->arp, raddr + 12, l2->dst) == 0)
		return;
	if (ni->has_gw && !strcmp(e->ifname, ni->gw_ifname))
		memcpy(l2->dst, ni->gw_mac, 6);
}
