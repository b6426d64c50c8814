/* tests/bench/uprobe_floor.c - attaches bpf/floor.bpf.c (programs that return at once)
 * to the libssl symbols the agent hooks, entry and return alike, and holds them until
 * SIGINT/SIGTERM. Benchmark only (tests/bench/uprobe_floor.sh builds and runs it): the
 * request rate with this attached is the floor any uprobe capture pays on this kernel.
 * Usage: uprobe_floor LIBSSL_PATH */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "floor.skel.h"

/* The agent's uprobe list (agent/probe.c uprobe_specs): symbol and entry/return. */
static const struct {
	const char *func;
	int retprobe;
} floor_specs[] = {
	{ "SSL_write", 0 },
	{ "SSL_write", 1 },
	{ "SSL_read", 0 },
	{ "SSL_read", 1 },
	{ "SSL_write_ex", 0 },
	{ "SSL_write_ex", 1 },
	{ "SSL_read_ex", 0 },
	{ "SSL_read_ex", 1 },
	{ "SSL_new", 1 },
	{ "SSL_set_connect_state", 0 },
	{ "SSL_set_accept_state", 0 },
	{ "SSL_do_handshake", 0 },
	{ "SSL_do_handshake", 1 },
	{ "SSL_connect", 0 },
	{ "SSL_connect", 1 },
	{ "SSL_accept", 0 },
	{ "SSL_accept", 1 },
	{ "SSL_shutdown", 0 },
	{ "SSL_free", 0 },
};

#define FLOOR_N_SPECS (sizeof(floor_specs) / sizeof(floor_specs[0]))

static void on_signal(int sig)
{
	(void)sig; /* only interrupts pause() */
}

int main(int argc, char **argv)
{
	struct bpf_link *links[FLOOR_N_SPECS] = { 0 };
	struct floor_bpf *skel;
	size_t n = 0;
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s LIBSSL_PATH\n", argv[0]);
		return 2;
	}
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

		links[n] = bpf_program__attach_uprobe_opts(prog, -1, argv[1], 0, &opts);
		if (!links[n]) {
			fprintf(stderr, "uprobe_floor: failed to attach %s: %s\n",
				floor_specs[i].func, strerror(errno));
			goto cleanup;
		}
		n++;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("uprobe_floor: %zu probes on %s\n", n, argv[1]);
	fflush(stdout);
	pause();
	rc = 0;
cleanup:
	for (size_t i = 0; i < n; i++)
		bpf_link__destroy(links[i]);
	floor_bpf__destroy(skel);
	return rc;
}
