// SPDX-License-Identifier: GPL-2.0
/* bpf/floor.bpf.c - the uprobe floor (benchmark only, tests/bench/uprobe_floor.sh).
 *
 * Programs that return at once, attached by tests/bench/uprobe_floor.c to the same libssl
 * symbols, entry and return, as the agent's (agent/probe.c uprobe_specs): what remains
 * of the overhead with only these attached is the kernel's uprobe mechanism (breakpoint
 * trap, uretprobe trampoline, BPF dispatch), which any uprobe-based capture pays. They
 * only count their runs (read by the loader at exit: probe hits per request). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u64 enter_hits = 0;
__u64 exit_hits = 0;

SEC("uprobe")
int floor_enter(void *ctx)
{
	__sync_fetch_and_add(&enter_hits, 1);
	return 0;
}

SEC("uretprobe")
int floor_exit(void *ctx)
{
	__sync_fetch_and_add(&exit_hits, 1);
	return 0;
}
