/* agent/caps.h - least privilege after start-up: the agent keeps only the capabilities
 * its remaining work needs (issue 6).
 * Owns: the effective, permitted, inheritable, ambient and bounding capability sets of
 * the process (raw capget/capset and prctl, no libcap).
 * Does not own: deciding what is needed (main.c passes the set). Not thread-safe: call
 * before any thread that must keep other capabilities starts. */
#ifndef AGENT_CAPS_H
#define AGENT_CAPS_H

#include <stddef.h>
#include <stdint.h>

/* A capability set as a bit mask: bit N is capability N (linux/capability.h). */
#define CAPS_BIT(cap) (1ull << (cap))

/* What the agent still needs once its probes are attached:
 * - discovery on (new libraries hooked later): CAP_BPF + CAP_PERFMON (BPF links, perf
 *   events), CAP_SYS_ADMIN (uprobe perf events; kernels again require it since the
 *   CVE-2025-38466 fix was reverted), CAP_SYS_PTRACE (/proc/PID/maps, /proc/PID/root and
 *   /proc/PID/exe of other users' processes) and CAP_DAC_READ_SEARCH (paths inside
 *   containers' file systems);
 * - discovery off: only CAP_SYS_PTRACE, for the metadata of other users' processes
 *   (/proc/PID/exe and maps); reading the perf buffers and detaching need none. */
uint64_t caps_needed(int auto_discover);

/* Drops every capability not in keep from the bounding, ambient, inheritable, permitted and
 * effective sets (keep is intersected with what the process has). Returns 0 or -errno;
 * on failure nothing is guaranteed dropped. */
int caps_limit(uint64_t keep);

/* Current effective set (capget). Returns 0 or -errno. */
int caps_effective(uint64_t *out);

/* Writes the names of the capabilities in set ("cap_bpf,cap_perfmon", or "none") to out
 * (cap bytes, always terminated). Returns out. */
const char *caps_names(uint64_t set, char *out, size_t cap);

#endif
