// SPDX-License-Identifier: GPL-2.0
/* bpf/floor.bpf.c - the uprobe floor (benchmark only, tests/bench/uprobe_floor.sh).
 *
 * Programs that return at once, attached by tests/bench/uprobe_floor.c to the same libssl
 * symbols, entry and return, as the agent's (agent/probe.c uprobe_specs): what remains
 * of the overhead with only these attached is the kernel's uprobe mechanism (breakpoint
 * trap, uretprobe trampoline, BPF dispatch), which any uprobe-based capture pays. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("uprobe")
int floor_enter(void *ctx)
{
	return 0;
}

SEC("uretprobe")
int floor_exit(void *ctx)
{
	return 0;
}
