/* tests/bench/uprobe_kinds.c - the CPU cost of one uprobe hit by the kind of instruction
 * probed, in isolation: three functions of this program whose first instruction is a
 * push (emulated by the x86 uprobe code), a sub (single-stepped out of line) or a 5-byte
 * nop (which Linux >= 6.18 may turn into a call, no trap), each called in a loop with
 * bpf/floor.bpf.c's return-at-once programs attached at entry, at return, or both.
 * Prints the added thread CPU time per call. Benchmark only, not built by make:
 *   gcc -O2 -I build -o /tmp/uprobe_kinds tests/bench/uprobe_kinds.c \
 *       $(pkg-config --cflags --libs libbpf libelf) && sudo /tmp/uprobe_kinds [CALLS]
 * (after make: build/floor.skel.h). docs/bench-agent-consumer.md has the numbers. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "floor.skel.h"

/* Each returns its argument; only the first instruction differs. */
__asm__(".text\n"
	".globl kind_push\n.type kind_push,@function\nkind_push:\n"
	"	push %r13\n	mov %rdi,%rax\n	pop %r13\n	ret\n"
	".globl kind_sub\n.type kind_sub,@function\nkind_sub:\n"
	"	sub $0x18,%rsp\n	mov %rdi,%rax\n	add $0x18,%rsp\n	ret\n"
	".globl kind_nop5\n.type kind_nop5,@function\nkind_nop5:\n"
	"	.byte 0x0f,0x1f,0x44,0x00,0x00\n	mov %rdi,%rax\n	ret\n");
long kind_push(long x);
long kind_sub(long x);
long kind_nop5(long x);

static const struct {
	const char *name, *first;
	long (*fn)(long);
} kinds[] = {
	{ "kind_push", "push %r13 (emulated)", kind_push },
	{ "kind_sub", "sub $0x18,%rsp (single-stepped)", kind_sub },
	{ "kind_nop5", "nopl 0x0(%rax,%rax,1) (5-byte nop)", kind_nop5 },
};

/* Thread CPU time per call in ns (user + the kernel's trap handling on our behalf). */
static double per_call(long (*fn)(long), long calls)
{
	struct timespec a, b;
	volatile long sink = 0;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	for (long i = 0; i < calls; i++)
		sink += fn(i);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / calls;
}

int main(int argc, char **argv)
{
	static const char *const modes[] = { "entry", "return", "entry+return" };
	long calls = argc > 1 ? atol(argv[1]) : 100000;
	struct floor_bpf *skel;
	char exe[PATH_MAX];
	ssize_t n;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0 || calls < 1) {
		fprintf(stderr, "usage: %s [CALLS]\n", argv[0]);
		return 2;
	}
	exe[n] = 0;
	skel = floor_bpf__open_and_load();
	if (!skel) {
		perror("uprobe_kinds: floor.bpf.o");
		return 1;
	}
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		double base = per_call(kinds[k].fn, calls);

		printf("%-36s none %.0f ns", kinds[k].first, base);
		for (int m = 0; m < 3; m++) {
			LIBBPF_OPTS(bpf_uprobe_opts, oe, .func_name = kinds[k].name);
			LIBBPF_OPTS(bpf_uprobe_opts, orr, .func_name = kinds[k].name,
				    .retprobe = true);
			struct bpf_link *e = NULL, *r = NULL;

			if (m != 1)
				e = bpf_program__attach_uprobe_opts(skel->progs.floor_enter,
								    getpid(), exe, 0, &oe);
			if (m != 0)
				r = bpf_program__attach_uprobe_opts(skel->progs.floor_exit,
								    getpid(), exe, 0, &orr);
			if ((m != 1 && !e) || (m != 0 && !r)) {
				perror("uprobe_kinds: attach");
				return 1;
			}
			per_call(kinds[k].fn, calls / 10); /* warm up */
			printf(", %s +%.0f", modes[m], per_call(kinds[k].fn, calls) - base);
			bpf_link__destroy(e);
			bpf_link__destroy(r);
		}
		printf(" ns/call\n");
	}
	floor_bpf__destroy(skel);
	return 0;
}
