/* tests/bench/uprobe_floor.c - attaches bpf/floor.bpf.c (programs that return at once)
 * to the libssl points the agent hooks, entry and return alike, and holds them until
 * SIGINT/SIGTERM. Benchmark only (tests/bench/uprobe_floor.sh builds and runs it): the
 * request rate with this attached is the floor a uprobe capture pays on this kernel.
 * --sites exported (default): the exported symbols, as every tool that probes them;
 * --sites auto: the data calls at the sites the agent picks (agent/sites.c).
 * --go: a Go executable's crypto/tls instead, at the agent's Go sites (agent/sites.c
 * sites_go: (*Conn).Write and Read at their entry site and every RET, the handshakes,
 * Close), all plain uprobes as the agent's; --go-entries: the same without the RETs.
 * --pid PID: the probes trap in that process only (the kernel puts the breakpoints in its
 * memory alone) instead of in every process mapping the library.
 * Usage: uprobe_floor [--sites exported|auto] [--pid PID] LIBSSL_PATH
 *        uprobe_floor --go|--go-entries GO_EXE */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "floor.skel.h"
#include "sites.h"

/* The agent's uprobe list (agent/probe.c uprobe_specs): symbol and entry/return. */
static const struct {
	const char *func;
	int retprobe;
	int site; /* enum site_func, or -1 */
} floor_specs[] = {
	{ "SSL_write", 0, SITE_SSL_WRITE },
	{ "SSL_write", 1, SITE_SSL_WRITE },
	{ "SSL_read", 0, SITE_SSL_READ },
	{ "SSL_read", 1, SITE_SSL_READ },
	{ "SSL_write_ex", 0, SITE_SSL_WRITE_EX },
	{ "SSL_write_ex", 1, SITE_SSL_WRITE_EX },
	{ "SSL_read_ex", 0, SITE_SSL_READ_EX },
	{ "SSL_read_ex", 1, SITE_SSL_READ_EX },
	{ "SSL_new", 1, -1 },
	{ "SSL_set_connect_state", 0, -1 },
	{ "SSL_set_accept_state", 0, -1 },
	{ "SSL_do_handshake", 0, -1 },
	{ "SSL_do_handshake", 1, -1 },
	{ "SSL_connect", 0, -1 },
	{ "SSL_connect", 1, -1 },
	{ "SSL_accept", 0, -1 },
	{ "SSL_accept", 1, -1 },
	{ "SSL_shutdown", 0, -1 },
	{ "SSL_free", 0, -1 },
};

#define FLOOR_N_SPECS (sizeof(floor_specs) / sizeof(floor_specs[0]))

static void on_signal(int sig)
{
	(void)sig; /* only interrupts pause() */
}

/* Attaches floor_enter at every Go site of exe (with rets, the RETs too) into links
 * (room for max); *n counts them. Returns 0 or -errno (the links made so far stay in
 * links for the caller). */
static int attach_go(struct floor_bpf *skel, const char *exe, bool rets, struct bpf_link **links,
		     size_t max, size_t *n)
{
	uint64_t offs[2 * (1 + SITES_GO_MAX_RETS) + 3];
	struct sites_go g;
	size_t k = 0;
	char err[160];
	int rc;

	rc = sites_go(exe, &g, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "uprobe_floor: %s: %s\n", exe, err);
		return rc;
	}
	for (int f = 0; f < SITES_GO_N; f++) {
		offs[k++] = g.f[f].entry_offset;
		for (size_t i = 0; rets && i < g.f[f].n_rets; i++)
			offs[k++] = g.f[f].rets[i];
		printf("uprobe_floor: %s @0x%" PRIx64 " (%s), %zu RETs\n",
		       f == SITES_GO_WRITE ? "Write" : "Read", g.f[f].entry_offset, g.f[f].why,
		       g.f[f].n_rets);
	}
	for (int i = 0; i < 2; i++)
		if (g.handshake[i])
			offs[k++] = g.handshake[i];
	if (g.close)
		offs[k++] = g.close;
	for (size_t i = 0; i < k && *n < max; i++) {
		links[*n] = bpf_program__attach_uprobe(skel->progs.floor_enter, false, -1, exe,
						       offs[i]);
		if (!links[*n]) {
			rc = -errno;
			fprintf(stderr, "uprobe_floor: failed to attach at 0x%" PRIx64 ": %s\n",
				offs[i], strerror(errno));
			return rc;
		}
		(*n)++;
	}
	return 0;
}

/* The Go floor: floor_enter at the Go sites of exe until SIGINT/SIGTERM. */
static int floor_go(const char *exe, bool rets)
{
	struct bpf_link *links[2 * (1 + SITES_GO_MAX_RETS) + 3] = { 0 };
	struct floor_bpf *skel;
	size_t n = 0;
	int rc = 1;

	skel = floor_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "uprobe_floor: failed to load floor.bpf.o: %s\n", strerror(errno));
		return 1;
	}
	if (attach_go(skel, exe, rets, links, sizeof(links) / sizeof(links[0]), &n))
		goto cleanup;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("uprobe_floor: %zu probes on %s (Go sites%s)\n", n, exe, rets ? "" : ", no RETs");
	fflush(stdout);
	pause();
	rc = 0;
cleanup:
	for (size_t i = 0; i < n; i++)
		bpf_link__destroy(links[i]);
	floor_bpf__destroy(skel);
	return rc;
}

int main(int argc, char **argv)
{
	struct bpf_link *links[FLOOR_N_SPECS] = { 0 };
	enum sites_mode mode = SITES_EXPORTED;
	struct floor_bpf *skel;
	struct sites sites;
	const char *lib = NULL;
	char err[128];
	size_t n = 0;
	int rc = 1, pid = -1, a;

	if (argc == 3 && !strcmp(argv[1], "--go"))
		return floor_go(argv[2], true);
	if (argc == 3 && !strcmp(argv[1], "--go-entries"))
		return floor_go(argv[2], false);
	for (a = 1; a + 1 < argc; a += 2) {
		if (!strcmp(argv[a], "--sites") && !sites_mode_parse(argv[a + 1], &mode))
			continue;
		if (!strcmp(argv[a], "--pid") && atoi(argv[a + 1]) > 0) {
			pid = atoi(argv[a + 1]);
			continue;
		}
		break;
	}
	if (a == argc - 1)
		lib = argv[a];
	if (!lib) {
		fprintf(stderr,
			"usage: %s [--sites exported|auto] [--pid PID] LIBSSL_PATH | %s "
			"--go|--go-entries GO_EXE\n",
			argv[0], argv[0]);
		return 2;
	}
	if (sites_choose(lib, mode, &sites, err, sizeof(err)))
		fprintf(stderr, "uprobe_floor: %s: %s; exported symbols\n", lib, err);
	skel = floor_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "uprobe_floor: failed to load floor.bpf.o: %s\n", strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < FLOOR_N_SPECS; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = floor_specs[i].func,
			    .retprobe = floor_specs[i].retprobe);
		struct bpf_program *prog =
			floor_specs[i].retprobe ? skel->progs.floor_exit : skel->progs.floor_enter;
		int f = floor_specs[i].site;
		size_t offset = 0;

		/* As the agent: one pair at an internal callee, shared by plain and _ex. */
		if (f >= 0 && sites.f[f].internal) {
			if (f >= SITE_SSL_WRITE_EX)
				continue;
			opts.func_name = NULL;
			offset = sites.f[f].offset;
			printf("uprobe_floor: %s -> @0x%zx (%s)\n", floor_specs[i].func, offset,
			       sites.f[f].why);
		}
		links[n] = bpf_program__attach_uprobe_opts(prog, pid, lib, offset, &opts);
		if (!links[n]) {
			fprintf(stderr, "uprobe_floor: failed to attach %s: %s\n",
				floor_specs[i].func, strerror(errno));
			goto cleanup;
		}
		n++;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("uprobe_floor: %zu probes on %s (sites %s)\n", n, lib, sites_mode_name(mode));
	fflush(stdout);
	pause();
	printf("uprobe_floor: %llu entry hits, %llu return hits\n",
	       (unsigned long long)skel->bss->enter_hits, (unsigned long long)skel->bss->exit_hits);
	rc = 0;
cleanup:
	for (size_t i = 0; i < n; i++)
		bpf_link__destroy(links[i]);
	floor_bpf__destroy(skel);
	return rc;
}
