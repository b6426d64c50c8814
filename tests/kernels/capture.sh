#!/usr/bin/env bash
# tests/kernels/capture.sh - one capture with one forced socket hook, checked
# byte-exact: what test_kernels.sh runs inside each kernel of its subset.
#   capture.sh HOOK
# The agent (--socket-hook HOOK) must report that hook, and the tvn's capture of one
# python ssl exchange (SSL_write_ex/SSL_read_ex) must hold each direction exactly once
# after a synthesized SYN. Also states the kernel the test ran in (uname -r, BTF,
# kprobes), so that a run cannot silently be on another kernel than meant.
. "$(dirname "$0")/../integration/lib/agent.bash"
hook=${1:?usage: capture.sh HOOK}
ecvb_init kcap
note "kernel $(uname -r), BTF: $([ -r /sys/kernel/btf/vmlinux ] && echo yes || echo no)," \
	"kprobes: $([ -e /sys/bus/event_source/devices/kprobe ] && echo yes || echo no)"
start_tvn 4470
start=$SECONDS
start_agent --lib "$LIBSSL" --socket-hook "$hook"
grep -q "socket hook: $hook" "$TMP/agent.log" ||
	fail "agent did not report socket hook $hook: $(grep 'socket hook' "$TMP/agent.log")"
note "agent loaded in $((SECONDS - start)) s"
python_pair 4471
capture_done
expect_pair 4471 "$TMP/py4471.c2s" "$TMP/py4471.s2c"
echo "PASS: $(uname -r) with socket hook $hook: python ssl exchange captured exactly"
