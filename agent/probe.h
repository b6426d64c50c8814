/* agent/probe.h - the BPF side of the agent: load, attach, discover, poll.
 * Owns: the BPF skeleton, uprobes per target library/binary (deduplicated by device and
 * inode), the socket hook chosen by probing (kprobe -> fentry -> tp_btf -> syscalls),
 * automatic discovery of libssl and libgnutls in /proc/PID/maps and of executables
 * carrying OpenSSL or Go's crypto/tls themselves (/proc/PID/exe; containers through
 * /proc/PID/root), and the per-process itab address of Go PIEs.
 * The event transport itself is evbuf.h's.
 * Does not own: what events mean (conn.h) or where frames go (ship.h). */
#ifndef AGENT_PROBE_H
#define AGENT_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ecv_event.h"
#include "sites.h"

/* Perf buffer pages per CPU: one SSL call's events (up to ECV_MAX_CHUNKS x 16 KiB, 1 MiB)
 * are written in a single BPF run, so one CPU's buffer must hold them all: 2 MiB. */
#define PROBE_PERF_PAGES_DEFAULT 512
/* The ring buffer, shared by all CPUs: room for the bursts of the benchmark workloads
 * (tests/bench/agent_bench.sh) without loss. Loss comes when the agent waits for a CPU
 * longer than the ring lasts: 64 MiB is ~0.3 s of a 200 MB/s download (16 MiB lost
 * ~1,400 events per 200 MB download on a busy 2-CPU node; 32 and 64 MiB none:
 * docs/bench-agent.md). */
#define PROBE_RING_BYTES_DEFAULT (64u << 20)
/* Ring wake-ups: once a sixteenth of the ring waits, or the last wake-up is this old. */
#define PROBE_RING_WAKE_DIV 16
#define PROBE_RING_WAKE_MS 20

/* How events reach user space: the BPF ring buffer where the kernel has it (>= 5.8),
 * else the perf event array. */
enum probe_events { PROBE_EVENTS_AUTO = 0, PROBE_EVENTS_RINGBUF, PROBE_EVENTS_PERF };

enum probe_hook {
	PROBE_HOOK_AUTO = 0,
	PROBE_HOOK_KPROBE,
	PROBE_HOOK_FENTRY,
	PROBE_HOOK_TRACEPOINT,
	PROBE_HOOK_SYSCALLS
};

struct probe_cfg {
	const char *const *libs; /* --lib paths */
	size_t n_libs;
	const char *const *bins; /* --bin paths (static OpenSSL/BoringSSL) */
	size_t n_bins;
	const char *const *go_bins; /* --go-bin paths (Go programs, stripped or not) */
	size_t n_go_bins;
	bool auto_discover; /* scan /proc for libssl.so* (rescan every rescan_ms) */
	unsigned rescan_ms; /* default 1000 */
	pid_t pid;	    /* 0 = all processes */
	uint64_t cgroup_id; /* 0 = any (from --cgroup PATH: the directory's inode) */
	uint32_t netns_ino; /* 0 = any (from --netns PATH: stat().st_ino) */
	enum probe_hook hook;
	enum sites_mode sites; /* data-call uprobe sites: auto (internal where proven) */
	enum probe_events events;
	uint64_t ring_bytes; /* power of two; 0 = PROBE_RING_BYTES_DEFAULT; raised (logged)
			      * to hold one whole max_chunks call */
	unsigned perf_pages; /* per CPU, power of two; 0 = PROBE_PERF_PAGES_DEFAULT;
			      * raised (logged) to hold one whole max_chunks call */
	unsigned max_chunks; /* 16 KiB chunks per call, 1..ECV_MAX_CHUNKS */
	/* Discovery found process pid mapping a libssl (it is running now): called with
	 * probe_new()'s ctx, so that who it is can be read before a short-lived client
	 * exits (its events are read up to one poll round later). NULL: not called. */
	void (*on_ssl_process)(void *ctx, pid_t pid);
};

/* One event record of size bytes (>= ECV_EVENT_HDR_LEN, and its len field fits: checked),
 * pointing into the ring and valid during the call only: a ring buffer record is 8-byte
 * aligned, a perf sample is NOT (4 bytes off) and must be copied before its fields are
 * read (reorder_add() does). Handing it on uncopied saves one 16 KiB copy per event.
 * Called from probe_poll(). */
typedef void (*probe_event_fn)(void *ctx, const void *sample, size_t size);
/* Records lost on cpu (-1: the shared ring buffer). */
typedef void (*probe_lost_fn)(void *ctx, int cpu, uint64_t count);

/* Checks privileges and kernel features (one clear logged line each when missing),
 * loads the BPF object, attaches the socket hook and the uprobes of every target.
 * Returns NULL with errno set; nothing stays attached on failure. */
struct probe *probe_new(const struct probe_cfg *cfg, probe_event_fn on_event, probe_lost_fn on_lost,
			void *ctx);
/* Polls the event buffer up to timeout_ms and rescans for new libraries when due.
 * Returns the number of samples handled or -errno. */
int probe_poll(struct probe *p, int timeout_ms);
/* Detaches everything and frees (NULL-safe). Takes about 2 s per hooked library: the
 * kernel waits for a grace period per uprobe removed. */
void probe_free(struct probe *p);

/* Name of the socket hook in use: "kprobe", "fentry", "tracepoint", "syscalls". */
const char *probe_hook_name(const struct probe *p);
int probe_hook_parse(const char *s, enum probe_hook *hook);
/* Event transport in use: "ringbuf" or "perf". */
const char *probe_events_name(const struct probe *p);
int probe_events_parse(const char *s, enum probe_events *events);
/* Number of distinct library/binary files hooked so far. */
unsigned probe_targets(const struct probe *p);
/* Hooked targets whose data function func (enum site_func) is probed at an internal
 * callee (internal) or at its exported symbol. */
unsigned probe_sites(const struct probe *p, int func, bool internal);
/* Hooked targets of one kind (enum target_kind). */
unsigned probe_targets_kind(const struct probe *p, int kind);
/* The verifier's verdict on one program from its statistics log (log level 4): the last
 * message line before the statistics into msg ("" when there is none: the program
 * verified), the instructions it processed into *insns (0 if not said). */
void probe_verifier_verdict(const char *log, char *msg, size_t cap, unsigned long *insns);
/* Calls truncated so far (events with ECV_F_TRUNCATED count once per call). */
uint64_t probe_truncated(const struct probe *p);

#endif
