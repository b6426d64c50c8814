/* agent/probe.c - the BPF side of the agent: load, attach, discover, poll. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "ecv.skel.h"
#include "evbuf.h"
#include "log.h"
#include "probe.h"
#include "sites.h"
#include "targets.h"

/* Pin the BPF <-> user ABI (common/ecv_event.h): a change here is a wire change. */
_Static_assert(sizeof(struct ecv_event) == 112 + ECV_CHUNK_SIZE, "ecv_event size changed");
_Static_assert(ECV_EVENT_HDR_LEN == 112, "ecv_event header size changed");

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

#define PROBE_BTF_PATH "/sys/kernel/btf/vmlinux"

/* One hooked library or binary file, known by (device, inode) whatever path led to it. */
struct probe_target {
	dev_t dev;
	ino_t ino;
	char *path;
	struct bpf_link **links;
	size_t n_links;
	struct sites sites;	/* where its data calls are probed (OpenSSL) */
	uint64_t go_itab;	/* Go PIE: link-time *net.TCPConn itab, placed per process */
	uint64_t go_load_vaddr; /* Go PIE: link-time address of its file offset 0 */
	enum target_kind kind;
	bool hooked; /* false: tried and refused (no symbols), or no TLS stack; not retried */
};

/* A process as of the last discovery scan. */
struct pid_seen {
	pid_t pid;
	uint64_t start; /* start time: a reused pid is a new process */
	uint64_t vsize; /* address-space size: changes when libraries are mapped */
};

struct probe {
	struct ecv_bpf *skel;
	struct evbuf *events;
	uint64_t ring_bytes; /* ring buffer size; 0: the perf buffer carries events */
	bool have_ringbuf;   /* the kernel has BPF_MAP_TYPE_RINGBUF (>= 5.8) */
	enum probe_hook hook;
	struct bpf_link **hook_links; /* socket hook + role tracepoint */
	size_t n_hook_links;
	struct probe_target *targets;
	size_t n_targets;
	uint32_t gnutls_disp; /* gnutls_fd_disp's value (0: not used) */
	bool gnutls_disp_set; /* a GnuTLS library is hooked */
	bool auto_discover;
	enum sites_mode sites_mode;
	unsigned rescan_ms;
	pid_t pid;
	uint64_t next_scan_ms;
	uint64_t busy_calls;   /* BPF busy_calls already reported */
	struct pid_seen *seen; /* sorted by pid */
	size_t n_seen;
	struct evbuf_sink sink;
	void (*on_ssl_process)(void *ctx, pid_t pid);
};

/* An uprobe to place on every target: function, program, entry or return. Data calls
 * (site >= 0) go where sites_choose() says: at an internal callee, the plain variant's
 * spec attaches internal_prog there and the _ex variant's, sharing that callee, none. */
struct uprobe_spec {
	const char *func;
	const char *prog;
	bool retprobe;
	bool required; /* a target without it is not an SSL library */
	int site;      /* enum site_func, or -1 */
	const char *internal_prog;
};

static const struct uprobe_spec uprobe_specs[] = {
	{ "SSL_write", "ssl_write_enter", false, true, SITE_SSL_WRITE, "ssl_write_ex_enter" },
	{ "SSL_write", "ssl_data_exit", true, true, SITE_SSL_WRITE, "ssl_data_exit" },
	{ "SSL_read", "ssl_read_enter", false, true, SITE_SSL_READ, "ssl_read_ex_enter" },
	{ "SSL_read", "ssl_data_exit", true, true, SITE_SSL_READ, "ssl_data_exit" },
	{ "SSL_write_ex", "ssl_write_ex_enter", false, false, SITE_SSL_WRITE_EX, NULL },
	{ "SSL_write_ex", "ssl_data_exit", true, false, SITE_SSL_WRITE_EX, NULL },
	{ "SSL_read_ex", "ssl_read_ex_enter", false, false, SITE_SSL_READ_EX, NULL },
	{ "SSL_read_ex", "ssl_data_exit", true, false, SITE_SSL_READ_EX, NULL },
	{ "SSL_new", "ssl_new_exit", true, false, -1, NULL },
	{ "SSL_set_connect_state", "ssl_set_state_enter", false, false, -1, NULL },
	{ "SSL_set_accept_state", "ssl_set_state_enter", false, false, -1, NULL },
	{ "SSL_do_handshake", "ssl_handshake_enter", false, false, -1, NULL },
	{ "SSL_do_handshake", "ssl_handshake_exit", true, false, -1, NULL },
	{ "SSL_connect", "ssl_handshake_enter", false, false, -1, NULL },
	{ "SSL_connect", "ssl_handshake_exit", true, false, -1, NULL },
	{ "SSL_accept", "ssl_handshake_enter", false, false, -1, NULL },
	{ "SSL_accept", "ssl_handshake_exit", true, false, -1, NULL },
	{ "SSL_shutdown", "ssl_shutdown_enter", false, false, -1, NULL },
	{ "SSL_free", "ssl_free_enter", false, false, -1, NULL },
};

static const char *const hook_names[] = {
	[PROBE_HOOK_AUTO] = "auto",	    [PROBE_HOOK_KPROBE] = "kprobe",
	[PROBE_HOOK_FENTRY] = "fentry",	    [PROBE_HOOK_TRACEPOINT] = "tracepoint",
	[PROBE_HOOK_SYSCALLS] = "syscalls",
};

/* Programs of each socket hook, NULL-terminated; only the chosen hook's are loaded. */
#define HOOK_PROGS_MAX 9 /* 8 syscall tracepoints + NULL */
static const char *const hook_progs[][HOOK_PROGS_MAX] = {
	[PROBE_HOOK_KPROBE] = { "tcp_sendmsg_kprobe", "tcp_recvmsg_kprobe" },
	[PROBE_HOOK_FENTRY] = { "tcp_sendmsg_fentry", "tcp_recvmsg_fentry" },
	[PROBE_HOOK_TRACEPOINT] = { "sock_send_length_btf", "sock_recv_length_btf" },
	[PROBE_HOOK_SYSCALLS] = { "sys_enter_write", "sys_enter_writev", "sys_enter_sendto",
				  "sys_enter_sendmsg", "sys_enter_read", "sys_enter_readv",
				  "sys_enter_recvfrom", "sys_enter_recvmsg" },
};

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf's own warnings are expected while probing hooks: all of it is detail. */
	(void)level;
	if (log_get_level() >= LOG_DEBUG)
		log_vmsg(LOG_DEBUG, fmt, ap);
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *probe_hook_name(const struct probe *p)
{
	return p ? hook_names[p->hook] : "none";
}

static const char *const events_names[] = {
	[PROBE_EVENTS_AUTO] = "auto",
	[PROBE_EVENTS_RINGBUF] = "ringbuf",
	[PROBE_EVENTS_PERF] = "perf",
};

const char *probe_events_name(const struct probe *p)
{
	return p ? events_names[p->ring_bytes ? PROBE_EVENTS_RINGBUF : PROBE_EVENTS_PERF] : "none";
}

int probe_events_parse(const char *s, enum probe_events *events)
{
	for (size_t i = 0; i < sizeof(events_names) / sizeof(events_names[0]); i++) {
		if (s && !strcmp(s, events_names[i])) {
			*events = (enum probe_events)i;
			return 0;
		}
	}
	return -EINVAL;
}

int probe_hook_parse(const char *s, enum probe_hook *hook)
{
	for (size_t i = 0; i < sizeof(hook_names) / sizeof(hook_names[0]); i++) {
		if (s && !strcmp(s, hook_names[i])) {
			*hook = (enum probe_hook)i;
			return 0;
		}
	}
	return -EINVAL;
}

unsigned probe_targets(const struct probe *p)
{
	unsigned n = 0;

	for (size_t i = 0; p && i < p->n_targets; i++)
		n += p->targets[i].hooked;
	return n;
}

unsigned probe_sites(const struct probe *p, int func, bool internal)
{
	unsigned n = 0;

	for (size_t i = 0; p && func >= 0 && func < SITE_N && i < p->n_targets; i++) {
		const struct site *s = &p->targets[i].sites.f[func];

		n += p->targets[i].hooked && p->targets[i].kind == TARGET_OPENSSL && s->present &&
		     s->internal == internal;
	}
	return n;
}

unsigned probe_targets_kind(const struct probe *p, int kind)
{
	unsigned n = 0;

	for (size_t i = 0; p && i < p->n_targets; i++)
		n += p->targets[i].hooked && (int)p->targets[i].kind == kind;
	return n;
}

uint64_t probe_truncated(const struct probe *p)
{
	if (!p || !p->skel || !p->skel->bss)
		return 0;
	return __atomic_load_n(&p->skel->bss->truncated_calls, __ATOMIC_RELAXED);
}

/* --- preconditions ------------------------------------------------------------------ */

static int check_caps(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	uint64_t eff;

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	eff = (uint64_t)data[1].effective << 32 | data[0].effective;
	if (eff & (1ULL << CAP_SYS_ADMIN))
		return 0;
	if ((eff & (1ULL << CAP_BPF)) && (eff & (1ULL << CAP_PERFMON)))
		return 0;
	return -EPERM;
}

static int check_kernel(void)
{
	if (access(PROBE_BTF_PATH, R_OK)) {
		log_err("failed to load BPF programs: kernel has no BTF (%s missing, "
			"CONFIG_DEBUG_INFO_BTF=y needed)",
			PROBE_BTF_PATH);
		return -EOPNOTSUPP;
	}
	if (access("/sys/bus/event_source/devices/uprobe/type", R_OK) &&
	    access("/sys/kernel/tracing/uprobe_events", R_OK) &&
	    access("/sys/kernel/debug/tracing/uprobe_events", R_OK)) {
		log_err("failed to attach uprobes: kernel without uprobes "
			"(CONFIG_UPROBE_EVENTS=y needed)");
		return -EOPNOTSUPP;
	}
	/* Classic tracepoints are found through tracefs; minimal hosts may not mount it. */
	if (access("/sys/kernel/tracing/events", F_OK) &&
	    access("/sys/kernel/debug/tracing/events", F_OK)) {
		if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
			log_warn("failed to mount tracefs on /sys/kernel/tracing: %s",
				 strerror(errno));
		else
			log_info("mounted tracefs on /sys/kernel/tracing");
	}
	return 0;
}

/* --- loading and the socket hook ---------------------------------------------------- */

static void destroy_links(struct bpf_link **links, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bpf_link__destroy(links[i]);
	free(links);
}

static int push_link(struct bpf_link ***links, size_t *n, struct bpf_link *l)
{
	struct bpf_link **grown = realloc(*links, (*n + 1) * sizeof(**links));

	if (!grown)
		return -ENOMEM;
	grown[(*n)++] = l;
	*links = grown;
	return 0;
}

static int attach_prog(struct probe *p, const char *name)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(p->skel->obj, name);
	struct bpf_link *l;
	int err;

	if (!prog)
		return -ENOENT;
	l = bpf_program__attach(prog);
	if (!l)
		return -errno;
	err = push_link(&p->hook_links, &p->n_hook_links, l);
	if (err)
		bpf_link__destroy(l);
	return err;
}

static void unload(struct probe *p)
{
	destroy_links(p->hook_links, p->n_hook_links);
	p->hook_links = NULL;
	p->n_hook_links = 0;
	ecv_bpf__destroy(p->skel);
	p->skel = NULL;
}

/* Sizes the ring buffer map: the configured ring, a page when the perf buffer carries
 * the events, or on a kernel without ring buffers a one-slot array in its place (the
 * programs' ring path is dead code then, never verified, but its map must exist). */
static int ring_map_setup(struct probe *p)
{
	struct bpf_map *ring = p->skel->maps.ring;
	int err;

	p->skel->rodata->use_ringbuf = p->ring_bytes != 0;
	if (p->ring_bytes) {
		p->skel->rodata->ring_wake_bytes = p->ring_bytes / PROBE_RING_WAKE_DIV;
		p->skel->rodata->ring_wake_ns = PROBE_RING_WAKE_MS * 1000000ull;
		return bpf_map__set_max_entries(ring, (__u32)p->ring_bytes);
	}
	if (p->have_ringbuf)
		return bpf_map__set_max_entries(ring, (__u32)sysconf(_SC_PAGESIZE));
	err = bpf_map__set_type(ring, BPF_MAP_TYPE_ARRAY);
	if (!err)
		err = bpf_map__set_key_size(ring, sizeof(__u32));
	if (!err)
		err = bpf_map__set_value_size(ring, sizeof(__u32));
	if (!err)
		err = bpf_map__set_max_entries(ring, 1);
	return err;
}

void probe_verifier_verdict(const char *log, char *msg, size_t cap, unsigned long *insns)
{
	const char *line = log, *end;

	msg[0] = '\0';
	*insns = 0;
	for (; line && *line; line = *end ? end + 1 : end) {
		size_t n;

		end = strchrnul(line, '\n');
		n = (size_t)(end - line);
		if (!n || !strncmp(line, "verification time", 17) ||
		    !strncmp(line, "stack depth", 11))
			continue;
		if (sscanf(line, "processed %lu insns", insns) == 1)
			continue;
		snprintf(msg, cap, "%.*s", (int)(n < cap ? n : cap - 1), line);
	}
}

/* Per-program verifier logs of one load attempt (statistics level: cheap, and the
 * verdict of a refused program survives whatever its size). */
struct load_logs {
	char *buf;
	size_t n;
};

#define PROBE_LOG_SIZE 16384
#define PROBE_NAME_MAX 64

static int load_logs_set(struct load_logs *l, struct bpf_object *obj)
{
	struct bpf_program *prog;
	size_t i = 0;

	l->n = 0;
	bpf_object__for_each_program(prog, obj) l->n++;
	l->buf = calloc(l->n ? l->n : 1, PROBE_LOG_SIZE);
	if (!l->buf)
		return -ENOMEM;
	bpf_object__for_each_program(prog, obj)
	{
		bpf_program__set_log_buf(prog, l->buf + i++ * PROBE_LOG_SIZE, PROBE_LOG_SIZE);
		bpf_program__set_log_level(prog, 4); /* BPF_LOG_STATS */
	}
	return 0;
}

/* After a load: the refused program (with its verdict in why) or, after a success, the
 * program that cost the verifier most. Programs load in order and a failed load closes
 * them all: the refused one is the first whose log holds a message (a verified one's has
 * statistics only), or the first with no log after verified ones (refused before
 * verification). */
static const char *load_logs_verdict(struct bpf_object *obj, bool failed, char *why, size_t cap,
				     unsigned long *insns)
{
	struct bpf_program *prog;
	const char *name = NULL, *first_empty = NULL;
	bool verified_some = false;
	char msg[256];
	unsigned long n;

	*insns = 0;
	why[0] = '\0';
	bpf_object__for_each_program(prog, obj)
	{
		size_t size;
		const char *log = bpf_program__log_buf(prog, &size);

		if (!bpf_program__autoload(prog))
			continue;
		if (!log || !*log) {
			if (verified_some && !first_empty)
				first_empty = bpf_program__name(prog);
			continue;
		}
		probe_verifier_verdict(log, msg, sizeof(msg), &n);
		if (failed && msg[0]) {
			snprintf(why, cap, "%s", msg);
			*insns = n;
			return bpf_program__name(prog);
		}
		verified_some = true;
		if (!failed && n >= *insns) {
			*insns = n;
			name = bpf_program__name(prog);
		}
	}
	return failed ? first_empty : name;
}

static bool is_hook_prog(const char *name, enum probe_hook hook)
{
	for (size_t i = 0; i < HOOK_PROGS_MAX && hook_progs[hook][i]; i++)
		if (!strcmp(name, hook_progs[hook][i]))
			return true;
	return false;
}

/* Opens, configures, loads the object with only hook's socket programs and attaches
 * them. *stage says which step failed; a program the kernel refused is named in
 * refused (else "") with the verifier's verdict in why. Returns 0 or -errno (everything
 * undone). */
static int load_with_hook(struct probe *p, const struct probe_cfg *cfg, enum probe_hook hook,
			  const char **stage, char refused[PROBE_NAME_MAX], char *why,
			  size_t why_cap)
{
	struct load_logs logs = { 0 };
	struct bpf_program *prog;
	unsigned long insns;
	uint64_t t0;
	const char *name;
	int err;

	*stage = "open";
	refused[0] = '\0';
	p->skel = ecv_bpf__open();
	if (!p->skel)
		return -errno;
	p->skel->rodata->filter_tgid = cfg->pid > 0 ? (uint32_t)cfg->pid : 0;
	p->skel->rodata->filter_cgroup_id = cfg->cgroup_id;
	p->skel->rodata->filter_netns = cfg->netns_ino;
	p->skel->rodata->max_chunks = cfg->max_chunks;
	err = ring_map_setup(p);
	if (err)
		goto fail;

	for (prog = bpf_object__next_program(p->skel->obj, NULL); prog;
	     prog = bpf_object__next_program(p->skel->obj, prog)) {
		const char *pname = bpf_program__name(prog);
		bool is_hook = false;

		for (int h = PROBE_HOOK_KPROBE; h <= PROBE_HOOK_SYSCALLS; h++)
			is_hook |= is_hook_prog(pname, (enum probe_hook)h);
		if (is_hook)
			bpf_program__set_autoload(prog, is_hook_prog(pname, hook));
	}
	err = load_logs_set(&logs, p->skel->obj);
	if (err)
		goto fail;
	*stage = "load";
	t0 = now_ms();
	err = ecv_bpf__load(p->skel);
	name = load_logs_verdict(p->skel->obj, err != 0, why, why_cap, &insns);
	if (err) {
		if (name)
			snprintf(refused, PROBE_NAME_MAX, "%s", name);
		goto fail;
	}
	t0 = now_ms() - t0;
	*stage = "attach";
	for (size_t i = 0; i < HOOK_PROGS_MAX && hook_progs[hook][i]; i++) {
		err = attach_prog(p, hook_progs[hook][i]);
		if (err)
			goto fail;
	}
	log_info("BPF programs verified and loaded in %.1f s (most work: %s, %lu "
		 "instructions processed)",
		 (double)t0 / 1000.0, name ? name : "?", insns);
	free(logs.buf);
	return 0;
fail:
	unload(p);
	free(logs.buf);
	return err;
}

/* Why a hook is commonly refused, for the one-line error of a forced hook. */
static const char *hook_hint(enum probe_hook hook, int err)
{
	if (hook == PROBE_HOOK_KPROBE && access("/sys/bus/event_source/devices/kprobe", F_OK))
		return " (kernel without kprobes: CONFIG_KPROBES is not set)";
	if (hook == PROBE_HOOK_FENTRY && err == -EPERM)
		return " (BPF trampolines refused by this kernel)";
	/* libbpf finds no btf_trace_sock_send_length in the kernel's BTF. */
	if (hook == PROBE_HOOK_TRACEPOINT && (err == -ESRCH || err == -EINVAL))
		return " (kernel without tracepoint sock/sock_send_length: Linux >= 6.3 has it)";
	return "";
}

/* Why hook cannot work on this kernel, found without loading anything (a load costs
 * seconds under emulation); NULL when it may work. */
static const char *hook_missing(enum probe_hook hook)
{
	struct btf *vmlinux;
	bool found;

	if (hook == PROBE_HOOK_KPROBE && access("/sys/bus/event_source/devices/kprobe", F_OK))
		return "kernel without kprobes: CONFIG_KPROBES is not set";
	if (hook != PROBE_HOOK_TRACEPOINT)
		return NULL;
	vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux)
		return NULL; /* the load will say */
	found = btf__find_by_name_kind(vmlinux, "btf_trace_sock_send_length", BTF_KIND_TYPEDEF) > 0;
	btf__free(vmlinux);
	return found ? NULL
		     : "kernel without tracepoint sock/sock_send_length (Linux >= 6.3 has it)";
}

static int load_bpf(struct probe *p, const struct probe_cfg *cfg)
{
	enum probe_hook order[] = { PROBE_HOOK_KPROBE, PROBE_HOOK_FENTRY, PROBE_HOOK_TRACEPOINT,
				    PROBE_HOOK_SYSCALLS };
	size_t first = 0, last = 3;
	char refused[PROBE_NAME_MAX], why[320];
	const char *stage;
	int err = -ENOENT;

	if (cfg->hook != PROBE_HOOK_AUTO) {
		for (size_t i = 0; i < 4; i++)
			if (order[i] == cfg->hook)
				first = last = i;
	}
	for (size_t i = first; i <= last; i++) {
		const char *missing = hook_missing(order[i]);

		if (missing && cfg->hook != PROBE_HOOK_AUTO) {
			log_err("failed to load socket hook %s: %s", hook_names[order[i]], missing);
			return -EOPNOTSUPP;
		}
		if (missing) {
			err = -EOPNOTSUPP;
			log_info("socket hook %s unavailable: %s; trying the next one",
				 hook_names[order[i]], missing);
			continue;
		}
		err = load_with_hook(p, cfg, order[i], &stage, refused, why, sizeof(why));
		if (!err) {
			p->hook = order[i];
			log_info("socket hook: %s%s", hook_names[order[i]],
				 cfg->hook == PROBE_HOOK_AUTO ? " (the first that works of kprobe, "
								"fentry, tracepoint, syscalls)"
							      : " (forced)");
			break;
		}
		/* A capture program refused: no other socket hook can help. */
		if (refused[0] && !is_hook_prog(refused, order[i])) {
			log_err("failed to load BPF program %s: %s%s%s", refused, strerror(-err),
				why[0] ? ": " : "", why);
			return err;
		}
		if (cfg->hook != PROBE_HOOK_AUTO) {
			if (refused[0])
				log_err("failed to load socket hook %s: program %s: %s%s%s%s",
					hook_names[order[i]], refused, strerror(-err),
					why[0] ? ": " : "", why, hook_hint(order[i], err));
			else
				log_err("failed to %s socket hook %s: %s%s", stage,
					hook_names[order[i]], strerror(-err),
					hook_hint(order[i], err));
			return err;
		}
		/* Expected on kernels without kprobes or with trampolines refused. */
		if (refused[0])
			log_info("socket hook %s refused at load: program %s: %s%s%s%s; trying "
				 "the next one",
				 hook_names[order[i]], refused, strerror(-err), why[0] ? ": " : "",
				 why, hook_hint(order[i], err));
		else
			log_info("socket hook %s refused at %s: %s%s; trying the next one",
				 hook_names[order[i]], stage, strerror(-err),
				 hook_hint(order[i], err));
	}
	if (err) {
		log_err("failed to load BPF programs: no socket hook works on this kernel");
		return err;
	}
	/* Roles are an improvement, not a requirement: user space falls back to the
	 * listening sockets when the kernel cannot tell. */
	err = attach_prog(p, "inet_sock_set_state");
	if (err)
		log_warn("failed to attach tracepoint sock/inet_sock_set_state: %s "
			 "(roles from listening sockets only)",
			 strerror(-err));
	return 0;
}

/* --- targets ------------------------------------------------------------------------ */

static struct probe_target *target_find(struct probe *p, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < p->n_targets; i++)
		if (p->targets[i].dev == dev && p->targets[i].ino == ino)
			return &p->targets[i];
	return NULL;
}

static void target_release(struct probe_target *t)
{
	destroy_links(t->links, t->n_links);
	t->links = NULL;
	t->n_links = 0;
	free(t->path);
	t->path = NULL;
}

/* Says where each data call of t is probed, one line per function. */
static void log_sites(const struct probe_target *t)
{
	for (int f = 0; f < SITE_N; f++) {
		const struct site *s = &t->sites.f[f];

		if (!s->present)
			continue;
		if (s->internal)
			log_info("%s: %s -> %s @0x%" PRIx64 " (%s)", t->path, sites_func_name(f),
				 s->callee[0] ? s->callee : "internal function", s->offset, s->why);
		else
			log_info("%s: %s at the exported symbol (%s)", t->path, sites_func_name(f),
				 s->why);
	}
}

/* Attaches program prog_name to path at func (or at the file offset when func is NULL)
 * and keeps the link in t. Returns 0 or -errno. */
static int attach_one(struct probe *p, struct probe_target *t, const char *path, const char *func,
		      size_t offset, const char *prog_name, bool retprobe)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = func, .retprobe = retprobe);
	struct bpf_program *prog = bpf_object__find_program_by_name(p->skel->obj, prog_name);
	struct bpf_link *l;
	int err;

	if (!prog)
		return -ENOENT;
	l = bpf_program__attach_uprobe_opts(prog, p->pid > 0 ? p->pid : -1, path, offset, &opts);
	if (!l)
		return -errno;
	err = push_link(&t->links, &t->n_links, l);
	if (err)
		bpf_link__destroy(l);
	return err;
}

/* Tells BPF where a session keeps its transport fd. One value serves every hooked GnuTLS:
 * two versions that disagree turn it off (the kernel socket hook still gives tuples). */
static void gnutls_set_disp(struct probe *p, const char *path, const struct sites_gnutls *g)
{
	uint32_t zero = 0, disp = g->fd_known ? g->fd_disp : 0;
	int fd = bpf_map__fd(p->skel->maps.gnutls_fd_disp);

	if (p->gnutls_disp_set && p->gnutls_disp != disp) {
		log_warn("%s: gnutls_transport_get_int reads 0x%x(session), another hooked GnuTLS "
			 "0x%x: transport fds not used",
			 path, disp, p->gnutls_disp);
		disp = 0;
	} else if (g->fd_known) {
		log_info("%s: gnutls_transport_get_int reads 0x%x(session)", path, disp);
	} else {
		log_info("%s: gnutls_transport_get_int not decoded: transport fd not used", path);
	}
	p->gnutls_disp_set = true;
	p->gnutls_disp = disp;
	if (bpf_map_update_elem(fd, &zero, &disp, BPF_ANY))
		log_warn("failed to set the GnuTLS transport field: %s", strerror(errno));
}

/* A target whose code does not fit its stack's pattern: an error when the operator named
 * it (--lib/--bin), a note when discovery found it. Returns err. */
static int target_refused(const char *path, bool explicit, const char *why, int err)
{
	if (explicit)
		log_err("failed to hook %s: %s", path, why);
	else
		log_info("not hooking %s: %s", path, why);
	return err;
}

/* GnuTLS: the data sites sites_gnutls() finds, the session's life through the OpenSSL
 * programs (they take the session as they take the SSL object). On failure nothing
 * stays attached. */
static int gnutls_attach(struct probe *p, struct probe_target *t, const char *path, bool explicit)
{
	static const struct {
		const char *func;
		const char *prog;
		bool retprobe;
	} life[] = {
		{ "gnutls_handshake", "ssl_handshake_enter", false },
		{ "gnutls_handshake", "ssl_handshake_exit", true },
		{ "gnutls_bye", "ssl_shutdown_enter", false },
		{ "gnutls_deinit", "ssl_free_enter", false },
	};
	struct sites_gnutls g;
	char why[128];
	int err;

	err = sites_gnutls(path, &g, why, sizeof(why));
	if (err) {
		return target_refused(path, explicit, why, err);
	}
	err = attach_one(p, t, path, NULL, g.send_offset, "gnutls_send_enter", false);
	err = err ?: attach_one(p, t, path, NULL, g.send_offset, "lib_data_exit", true);
	err = err ?: attach_one(p, t, path, NULL, g.recv_offset, "gnutls_recv_enter", false);
	err = err ?: attach_one(p, t, path, NULL, g.recv_offset, "lib_data_exit", true);
	if (err) {
		log_err("failed to hook %s: cannot attach to its data functions: %s", path,
			strerror(-err));
		goto fail;
	}
	for (size_t i = 0; i < sizeof(life) / sizeof(life[0]); i++) {
		err = attach_one(p, t, path, life[i].func, 0, life[i].prog, life[i].retprobe);
		if (err) {
			log_err("failed to hook %s: cannot attach to %s: %s", path, life[i].func,
				strerror(-err));
			goto fail;
		}
	}
	log_info("%s: gnutls_record_send -> gnutls_record_send2 @0x%" PRIx64 " (%s)", path,
		 g.send_offset, g.send_why);
	log_info("%s: gnutls_record_recv -> receiver @0x%" PRIx64 " (%s)", path, g.recv_offset,
		 g.recv_why);
	gnutls_set_disp(p, path, &g);
	return 0;
fail:
	destroy_links(t->links, t->n_links);
	t->links = NULL;
	t->n_links = 0;
	return err;
}

/* NSS: libssl3 tells which descriptors carry TLS (SSL_ImportFD's result) and when a
 * handshake starts; libnspr4's exported I/O calls carry the data (the SSL layer's own
 * methods are static). Each file gets its own list. */
struct lib_spec {
	const char *func;
	const char *prog;
	bool retprobe;
};

static const struct lib_spec nss_ssl3_specs[] = {
	{ "SSL_ImportFD", "nss_import_exit", true },
	{ "SSL_ResetHandshake", "ssl_set_state_enter", false },
	{ "SSL_ForceHandshake", "ssl_handshake_enter", false },
	{ "SSL_ForceHandshake", "ssl_handshake_exit", true },
};

static const struct lib_spec nss_nspr4_specs[] = {
	{ "PR_Write", "nss_write_enter", false }, { "PR_Write", "lib_data_exit", true },
	{ "PR_Send", "nss_write_enter", false },  { "PR_Send", "lib_data_exit", true },
	{ "PR_Read", "nss_read_enter", false },	  { "PR_Read", "lib_data_exit", true },
	{ "PR_Recv", "nss_read_enter", false },	  { "PR_Recv", "lib_data_exit", true },
	{ "PR_Close", "nss_close_enter", false },
};

static int nss_attach(struct probe *p, struct probe_target *t, const char *path, bool explicit)
{
	const struct lib_spec *specs = nss_ssl3_specs;
	size_t n = sizeof(nss_ssl3_specs) / sizeof(nss_ssl3_specs[0]);
	int err = 0;

	if (targets_is_nspr(path)) {
		specs = nss_nspr4_specs;
		n = sizeof(nss_nspr4_specs) / sizeof(nss_nspr4_specs[0]);
	}
	for (size_t i = 0; i < n; i++) {
		err = attach_one(p, t, path, specs[i].func, 0, specs[i].prog, specs[i].retprobe);
		if (err) {
			if (explicit || err != -ENOENT)
				log_err("failed to hook %s: cannot attach to %s: %s", path,
					specs[i].func, strerror(-err));
			else
				log_info("not hooking %s: no %s", path, specs[i].func);
			destroy_links(t->links, t->n_links);
			t->links = NULL;
			t->n_links = 0;
			return err;
		}
	}
	return 0;
}

/* Go crypto/tls: Read/Write at the sites sites_go() decodes, a probe on every RET, the
 * handshakes and Close; the executable's *net.TCPConn itab for the socket (a PIE's is
 * placed per process, go_pie_process()). On failure nothing stays attached. */
static int go_attach(struct probe *p, struct probe_target *t, const char *path, bool explicit)
{
	static const char *const names[SITES_GO_N] = { "Write", "Read" };
	static const char *const progs[SITES_GO_N][2] = {
		{ "go_write_enter", "go_write_enter_jbe" },
		{ "go_read_enter", "go_read_enter_jbe" },
	};
	struct sites_go g;
	char why[160];
	__u32 one = 1;
	int err;

	err = sites_go(path, &g, why, sizeof(why));
	if (err) {
		return target_refused(path, explicit, why, err);
	}
	for (int f = 0; f < SITES_GO_N && !err; f++) {
		const struct sites_go_func_site *s = &g.f[f];

		err = attach_one(p, t, path, NULL, s->entry_offset, progs[f][s->entry_jbe], false);
		for (size_t i = 0; i < s->n_rets && !err; i++)
			err = attach_one(p, t, path, NULL, s->rets[i], "go_ret", false);
		if (!err)
			log_info("%s: crypto/tls.(*Conn).%s @0x%" PRIx64 " (%s), %zu RETs", path,
				 names[f], s->entry_offset, s->why, s->n_rets);
	}
	for (int i = 0; i < 2 && !err; i++)
		if (g.handshake[i])
			err = attach_one(p, t, path, NULL, g.handshake[i], "go_handshake_enter",
					 false);
	if (!err && g.close)
		err = attach_one(p, t, path, NULL, g.close, "go_close_enter", false);
	if (err) {
		log_err("failed to hook %s: cannot attach to crypto/tls: %s", path, strerror(-err));
		destroy_links(t->links, t->n_links);
		t->links = NULL;
		t->n_links = 0;
		return err;
	}
	log_info("%s: %s, %s%s, net.TCPConn itab %s", path, g.version,
		 g.stripped ? "stripped (functions from .gopclntab)" : "symbols",
		 g.pie ? ", position-independent" : "",
		 g.tcpconn_itab ? (g.pie ? "placed per process" : "known") : "not found");
	if (g.pie) {
		t->go_itab = g.tcpconn_itab;
		t->go_load_vaddr = g.load_vaddr;
		if (g.tcpconn_itab && !p->auto_discover)
			log_warn("%s: position-independent: its net.TCPConn itab is placed per "
				 "process by discovery, which --no-auto turns off: its "
				 "connections have no 5-tuple",
				 path);
	} else if (g.tcpconn_itab &&
		   bpf_map_update_elem(bpf_map__fd(p->skel->maps.go_tcpconn_itabs), &g.tcpconn_itab,
				       &one, BPF_ANY)) {
		log_warn("%s: failed to record its net.TCPConn type: %s", path, strerror(errno));
	}
	if (!g.tcpconn_itab)
		log_warn("%s: no *net.TCPConn,net.Conn itab found: its connections have no "
			 "5-tuple",
			 path);
	return 0;
}

/* A process running the Go PIE target t: its *net.TCPConn itab is where the process
 * mapped the file (/proc/PID/maps, the mapping of offset 0 of exe) plus the link-time
 * address. Recorded once per address; stale ones (exited processes) are harmless: the
 * guard only ever compares a connection's own itab pointer. */
static void go_pie_process(struct probe *p, const struct probe_target *t, const char *pid,
			   const char *exe)
{
	char maps[64], *line = NULL;
	uint64_t start, off, itab;
	size_t cap = 0;
	__u32 one = 1;
	FILE *f;

	if (!t->go_itab)
		return;
	snprintf(maps, sizeof(maps), "/proc/%s/maps", pid);
	f = fopen(maps, "re");
	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		char *path = strchr(line, '/');

		if (!path || sscanf(line, "%" SCNx64 "-%*x %*s %" SCNx64, &start, &off) != 2 || off)
			continue;
		path[strcspn(path, "\n")] = '\0';
		if (strcmp(path, exe))
			continue;
		itab = start - (t->go_load_vaddr & ~0xfffull) + t->go_itab;
		if (bpf_map_update_elem(bpf_map__fd(p->skel->maps.go_tcpconn_itabs), &itab, &one,
					BPF_ANY))
			log_warn("%s: failed to record its net.TCPConn type for process %s: %s",
				 t->path, pid, strerror(errno));
		else
			log_debug("%s: process %s: net.TCPConn itab @0x%" PRIx64, t->path, pid,
				  itab);
		break;
	}
	free(line);
	fclose(f);
}

/* Places every uprobe of uprobe_specs on path, data calls at the sites chosen for it.
 * On failure nothing stays attached. Returns 0, -ENOENT when a required SSL symbol is
 * missing, or another -errno. */
static int target_attach(struct probe *p, struct probe_target *t, const char *path)
{
	pid_t pid = p->pid > 0 ? p->pid : -1;
	char why[128];
	int err = 0;

	if (sites_choose(path, p->sites_mode, &t->sites, why, sizeof(why)))
		log_warn("%s: cannot choose probe sites: %s; probing the exported symbols", path,
			 why);
	for (size_t i = 0; i < sizeof(uprobe_specs) / sizeof(uprobe_specs[0]); i++) {
		const struct uprobe_spec *s = &uprobe_specs[i];
		LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = s->func, .retprobe = s->retprobe);
		const struct site *site = s->site >= 0 ? &t->sites.f[s->site] : NULL;
		const char *prog_name = s->prog;
		size_t offset = 0;
		struct bpf_program *prog;
		struct bpf_link *l;

		if (site && site->internal) {
			if (!s->internal_prog)
				continue; /* the _ex variant: its callee is the plain one's */
			prog_name = s->internal_prog;
			opts.func_name = NULL;
			offset = site->offset;
		}
		prog = bpf_object__find_program_by_name(p->skel->obj, prog_name);
		if (!prog) {
			err = -ENOENT;
			goto fail;
		}
		l = bpf_program__attach_uprobe_opts(prog, pid, path, offset, &opts);
		if (!l) {
			err = -errno;
			if (!s->required) {
				log_debug("%s: no %s (%s), not hooked", path, s->func,
					  strerror(-err));
				continue;
			}
			if (err == -ENOENT)
				log_err("failed to hook %s: no %s symbol (not an "
					"OpenSSL-compatible "
					"library or binary)",
					path, s->func);
			else
				log_err("failed to hook %s: cannot attach to %s: %s", path, s->func,
					strerror(-err));
			goto fail;
		}
		err = push_link(&t->links, &t->n_links, l);
		if (err) {
			bpf_link__destroy(l);
			goto fail;
		}
	}
	return 0;
fail:
	destroy_links(t->links, t->n_links);
	t->links = NULL;
	t->n_links = 0;
	return err ? err : -ENOENT;
}

/* Hooks the file at path unless its (device, inode) is known already. explicit: the
 * operator named it (--lib/--bin), so a missing file or missing symbols are logged
 * errors rather than a race with an exiting process (discovery). Returns 0 or -errno. */
static int target_add(struct probe *p, const char *path, enum target_kind kind, bool explicit)
{
	struct probe_target *t, *grown;
	struct stat st;
	int err;

	if (stat(path, &st)) {
		err = -errno;
		if (explicit)
			log_err("failed to hook %s: %s", path, strerror(-err));
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		if (explicit)
			log_err("failed to hook %s: not a regular file", path);
		return -EINVAL;
	}
	if (target_find(p, st.st_dev, st.st_ino))
		return 0;
	grown = realloc(p->targets, (p->n_targets + 1) * sizeof(*p->targets));
	if (!grown)
		return -ENOMEM;
	p->targets = grown;
	t = &p->targets[p->n_targets];
	memset(t, 0, sizeof(*t));
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	t->kind = kind;
	t->path = strdup(path);
	if (!t->path)
		return -ENOMEM;
	p->n_targets++;
	/* Remembered as refused (or as no TLS stack) so discovery does not retry it every
	 * second. */
	if (kind == TARGET_NONE)
		return 0;
	if (kind == TARGET_GNUTLS || kind == TARGET_NSS || kind == TARGET_GO) {
		err = kind == TARGET_GNUTLS ? gnutls_attach(p, t, path, explicit)
		      : kind == TARGET_NSS  ? nss_attach(p, t, path, explicit)
					    : go_attach(p, t, path, explicit);
		if (err)
			return err;
	} else {
		err = target_attach(p, t, path);
		if (err) {
			if (!explicit)
				log_info("not hooking %s: no SSL_write/SSL_read", path);
			return err;
		}
		log_sites(t);
	}
	t->hooked = true;
	log_info("hooked %s %s (%zu probes)", targets_kind_name(kind), path, t->n_links);
	return 0;
}

/* The process's main executable, when it carries a TLS stack of its own (statically
 * linked OpenSSL/BoringSSL, Go): read once per file, through the process's root so that
 * binaries inside containers resolve. Returns whether that executable is hooked. */
static bool scan_exe(struct probe *p, const char *pid)
{
	char link[64], exe[PATH_MAX], full[PATH_MAX + 64], why[160];
	const struct probe_target *t;
	struct stat st;
	ssize_t n;
	int kind;

	snprintf(link, sizeof(link), "/proc/%s/exe", pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	if (n <= 0)
		return false; /* a kernel thread, or exited meanwhile */
	exe[n] = '\0';
	if (n > 10 && !strcmp(exe + n - 10, " (deleted)"))
		return false;
	snprintf(full, sizeof(full), "/proc/%s/root%s", pid, exe);
	if (stat(full, &st) || !S_ISREG(st.st_mode))
		return false;
	t = target_find(p, st.st_dev, st.st_ino);
	if (!t) {
		kind = targets_exe_kind(full, why, sizeof(why));
		if (kind < 0) {
			log_debug("not hooking %s: %s", full, why);
			kind = TARGET_NONE;
		}
		target_add(p, full, (enum target_kind)kind, false);
		t = target_find(p, st.st_dev, st.st_ino);
	}
	if (!t || !t->hooked)
		return false;
	if (t->kind == TARGET_GO)
		go_pie_process(p, t, pid, exe);
	return true;
}

static void scan_maps(struct probe *p, const char *pid)
{
	char maps[64], line[PATH_MAX + 256], full[PATH_MAX + 64], nspr[PATH_MAX + 64] = "";
	bool nss = false, told = false;
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%s/maps", pid);
	f = fopen(maps, "re");
	if (!f)
		return; /* exited meanwhile, or a kernel thread */
	/* Who a hooked process is (comm, container, lib) is read now, while it exists: a
	 * short-lived client may be gone when its flow's first event is handled. */
	if (scan_exe(p, pid) && p->on_ssl_process) {
		p->on_ssl_process(p->sink.ctx, (pid_t)atoi(pid));
		told = true;
	}
	while (fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');
		enum target_kind kind;
		size_t n;

		if (!path || (!strstr(path, "libssl") && !strstr(path, "libgnutls") &&
			      !strstr(path, "libnspr4")))
			continue;
		n = strcspn(path, "\n");
		path[n] = '\0';
		/* A replaced file keeps its old mapping, marked deleted: its new version
		 * is found when a process maps it. */
		if (n > 10 && !strcmp(path + n - 10, " (deleted)"))
			continue;
		kind = targets_lib_kind(path);
		if (kind == TARGET_NONE)
			continue;
		/* Through the process's root, so libraries inside containers resolve. */
		snprintf(full, sizeof(full), "/proc/%s/root%s", pid, path);
		/* NSPR serves plain I/O too: hooked only in processes that map libssl3. */
		if (targets_is_nspr(path)) {
			snprintf(nspr, sizeof(nspr), "%s", full);
			continue;
		}
		nss |= kind == TARGET_NSS;
		target_add(p, full, kind, false);
		if (!told && p->on_ssl_process)
			p->on_ssl_process(p->sink.ctx, (pid_t)atoi(pid));
		told = true;
	}
	if (nss && nspr[0])
		target_add(p, nspr, TARGET_NSS, false);
	fclose(f);
}

/* Start time and virtual size of a process from /proc/PID/stat (fields 22 and 23). */
static int read_pid_stat(const char *pid, uint64_t *start, uint64_t *vsize)
{
	char path[64], buf[1024], *s;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* comm (field 2) may hold spaces and parentheses: fields resume after the last ')' */
	s = strrchr(buf, ')');
	if (!s)
		return -EIO;
	for (field = 2; *s && field < 22; s++)
		if (*s == ' ')
			field++;
	if (sscanf(s, "%" SCNu64 " %" SCNu64, start, vsize) != 2)
		return -EIO;
	return 0;
}

static int pid_seen_cmp(const void *a, const void *b)
{
	const struct pid_seen *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Reads /proc/PID/maps only for processes that are new or whose address space changed
 * size since the last scan (mapping libssl does that): a rescan of a quiet host costs
 * one small read per process. Records the process in next[] when next is not NULL. */
static void scan_pid(struct probe *p, const char *pid, struct pid_seen *next, size_t *n_next)
{
	struct pid_seen key = { .pid = atoi(pid) }, *old;

	if (read_pid_stat(pid, &key.start, &key.vsize))
		return; /* exited meanwhile */
	/* The first scan has no table yet (bsearch() must not be given NULL). */
	old = p->n_seen ? bsearch(&key, p->seen, p->n_seen, sizeof(key), pid_seen_cmp) : NULL;
	if (!old || old->start != key.start || old->vsize != key.vsize)
		scan_maps(p, pid);
	if (next)
		next[(*n_next)++] = key;
}

static void scan_all(struct probe *p)
{
	struct pid_seen *next = NULL;
	size_t n_next = 0, cap;
	struct dirent *de;
	DIR *d;

	if (p->pid > 0) {
		char pid[16];

		snprintf(pid, sizeof(pid), "%d", (int)p->pid);
		scan_maps(p, pid);
		return;
	}
	d = opendir("/proc");
	if (!d) {
		log_warn("failed to scan /proc: %s", strerror(errno));
		return;
	}
	cap = p->n_seen + 64;
	next = malloc(cap * sizeof(*next));
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		/* Not our own libraries: the agent never calls SSL_* on captured data. */
		if (atoi(de->d_name) == getpid())
			continue;
		if (next && n_next == cap) {
			struct pid_seen *grown = realloc(next, 2 * cap * sizeof(*next));

			if (!grown) {
				/* Without the record, the next scan reads every maps file. */
				free(next);
				next = NULL;
			}
			next = grown;
			cap *= 2;
		}
		scan_pid(p, de->d_name, next, &n_next);
	}
	closedir(d);
	if (next)
		qsort(next, n_next, sizeof(*next), pid_seen_cmp);
	free(p->seen);
	p->seen = next;
	p->n_seen = next ? n_next : 0;
}

/* A --lib path: GnuTLS by its file name, else OpenSSL-compatible (any name, as before). */
static enum target_kind libs_kind(const char *path)
{
	enum target_kind kind = targets_lib_kind(path);

	return kind == TARGET_GNUTLS || kind == TARGET_NSS ? kind : TARGET_OPENSSL;
}

/* A --bin path: a Go program by its symbols, else static OpenSSL/BoringSSL (as before). */
static enum target_kind bins_kind(const char *path)
{
	char why[128];

	return targets_exe_kind(path, why, sizeof(why)) == TARGET_GO ? TARGET_GO : TARGET_OPENSSL;
}

/* --- public ------------------------------------------------------------------------- */

/* Rounds *v up to a power of two that holds need bytes; true if it changed. */
static bool raise_pow2(uint64_t *v, uint64_t need)
{
	uint64_t r = *v;

	while (r < need)
		r *= 2;
	if (r == *v)
		return false;
	*v = r;
	return true;
}

/* Picks the event transport and its size. One SSL call's events are written by a single
 * BPF run, before user space can drain anything: a buffer smaller than one captured call
 * loses every large call, so the size asked for is a floor raised to that (lower
 * --max-chunks to shrink). Returns 0 or -errno (logged). */
static int events_setup(struct probe *p, const struct probe_cfg *cfg, unsigned *pages)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), need, size;

	p->have_ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1;
	if (cfg->events == PROBE_EVENTS_RINGBUF && !p->have_ringbuf) {
		log_err("failed to create ring buffer: kernel without BPF ring buffers (Linux "
			">= 5.8 has them); --events perf uses the perf buffer");
		return -EOPNOTSUPP;
	}
	if (cfg->events == PROBE_EVENTS_PERF || !p->have_ringbuf) {
		*pages = cfg->perf_pages ? cfg->perf_pages : PROBE_PERF_PAGES_DEFAULT;
		if (*pages & (*pages - 1)) {
			log_err("failed to create perf buffer: %u pages is not a power of two",
				*pages);
			return -EINVAL;
		}
		need = ((uint64_t)cfg->max_chunks * (sizeof(struct ecv_event) + 8) + page - 1) /
		       page;
		size = *pages;
		if (raise_pow2(&size, need))
			log_info("perf buffer raised from %u to %" PRIu64 " pages per CPU: one %u "
				 "KiB SSL call must fit",
				 *pages, size, cfg->max_chunks * ECV_CHUNK_SIZE / 1024);
		*pages = (unsigned)size;
		log_info("events: perf buffer, %u pages per CPU%s", *pages,
			 cfg->events == PROBE_EVENTS_PERF
				 ? " (forced)"
				 : " (kernel without BPF ring buffers: Linux >= 5.8 has them)");
		return 0;
	}
	size = cfg->ring_bytes ? cfg->ring_bytes : PROBE_RING_BYTES_DEFAULT;
	if ((size & (size - 1)) || size < page || size > (1ull << 30)) {
		log_err("failed to create ring buffer: %" PRIu64 " bytes is not a power of two "
			"from a page to 1 GiB",
			size);
		return -EINVAL;
	}
	/* Each record: 8 bytes of ring header, then the event. */
	need = (uint64_t)cfg->max_chunks * (sizeof(struct ecv_event) + 8);
	p->ring_bytes = size;
	if (raise_pow2(&p->ring_bytes, need))
		log_info("ring buffer raised from %" PRIu64 " to %" PRIu64 " KiB: one %u KiB SSL "
			 "call must fit",
			 size / 1024, p->ring_bytes / 1024,
			 cfg->max_chunks * ECV_CHUNK_SIZE / 1024);
	log_info("events: ring buffer, %" PRIu64 " KiB, consumer woken per %" PRIu64
		 " KiB or %u ms%s",
		 p->ring_bytes / 1024, p->ring_bytes / PROBE_RING_WAKE_DIV / 1024,
		 PROBE_RING_WAKE_MS, cfg->events == PROBE_EVENTS_RINGBUF ? " (forced)" : "");
	return 0;
}

struct probe *probe_new(const struct probe_cfg *cfg, probe_event_fn on_event, probe_lost_fn on_lost,
			void *ctx)
{
	struct probe *p = NULL;
	unsigned pages = 0;
	int err;

	libbpf_set_print(libbpf_log);
	err = check_caps();
	if (err) {
		log_err("failed to load BPF programs: missing CAP_BPF/CAP_PERFMON (run as root)");
		goto cleanup;
	}
	err = check_kernel();
	if (err)
		goto cleanup;
	if (cfg->max_chunks < 1 || cfg->max_chunks > ECV_MAX_CHUNKS) {
		log_err("failed to load BPF programs: max_chunks %u not in 1..%u", cfg->max_chunks,
			ECV_MAX_CHUNKS);
		err = -EINVAL;
		goto cleanup;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		err = -ENOMEM;
		goto cleanup;
	}
	p->auto_discover = cfg->auto_discover;
	p->sites_mode = cfg->sites;
	p->rescan_ms = cfg->rescan_ms ? cfg->rescan_ms : 1000;
	p->pid = cfg->pid;
	p->sink.on_event = on_event;
	p->sink.on_lost = on_lost;
	p->sink.ctx = ctx;
	p->on_ssl_process = cfg->on_ssl_process;
	err = events_setup(p, cfg, &pages);
	if (err)
		goto cleanup;

	err = load_bpf(p, cfg);
	if (err)
		goto cleanup;
	if (p->ring_bytes)
		p->events = evbuf_ring_new(bpf_map__fd(p->skel->maps.ring), p->ring_bytes,
					   &p->skel->bss->ring_lost, &p->sink);
	else
		p->events = evbuf_perf_new(bpf_map__fd(p->skel->maps.events), pages, &p->sink);
	if (!p->events) {
		err = -errno;
		if (p->ring_bytes)
			log_err("failed to create ring buffer (%" PRIu64 " KiB): %s",
				p->ring_bytes / 1024, strerror(-err));
		else
			log_err("failed to create perf buffer (%u pages per CPU): %s", pages,
				strerror(-err));
		goto cleanup;
	}
	for (size_t i = 0; i < cfg->n_libs; i++) {
		err = target_add(p, cfg->libs[i], libs_kind(cfg->libs[i]), true);
		if (err)
			goto cleanup;
	}
	for (size_t i = 0; i < cfg->n_bins; i++) {
		err = target_add(p, cfg->bins[i], bins_kind(cfg->bins[i]), true);
		if (err)
			goto cleanup;
	}
	for (size_t i = 0; i < cfg->n_go_bins; i++) {
		err = target_add(p, cfg->go_bins[i], TARGET_GO, true);
		if (err)
			goto cleanup;
	}
	if (p->auto_discover)
		scan_all(p);
	p->next_scan_ms = now_ms() + p->rescan_ms;
	if (!probe_targets(p))
		log_warn("no SSL library hooked yet%s",
			 p->auto_discover ? "; waiting for processes to map one" : "");
	return p;
cleanup:
	probe_free(p);
	errno = -err;
	return NULL;
}

int probe_poll(struct probe *p, int timeout_ms)
{
	int n = evbuf_poll(p->events, timeout_ms);

	if (n < 0)
		return n;
	if (now_ms() >= p->next_scan_ms) {
		uint64_t busy = __atomic_load_n(&p->skel->bss->busy_calls, __ATOMIC_RELAXED);

		/* Rare (fully preemptible kernels only), visible downstream as sequence
		 * holes; said here so the cause of those holes is known. */
		if (busy != p->busy_calls)
			log_warn("%" PRIu64 " SSL call(s) not copied: per-CPU buffer busy "
				 "(preempted copy)",
				 busy - p->busy_calls);
		p->busy_calls = busy;
		if (p->auto_discover)
			scan_all(p);
		p->next_scan_ms = now_ms() + p->rescan_ms;
	}
	return n;
}

void probe_free(struct probe *p)
{
	if (!p)
		return;
	/* Uprobes first: no new events while the rest goes away. The kernel waits for a
	 * grace period per uprobe removed (~0.1 s each, serialized; measured on 6.18), so
	 * this takes about 2 s per hooked library. */
	for (size_t i = 0; i < p->n_targets; i++)
		target_release(&p->targets[i]);
	free(p->targets);
	free(p->seen);
	evbuf_free(p->events);
	unload(p);
	free(p);
}
