/* agent/peer.c - what receives the datagrams sent to a TVN address (peer.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "peer.h"

#define PEER_MAX_SOCKS 16
#define PEER_MAX_NETNS 1024
#define PEER_TEXT_MAX (4 << 20) /* a /proc/net/udp of 30 000 sockets */

static const char *const kind_names[] = {
	[PEER_UNKNOWN] = "unknown",
	[PEER_HARDWARE] = "hardware",
	[PEER_USER] = "user-space socket",
	[PEER_KERNEL] = "kernel socket",
};

const char *peer_kind_name(enum peer_kind k)
{
	return k <= PEER_KERNEL ? kind_names[k] : "?";
}

/* The interface the kernel routes dst through, into name. Returns 0 or -errno. */
static int route_dev(const struct sockaddr_storage *dst, char *name)
{
	struct {
		struct nlmsghdr nh;
		struct rtmsg rt;
		char attrs[64];
	} req;
	union {
		char buf[8192];
		struct nlmsghdr align;
	} resp;
	struct rtattr *a;
	const void *addr;
	size_t alen;
	ssize_t n;
	int fd, err = -ENOENT;

	if (dst->ss_family == AF_INET) {
		addr = &((const struct sockaddr_in *)dst)->sin_addr;
		alen = 4;
	} else {
		addr = &((const struct sockaddr_in6 *)dst)->sin6_addr;
		alen = 16;
	}
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.rt));
	req.nh.nlmsg_type = RTM_GETROUTE;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.rt.rtm_family = (unsigned char)dst->ss_family;
	req.rt.rtm_dst_len = (unsigned char)(alen * 8);
	a = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
	a->rta_type = RTA_DST;
	a->rta_len = (unsigned short)RTA_LENGTH(alen);
	memcpy(RTA_DATA(a), addr, alen);
	req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(a->rta_len);

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
		err = -errno;
		goto cleanup;
	}
	n = recv(fd, resp.buf, sizeof(resp.buf), 0);
	if (n < 0) {
		err = -errno;
		goto cleanup;
	}
	for (struct nlmsghdr *h = &resp.align; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		struct rtmsg *rt = NLMSG_DATA(h);
		int len = (int)RTM_PAYLOAD(h);

		if (h->nlmsg_type == NLMSG_ERROR) {
			err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			break;
		}
		if (h->nlmsg_type != RTM_NEWROUTE)
			continue;
		for (struct rtattr *r = RTM_RTA(rt); RTA_OK(r, len); r = RTA_NEXT(r, len)) {
			uint32_t oif;

			if (r->rta_type != RTA_OIF)
				continue;
			memcpy(&oif, RTA_DATA(r), sizeof(oif));
			err = if_indextoname(oif, name) ? 0 : -errno;
		}
		break;
	}
cleanup:
	close(fd);
	return err;
}

/* A NIC (physical, virtio, SR-IOV: sysfs links it to its bus device) segments a GSO run,
 * or the kernel does before it, so every receiver past it gets plain datagrams. */
static bool dev_is_hardware(const char *name)
{
	char path[64 + IF_NAMESIZE];

	snprintf(path, sizeof(path), "/sys/class/net/%s/device", name);
	return access(path, F_OK) == 0;
}

/* addr as /proc/net/udp{,6} prints it: each 32-bit word of the network-order address
 * as the native integer it is in memory, %08X. */
static void addr_hex(const uint8_t *a, size_t len, char *out)
{
	for (size_t i = 0; i < len; i += 4) {
		uint32_t w;

		memcpy(&w, a + i, 4);
		sprintf(out + 2 * i, "%08X", w);
	}
}

size_t peer_udp_bound(const char *text, const uint8_t addr[16], uint16_t port, bool v6,
		      uint64_t *inodes, size_t max)
{
	static const uint8_t zero[16];
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	char want[33], any[33], want_port[5];
	const char *line = text;
	size_t n = 0;
	bool is_v4 = !memcmp(addr, mapped, 12);

	if (v6) {
		addr_hex(addr, 16, want);
		addr_hex(zero, 16, any); /* a dual-stack socket on :: takes IPv4 too */
	} else {
		if (!is_v4)
			return 0;
		addr_hex(addr + 12, 4, want);
		addr_hex(zero, 4, any);
	}
	snprintf(want_port, sizeof(want_port), "%04X", port);
	while (line && *line && n < max) {
		char local[40], *colon;
		unsigned long long inode;
		const char *next = strchr(line, '\n');

		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, " %*[0-9]: %39s %*s %*s %*s %*s %*s %*s %*s %llu", local,
			   &inode) == 2 &&
		    (colon = strchr(local, ':'))) {
			*colon = '\0';
			if ((!strcmp(local, want) || !strcmp(local, any)) &&
			    !strcmp(colon + 1, want_port))
				inodes[n++] = inode;
		}
		line = next ? next + 1 : NULL;
	}
	return n;
}

static char *read_text(const char *path)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap), *grown;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || !buf) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return NULL;
	}
	while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)r;
		if (cap - len > 1)
			continue;
		if (cap >= PEER_TEXT_MAX)
			break;
		grown = realloc(buf, cap * 2);
		if (!grown)
			break;
		buf = grown;
		cap *= 2;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

/* True if a process in /proc holds socket inode ino (an fd "socket:[ino]"). */
static bool socket_held(uint64_t ino)
{
	char want[48], path[600], link[64];
	struct dirent *p, *f;
	bool held = false;
	DIR *proc, *fds;

	snprintf(want, sizeof(want), "socket:[%" PRIu64 "]", ino);
	proc = opendir("/proc");
	if (!proc)
		return false;
	while (!held && (p = readdir(proc))) {
		if (!isdigit((unsigned char)p->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
		fds = opendir(path);
		if (!fds)
			continue;
		while (!held && (f = readdir(fds))) {
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/%s/fd/%s", p->d_name, f->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			held = !strcmp(link, want);
		}
		closedir(fds);
	}
	closedir(proc);
	return held;
}

/* Searches every network namespace some process is in for UDP sockets bound to
 * addr:port: PEER_KERNEL if one is held by no process, PEER_USER if all are held,
 * PEER_UNKNOWN if there is none. */
static enum peer_kind local_receiver(const uint8_t addr[16], uint16_t port)
{
	uint64_t *seen = calloc(PEER_MAX_NETNS, sizeof(*seen));
	enum peer_kind kind = PEER_UNKNOWN;
	size_t n_seen = 0;
	struct dirent *p;
	DIR *proc;

	proc = seen ? opendir("/proc") : NULL;
	if (!proc) {
		free(seen);
		return PEER_UNKNOWN;
	}
	while (kind != PEER_KERNEL && (p = readdir(proc)) && n_seen < PEER_MAX_NETNS) {
		char path[300];
		struct stat st;
		bool known = false;

		if (!isdigit((unsigned char)p->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", p->d_name);
		if (stat(path, &st))
			continue;
		for (size_t i = 0; i < n_seen && !known; i++)
			known = seen[i] == (uint64_t)st.st_ino;
		if (known)
			continue;
		seen[n_seen++] = st.st_ino;
		for (int v6 = 0; v6 < 2 && kind != PEER_KERNEL; v6++) {
			uint64_t inodes[PEER_MAX_SOCKS];
			size_t n;
			char *text;

			snprintf(path, sizeof(path), "/proc/%s/net/udp%s", p->d_name,
				 v6 ? "6" : "");
			text = read_text(path);
			if (!text)
				continue;
			n = peer_udp_bound(text, addr, port, v6, inodes, PEER_MAX_SOCKS);
			free(text);
			for (size_t i = 0; i < n && kind != PEER_KERNEL; i++)
				kind = socket_held(inodes[i]) ? PEER_USER : PEER_KERNEL;
		}
	}
	closedir(proc);
	free(seen);
	return kind;
}

enum peer_kind peer_classify(const struct sockaddr_storage *dst, char *dev)
{
	uint8_t a16[16] = { [10] = 0xff, [11] = 0xff };
	uint16_t port;

	if (route_dev(dst, dev))
		snprintf(dev, IF_NAMESIZE, "?");
	else if (dev_is_hardware(dev))
		return PEER_HARDWARE;
	if (dst->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)dst;

		memcpy(a16 + 12, &sin->sin_addr, 4);
		port = ntohs(sin->sin_port);
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)dst;

		memcpy(a16, &sin6->sin6_addr, 16);
		port = ntohs(sin6->sin6_port);
	}
	return local_receiver(a16, port);
}
