/* agent/procinfo.h - what the agent reports about the process behind a connection.
 * Owns: reading /proc/PID/{comm,exe,cgroup,net/tcp,net/tcp6} and parsing them (the
 * parsers are pure and take text, so tests feed them strings).
 * Does not own: caching (conn.h asks once per connection). */
#ifndef AGENT_PROCINFO_H
#define AGENT_PROCINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct procinfo {
	char comm[16];
	char exe[256];
	char cgroup[256];   /* the cgroup v2 path ("0::/...") or the first v1 line's path */
	char container[80]; /* docker / containerd / cri-o id, "" when not in a container */
};

/* Fills *out for process pid from procfs (fields it cannot read stay ""). Returns 0,
 * or -errno when the process is gone. */
int procinfo_read(pid_t pid, struct procinfo *out);

/* Path of the first TLS library mapped by process pid (libssl*.so*, libgnutls*.so*; as
 * /proc/PID/maps names it, so a path inside the process's mount namespace), else its
 * executable (statically linked TLS). Returns 0, or -ENOENT with out = "". */
int procinfo_ssl_lib(pid_t pid, char *out, size_t cap);

/* Picks the cgroup path out of /proc/PID/cgroup text into out (cgroup v2 "0::" line
 * preferred, else the first line's path). Returns 0 or -ENOENT. */
int procinfo_cgroup_path(const char *text, char *out, size_t cap);

/* Extracts a container id (64 hex digits as used by docker, containerd and cri-o;
 * forms "docker-<id>.scope", "cri-containerd-<id>.scope", "crio-<id>.scope",
 * "/docker/<id>", "/kubepods/.../<id>") from a cgroup path into out. Returns 0 or
 * -ENOENT when the path names no container. */
int procinfo_container_id(const char *cgroup_path, char *out, size_t cap);

/* True if text (the content of /proc/net/tcp or tcp6) has a LISTEN (state 0A) socket
 * on local port port. */
bool procinfo_tcp_text_listens(const char *text, uint16_t port);

/* True if a TCP socket listens on port in the network namespace of process pid
 * (/proc/PID/net/tcp6 for family AF_INET6, /proc/PID/net/tcp and tcp6 for AF_INET,
 * since dual-stack listeners accept IPv4 too). */
bool procinfo_listens(pid_t pid, int family, uint16_t port);

#endif
