#!/usr/bin/env python3
"""tests/bench/uprobe_floor_budget.py - CPU per request by who spends it.

Reads `perf script -F comm,pid,ip,sym,dso` of a `perf record -e cpu-clock -a -g` run on
stdin; argv: CONFIG REQUESTS SECONDS CPUS ROLE=PID... (the benchmark's own processes:
agent, tvn, nginx, wrk; on a shared machine other processes of the same names are not
ours). A sample of one of those processes goes to the first bucket whose test matches its
call chain (leaf first): BPF programs (perf output inside them apart), the uprobe
mechanism (single-step #DB trap, breakpoint + handler dispatch, uretprobe return), then
the process itself, user and kernel apart; any other sample is "other processes". cpu-clock samples
are evenly spaced, so a bucket's share of all samples times CPUS * SECONDS is its CPU
time; divided by REQUESTS it is CPU per request. Used by tests/bench/uprobe_floor.sh."""
import collections
import sys

PERF_OUT = ("perf_event_output", "perf_output", "bpf_perf_event_output", "__output_copy",
            "perf_prepare_sample", "perf_event_bpf_output")
SSTEP = ("exc_debug_user", "asm_exc_debug", "noist_exc_debug")
BREAK = ("asm_exc_int3", "exc_int3", "do_int3_user", "uprobe_notify_resume", "handle_swbp")
URET = ("__x64_sys_uretprobe", "uprobe_handle_trampoline", "arch_uretprobe_trampoline")


def bucket(role, frames):
    if role is None:
        return "other processes"
    syms = [s for s, _ in frames]
    for i, s in enumerate(syms):
        if s.startswith("bpf_prog_"):
            if any(x.startswith(PERF_OUT) for x in syms[:i]):
                return "perf_event_output (from BPF)"
            name = s.split("_", 3)[-1] if s.count("_") >= 3 else s
            return "BPF program " + name
    if any(s in SSTEP for s in syms):
        return "uprobe single-step trap (#DB)"
    if any(s in BREAK for s in syms):
        return "uprobe breakpoint + dispatch"
    if any(s in URET for s in syms):
        return "uretprobe return"
    kernel = bool(frames) and frames[0][1] == "[kernel.kallsyms]"
    return f"{role} {'(rest) ' if role in ('nginx', 'wrk') else ''}" + (
        "kernel" if kernel else "user")


def main():
    cfg, reqs, secs, cpus = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    roles = {}
    for arg in sys.argv[5:]:
        role, _, pid = arg.partition("=")
        roles[pid] = role
    counts = collections.Counter()
    role, head, frames = None, None, []
    for line in list(sys.stdin) + [""]:
        if not line.strip():
            if head is not None:
                counts["idle" if head[0] == "swapper" else bucket(role, frames)] += 1
            role, head, frames = None, None, []
        elif not line[0].isspace():
            head = line.split()  # comm (may hold spaces) then pid
            role = roles.get(head[-1])
        else:
            parts = line.split(None, 1)
            rest = parts[1] if len(parts) > 1 else ""
            sym, _, dso = rest.rpartition(" (")
            frames.append((sym.split("+")[0], dso.rstrip(")\n")))
    total = sum(counts.values()) or 1
    print(f"{cfg}: {reqs} requests, {total} samples; CPU per request:")
    for name, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        us = n / total * cpus * secs * 1e6 / max(reqs, 1)
        print(f"  {name:40s} {us:8.2f} us  {100 * n / total:5.1f} %")


if __name__ == "__main__":
    main()
