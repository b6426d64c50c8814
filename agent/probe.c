/* agent/probe.c - the BPF side of the agent: load, attach, discover, poll. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
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
#include <bpf/libbpf.h>

#include "ecv.skel.h"
#include "log.h"
#include "probe.h"

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
	bool hooked; /* false: tried and refused (no symbols); not retried */
};

/* A process as of the last discovery scan. */
struct pid_seen {
	pid_t pid;
	uint64_t start; /* start time: a reused pid is a new process */
	uint64_t vsize; /* address-space size: changes when libraries are mapped */
};

struct probe {
	struct ecv_bpf *skel;
	struct perf_buffer *pb;
	enum probe_hook hook;
	struct bpf_link **hook_links; /* socket hook + role tracepoint */
	size_t n_hook_links;
	struct probe_target *targets;
	size_t n_targets;
	bool auto_discover;
	unsigned rescan_ms;
	pid_t pid;
	uint64_t next_scan_ms;
	uint64_t busy_calls;   /* BPF busy_calls already reported */
	struct pid_seen *seen; /* sorted by pid */
	size_t n_seen;
	probe_event_fn on_event;
	probe_lost_fn on_lost;
	void (*on_ssl_process)(void *ctx, pid_t pid);
	void *ctx;
	int handled;
};

/* An uprobe to place on every target: function, program, entry or return. */
struct uprobe_spec {
	const char *func;
	const char *prog;
	bool retprobe;
	bool required; /* a target without it is not an SSL library */
};

static const struct uprobe_spec uprobe_specs[] = {
	{ "SSL_write", "ssl_write_enter", false, true },
	{ "SSL_write", "ssl_data_exit", true, true },
	{ "SSL_read", "ssl_read_enter", false, true },
	{ "SSL_read", "ssl_data_exit", true, true },
	{ "SSL_write_ex", "ssl_write_ex_enter", false, false },
	{ "SSL_write_ex", "ssl_data_exit", true, false },
	{ "SSL_read_ex", "ssl_read_ex_enter", false, false },
	{ "SSL_read_ex", "ssl_data_exit", true, false },
	{ "SSL_new", "ssl_new_exit", true, false },
	{ "SSL_set_connect_state", "ssl_set_state_enter", false, false },
	{ "SSL_set_accept_state", "ssl_set_state_enter", false, false },
	{ "SSL_do_handshake", "ssl_handshake_enter", false, false },
	{ "SSL_do_handshake", "ssl_handshake_exit", true, false },
	{ "SSL_connect", "ssl_handshake_enter", false, false },
	{ "SSL_connect", "ssl_handshake_exit", true, false },
	{ "SSL_accept", "ssl_handshake_enter", false, false },
	{ "SSL_accept", "ssl_handshake_exit", true, false },
	{ "SSL_shutdown", "ssl_shutdown_enter", false, false },
	{ "SSL_free", "ssl_free_enter", false, false },
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

/* Opens, configures, loads the object with only hook's socket programs and attaches
 * them. *stage says which step failed. Returns 0 or -errno (everything undone). */
static int load_with_hook(struct probe *p, const struct probe_cfg *cfg, enum probe_hook hook,
			  const char **stage)
{
	struct bpf_program *prog;
	int err;

	*stage = "open";
	p->skel = ecv_bpf__open();
	if (!p->skel)
		return -errno;
	p->skel->rodata->filter_tgid = cfg->pid > 0 ? (uint32_t)cfg->pid : 0;
	p->skel->rodata->filter_cgroup_id = cfg->cgroup_id;
	p->skel->rodata->filter_netns = cfg->netns_ino;
	p->skel->rodata->max_chunks = cfg->max_chunks;

	for (prog = bpf_object__next_program(p->skel->obj, NULL); prog;
	     prog = bpf_object__next_program(p->skel->obj, prog)) {
		const char *name = bpf_program__name(prog);
		bool is_hook = false, chosen = false;

		for (int h = PROBE_HOOK_KPROBE; h <= PROBE_HOOK_SYSCALLS; h++) {
			for (size_t i = 0; i < HOOK_PROGS_MAX && hook_progs[h][i]; i++) {
				if (strcmp(name, hook_progs[h][i]))
					continue;
				is_hook = true;
				chosen = h == (int)hook;
			}
		}
		if (is_hook)
			bpf_program__set_autoload(prog, chosen);
	}
	*stage = "load";
	err = ecv_bpf__load(p->skel);
	if (err)
		goto fail;
	*stage = "attach";
	for (size_t i = 0; i < HOOK_PROGS_MAX && hook_progs[hook][i]; i++) {
		err = attach_prog(p, hook_progs[hook][i]);
		if (err)
			goto fail;
	}
	return 0;
fail:
	unload(p);
	return err;
}

/* Why a hook is commonly refused, for the one-line error of a forced hook. */
static const char *hook_hint(enum probe_hook hook, int err)
{
	if (hook == PROBE_HOOK_KPROBE && access("/sys/bus/event_source/devices/kprobe", F_OK))
		return " (kernel without kprobes: CONFIG_KPROBES is not set)";
	if (hook == PROBE_HOOK_FENTRY && err == -EPERM)
		return " (BPF trampolines refused by this kernel)";
	if (hook == PROBE_HOOK_TRACEPOINT && err == -EINVAL)
		return " (tp_btf/sock_send_length needs Linux >= 6.3)";
	return "";
}

static int load_bpf(struct probe *p, const struct probe_cfg *cfg)
{
	enum probe_hook order[] = { PROBE_HOOK_KPROBE, PROBE_HOOK_FENTRY, PROBE_HOOK_TRACEPOINT,
				    PROBE_HOOK_SYSCALLS };
	size_t first = 0, last = 3;
	const char *stage;
	int err = -ENOENT;

	if (cfg->hook != PROBE_HOOK_AUTO) {
		for (size_t i = 0; i < 4; i++)
			if (order[i] == cfg->hook)
				first = last = i;
	}
	for (size_t i = first; i <= last; i++) {
		err = load_with_hook(p, cfg, order[i], &stage);
		if (!err) {
			p->hook = order[i];
			log_info("socket hook: %s%s", hook_names[order[i]],
				 cfg->hook == PROBE_HOOK_AUTO ? " (probed)" : " (forced)");
			break;
		}
		if (cfg->hook != PROBE_HOOK_AUTO) {
			log_err("failed to %s socket hook %s: %s%s", stage, hook_names[order[i]],
				strerror(-err), hook_hint(order[i], err));
			return err;
		}
		/* Expected on kernels without kprobes or with trampolines refused. */
		log_info("socket hook %s refused at %s: %s%s; trying the next one",
			 hook_names[order[i]], stage, strerror(-err), hook_hint(order[i], err));
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

/* Places every uprobe of uprobe_specs on path. On failure nothing stays attached.
 * Returns 0, -ENOENT when a required SSL symbol is missing, or another -errno. */
static int target_attach(struct probe *p, struct probe_target *t, const char *path)
{
	pid_t pid = p->pid > 0 ? p->pid : -1;
	int err = 0;

	for (size_t i = 0; i < sizeof(uprobe_specs) / sizeof(uprobe_specs[0]); i++) {
		const struct uprobe_spec *s = &uprobe_specs[i];
		LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = s->func, .retprobe = s->retprobe);
		struct bpf_program *prog;
		struct bpf_link *l;

		prog = bpf_object__find_program_by_name(p->skel->obj, s->prog);
		if (!prog) {
			err = -ENOENT;
			goto fail;
		}
		l = bpf_program__attach_uprobe_opts(prog, pid, path, 0, &opts);
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
static int target_add(struct probe *p, const char *path, bool explicit)
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
	t->path = strdup(path);
	if (!t->path)
		return -ENOMEM;
	p->n_targets++;
	err = target_attach(p, t, path);
	if (err) {
		/* Remembered as refused so discovery does not retry it every second. */
		if (!explicit)
			log_info("not hooking %s: no SSL_write/SSL_read", path);
		return err;
	}
	t->hooked = true;
	log_info("hooked %s (%zu probes)", path, t->n_links);
	return 0;
}

/* True for the file name of an OpenSSL-compatible libssl (libssl.so, libssl.so.3...). */
static bool is_libssl(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "libssl.so", 9);
}

static void scan_maps(struct probe *p, const char *pid)
{
	char maps[64], line[PATH_MAX + 256], full[PATH_MAX + 64];
	bool told = false;
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%s/maps", pid);
	f = fopen(maps, "re");
	if (!f)
		return; /* exited meanwhile, or a kernel thread */
	while (fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');
		size_t n;

		if (!path || !strstr(path, "libssl"))
			continue;
		n = strcspn(path, "\n");
		path[n] = '\0';
		/* A replaced file keeps its old mapping, marked deleted: its new version
		 * is found when a process maps it. */
		if (n > 10 && !strcmp(path + n - 10, " (deleted)"))
			continue;
		if (!is_libssl(path))
			continue;
		/* Through the process's root, so libraries inside containers resolve. */
		snprintf(full, sizeof(full), "/proc/%s/root%s", pid, path);
		target_add(p, full, false);
		if (!told && p->on_ssl_process)
			p->on_ssl_process(p->ctx, (pid_t)atoi(pid));
		told = true;
	}
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

/* --- perf buffer -------------------------------------------------------------------- */

/* Hands the sample on where it sits in the ring (no copy: the consumer copies it once,
 * to an aligned place, see probe_event_fn); only its length fields are checked. */
static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct probe *p = ctx;
	__u32 len;

	(void)cpu;
	p->handled++;
	if (size < ECV_EVENT_HDR_LEN) {
		log_debug("dropping short perf sample (%u bytes)", size);
		return;
	}
	/* Samples are padded to 8 bytes; anything past the struct is padding. */
	if (size > sizeof(struct ecv_event))
		size = sizeof(struct ecv_event);
	memcpy(&len, (const char *)data + offsetof(struct ecv_event, len), sizeof(len));
	if (len > size - ECV_EVENT_HDR_LEN) {
		log_debug("dropping perf sample with len %u > %u", len,
			  (unsigned)(size - ECV_EVENT_HDR_LEN));
		return;
	}
	if (p->on_event)
		p->on_event(p->ctx, data, size);
}

static void on_lost_sample(void *ctx, int cpu, __u64 count)
{
	struct probe *p = ctx;

	if (p->on_lost)
		p->on_lost(p->ctx, cpu, count);
}

/* A perf ring record as the kernel writes it (perf_event_open(2), PERF_SAMPLE_RAW). */
struct perf_sample_raw {
	struct perf_event_header hdr;
	__u32 size;
	char data[];
};

struct perf_lost {
	struct perf_event_header hdr;
	__u64 id;
	__u64 lost;
};

static enum bpf_perf_event_ret on_record(void *ctx, int cpu, struct perf_event_header *h)
{
	if (h->type == PERF_RECORD_SAMPLE) {
		struct perf_sample_raw *s = (struct perf_sample_raw *)h;

		on_sample(ctx, cpu, s->data, s->size);
	} else if (h->type == PERF_RECORD_LOST) {
		struct perf_lost *l = (struct perf_lost *)h;

		on_lost_sample(ctx, cpu, l->lost);
	}
	return LIBBPF_PERF_EVENT_CONT;
}

/* perf_buffer__new() asks for a wakeup per sample: at 10^4..10^5 samples a second the
 * writer's CPU pays a wakeup each and the agent runs one round per sample. Here a ring
 * wakes the agent once a quarter of it is filled; probe_poll() then drains every ring
 * (perf_buffer__consume()), so what sits below the mark waits at most one poll timeout. */
static struct perf_buffer *perf_buffer_open(struct probe *p, unsigned pages)
{
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_BPF_OUTPUT;
	attr.sample_type = PERF_SAMPLE_RAW;
	attr.sample_period = 1;
	attr.watermark = 1;
	attr.wakeup_watermark = (__u32)((uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE) / 4);
	return perf_buffer__new_raw(bpf_map__fd(p->skel->maps.events), pages, &attr, on_record, p,
				    NULL);
}

/* --- public ------------------------------------------------------------------------- */

struct probe *probe_new(const struct probe_cfg *cfg, probe_event_fn on_event, probe_lost_fn on_lost,
			void *ctx)
{
	struct probe *p = NULL;
	unsigned pages;
	uint64_t need;
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
	pages = cfg->perf_pages ? cfg->perf_pages : PROBE_PERF_PAGES_DEFAULT;
	if (pages & (pages - 1)) {
		log_err("failed to create perf buffer: %u pages is not a power of two", pages);
		err = -EINVAL;
		goto cleanup;
	}
	/* One SSL call's events are written by a single BPF run, before user space can
	 * drain anything: a buffer smaller than one captured call loses every large call,
	 * so the size asked for is a floor raised to that (lower --max-chunks to shrink). */
	need = ((uint64_t)cfg->max_chunks * (sizeof(struct ecv_event) + 8) +
		(uint64_t)sysconf(_SC_PAGESIZE) - 1) /
	       (uint64_t)sysconf(_SC_PAGESIZE);
	if (pages < need) {
		unsigned raised = pages;

		while (raised < need)
			raised *= 2;
		log_info("perf buffer raised from %u to %u pages per CPU: one %u KiB SSL call "
			 "must fit",
			 pages, raised, cfg->max_chunks * ECV_CHUNK_SIZE / 1024);
		pages = raised;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		err = -ENOMEM;
		goto cleanup;
	}
	p->auto_discover = cfg->auto_discover;
	p->rescan_ms = cfg->rescan_ms ? cfg->rescan_ms : 1000;
	p->pid = cfg->pid;
	p->on_event = on_event;
	p->on_lost = on_lost;
	p->ctx = ctx;
	p->on_ssl_process = cfg->on_ssl_process;

	err = load_bpf(p, cfg);
	if (err)
		goto cleanup;
	p->pb = perf_buffer_open(p, pages);
	if (!p->pb) {
		err = -errno;
		log_err("failed to create perf buffer (%u pages per CPU): %s", pages,
			strerror(-err));
		goto cleanup;
	}
	for (size_t i = 0; i < cfg->n_libs; i++) {
		err = target_add(p, cfg->libs[i], true);
		if (err)
			goto cleanup;
	}
	for (size_t i = 0; i < cfg->n_bins; i++) {
		err = target_add(p, cfg->bins[i], true);
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
	int err;

	p->handled = 0;
	err = perf_buffer__poll(p->pb, timeout_ms);
	if (err < 0 && err != -EINTR)
		return err;
	/* Rings below their wakeup mark, and the rest of the ones that woke us. */
	err = perf_buffer__consume(p->pb);
	if (err < 0 && err != -EINTR)
		return err;
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
	return p->handled;
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
	perf_buffer__free(p->pb);
	unload(p);
	free(p);
}
