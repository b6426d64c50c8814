/* agent/procinfo.c - process metadata from procfs. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "procinfo.h"

#define CONTAINER_ID_LEN 64

/* Reads a whole small procfs file into a malloc'd NUL-terminated buffer. procfs files
 * report size 0, so read until EOF. */
static char *read_text(const char *path)
{
	size_t cap = 4096, len = 0;
	char *buf = NULL, *tmp;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	if (!buf)
		goto fail;
	for (;;) {
		if (cap - len < 2) {
			if (cap >= (16u << 20)) /* a net/tcp of 16 MiB is enough to decide */
				break;
			tmp = realloc(buf, cap * 2);
			if (!tmp)
				goto fail;
			buf = tmp;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

int procinfo_cgroup_path(const char *text, char *out, size_t cap)
{
	const char *line = text, *first = NULL, *path, *end;
	size_t n;

	if (!text || cap == 0)
		return -ENOENT;
	while (line && *line) {
		if (!strncmp(line, "0::", 3)) {
			first = line;
			break;
		}
		if (!first)
			first = line;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!first)
		return -ENOENT;
	/* "hierarchy-ID:controllers:path" */
	path = strchr(first, ':');
	path = path ? strchr(path + 1, ':') : NULL;
	if (!path)
		return -ENOENT;
	path++;
	end = strchr(path, '\n');
	n = end ? (size_t)(end - path) : strlen(path);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, path, n);
	out[n] = '\0';
	return 0;
}

static bool is_hex_run(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

int procinfo_container_id(const char *cgroup_path, char *out, size_t cap)
{
	const char *p, *best = NULL;

	if (!cgroup_path || cap <= CONTAINER_ID_LEN)
		return -ENOENT;
	/* The id is the last run of exactly 64 lowercase hex digits bounded by a separator
	 * ('/', '-', ':' before; '/', '.', end after): this covers docker, containerd (cri
	 * and k3s) and cri-o layouts, with systemd and cgroupfs drivers alike. */
	for (p = cgroup_path; *p; p++) {
		if (p != cgroup_path && !strchr("/-:", p[-1]))
			continue;
		if (strnlen(p, CONTAINER_ID_LEN) < CONTAINER_ID_LEN ||
		    !is_hex_run(p, CONTAINER_ID_LEN))
			continue;
		if (p[CONTAINER_ID_LEN] && !strchr("/.", p[CONTAINER_ID_LEN]))
			continue;
		best = p;
	}
	if (!best)
		return -ENOENT;
	memcpy(out, best, CONTAINER_ID_LEN);
	out[CONTAINER_ID_LEN] = '\0';
	return 0;
}

bool procinfo_tcp_text_listens(const char *text, uint16_t port)
{
	const char *line;

	if (!text)
		return false;
	/* Skip the header line; rows read "sl: LADDR:LPORT RADDR:RPORT ST ...", hex. */
	line = strchr(text, '\n');
	while (line && *++line) {
		unsigned lport, state;
		char laddr[64], raddr[80];

		if (sscanf(line, " %*[0-9]: %63[0-9A-Fa-f]:%x %79s %x", laddr, &lport, raddr,
			   &state) == 4 &&
		    state == 0x0A && lport == port)
			return true;
		line = strchr(line, '\n');
	}
	return false;
}

static bool listens_in(pid_t pid, const char *file, uint16_t port)
{
	char path[64];
	char *text;
	bool yes;

	snprintf(path, sizeof(path), "/proc/%d/net/%s", (int)pid, file);
	text = read_text(path);
	yes = procinfo_tcp_text_listens(text, port);
	free(text);
	return yes;
}

bool procinfo_listens(pid_t pid, int family, uint16_t port)
{
	if (family == AF_INET && listens_in(pid, "tcp", port))
		return true;
	return listens_in(pid, "tcp6", port);
}

static void read_line(const char *path, char *out, size_t cap)
{
	char *text = read_text(path);
	size_t n;

	out[0] = '\0';
	if (!text)
		return;
	n = strcspn(text, "\n");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, text, n);
	out[n] = '\0';
	free(text);
}

int procinfo_read(pid_t pid, struct procinfo *out)
{
	char path[64];
	char *text;
	ssize_t n;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (access(path, F_OK) < 0)
		return -errno;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	read_line(path, out->comm, sizeof(out->comm));

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, out->exe, sizeof(out->exe) - 1);
	out->exe[n > 0 ? n : 0] = '\0';

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	text = read_text(path);
	if (text && procinfo_cgroup_path(text, out->cgroup, sizeof(out->cgroup)) == 0)
		procinfo_container_id(out->cgroup, out->container, sizeof(out->container));
	free(text);
	return 0;
}

int procinfo_ssl_lib(pid_t pid, char *out, size_t cap)
{
	char path[64], *line = NULL;
	size_t lcap = 0;
	FILE *f;
	ssize_t n;

	if (cap == 0)
		return -ENOENT;
	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -ENOENT;
	while ((n = getline(&line, &lcap, f)) > 0) {
		char *file = strchr(line, '/');
		char *base;

		if (!file)
			continue;
		file[strcspn(file, "\n")] = '\0';
		base = strrchr(file, '/') + 1;
		if ((!strncmp(base, "libssl", 6) || !strncmp(base, "libgnutls", 9)) &&
		    strstr(base, ".so")) {
			snprintf(out, cap, "%s", file);
			break;
		}
	}
	free(line);
	fclose(f);
	if (out[0])
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, out, cap - 1);
	out[n > 0 ? n : 0] = '\0';
	return n > 0 ? 0 : -ENOENT;
}
