/* tests/bench/udp_floor.c - tvn's live ingest with a consumer that does nothing: the
 * sockets and receive loop of tvn/ingest.c (ingest_new() with tvn's default 32 MiB
 * --rcvbuf, UDP_GRO, recvmmsg() batches, the hold-then-drain wait), each datagram (a GRO
 * buffer split by its segment size) only counted: no validation, no dedup, no output, no
 * HTTP. Benchmark only (tests/bench/tvn_bench.sh builds it against $BUILD's libtvn.a
 * and runs it): its datagrams per CPU-second are the most a socket receiver with tvn's
 * receive loop does on this machine, the floor tvn's own work sits on.
 * With --ring IFACE it is the floor of `tvn --rx ring --rx-iface IFACE` instead: the same
 * ingest code with ingest_sock_cfg.ring (a TPACKET_V3 ring of --rcvbuf's 32 MiB on IFACE,
 * the outer IP/UDP parse, the port held by a socket that drops everything).
 * SIGUSR1 prints the counts so far; SIGINT/SIGTERM print them with the process's CPU
 * time and exit 0.
 * Usage: udp_floor [--ring IFACE] ADDR:PORT
 * Output lines: "datagrams N buffers B drops D" and, at exit, "... cpu S". Buffers and
 * drops are ring frames in ring mode (a datagram or a GSO/GRO run). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "ingest.h"

#define FLOOR_RCVBUF (32 << 20) /* tvn's --rcvbuf default (tvn/main.c) */
#define FLOOR_POLL_MS 100	/* tvn's run_live() wait */

/* Set by the signal handlers, read by the loop (a signal ends a wait with EINTR). */
static volatile sig_atomic_t floor_stop, floor_report;

static void on_stop(int sig)
{
	(void)sig;
	floor_stop = 1;
}

static void on_report(int sig)
{
	(void)sig;
	floor_report = 1;
}

static void count_dgram(void *ctx, const uint8_t *buf, size_t len, const uint8_t src_addr[16],
			int reason, uint64_t ts_ns)
{
	(void)buf;
	(void)len;
	(void)src_addr;
	(void)reason; /* counted whatever it is, as tvn_rx_packets_total counts it */
	(void)ts_ns;
	++*(uint64_t *)ctx;
}

static void floor_print(struct ingest *in, uint64_t datagrams, bool with_cpu)
{
	struct rusage ru;

	printf("datagrams %llu buffers %llu drops %llu", (unsigned long long)datagrams,
	       (unsigned long long)ingest_buffers(in), (unsigned long long)ingest_kernel_drops(in));
	if (with_cpu && !getrusage(RUSAGE_SELF, &ru))
		printf(" cpu %.6f", ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
					    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_stop };
	struct ingest_sock_cfg cfg = { .n_listen = 1, .rcvbuf = FLOOR_RCVBUF };
	struct ingest *in;
	uint64_t datagrams = 0;
	int n;

	if (argc == 4 && !strcmp(argv[1], "--ring")) {
		cfg.ring = true;
		cfg.ring_iface = argv[2];
	} else if (argc != 2) {
		fprintf(stderr, "usage: udp_floor [--ring IFACE] ADDR:PORT\n");
		return 2;
	}
	cfg.listen = (const char *const *)&argv[argc - 1];
	/* No SA_RESTART: a signal must end the hold or the poll() at once. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_report;
	sigaction(SIGUSR1, &sa, NULL);
	in = ingest_new(&cfg);
	if (!in) {
		fprintf(stderr, "udp_floor: %s: %s\n", argv[argc - 1], strerror(errno));
		return 1;
	}
	printf("listening on %s%s%s\n", argv[argc - 1], cfg.ring ? " ring " : "",
	       cfg.ring ? cfg.ring_iface : "");
	fflush(stdout);
	while (!floor_stop) {
		n = ingest_poll(in, FLOOR_POLL_MS, count_dgram, &datagrams);
		if (n < 0) {
			fprintf(stderr, "udp_floor: receive: %s\n", strerror(-n));
			ingest_free(in);
			return 1;
		}
		if (floor_report) {
			floor_report = 0;
			floor_print(in, datagrams, false);
		}
	}
	floor_print(in, datagrams, true);
	ingest_free(in);
	return 0;
}
