#!/usr/bin/env bash
# test_agent_hooks.sh - every socket-hook mode either works or is refused with one clear
# line, and this test says which ran:
#   --socket-hook syscalls (fd -> socket through the task's file table) captures a
#   python ssl exchange exactly, with the right tuple;
#   --socket-hook kprobe: on a kernel without kprobes the agent exits non-zero naming
#   the cause; with kprobes it must capture like any other mode;
#   --socket-hook fentry: the same (trampolines may be refused);
#   --socket-hook tracepoint (tp_btf/sock_send_length): captures where the kernel has
#   the tracepoint, else is refused with one line naming it;
#   auto: picks the first that works of kprobe, fentry, tracepoint, syscalls, and says so.
# Also: a --lib that does not exist or exports no SSL symbols, and a run without
# CAP_BPF/CAP_PERFMON, are one clear error each.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init hook

start_tvn 4460
port=4461

# capture_with MODE: one python exchange with --socket-hook MODE, checked exactly.
capture_with() {
	local mode=$1 cport
	start_agent --lib "$LIBSSL" --socket-hook "$mode"
	grep -q "socket hook: $mode" "$TMP/agent.log" ||
		fail "agent did not report socket hook $mode: $(grep 'socket hook' "$TMP/agent.log")"
	python_pair $port
	sleep 0.5
	stop_agent
	port=$((port + 1))
}

# try_forced MODE: runs the agent forced to MODE; sets RESULT to "ran" (it hooked and
# runs: it is then tested like syscalls) or "refused" (exited non-zero with a message
# naming the mode).
try_forced() {
	local mode=$1 rc
	bg "$AGENT" --tvn 127.0.0.1:$TVN_PORT --netns /var/run/netns/"$NS" --lib "$LIBSSL" \
		--socket-hook "$mode" >"$TMP/$mode.log" 2>&1
	local pid=$BG_PID
	if wait_for 20 bash -c "grep -q 'hooked ' $TMP/$mode.log || ! kill -0 $pid"; then :; fi
	if kill -0 $pid 2>/dev/null; then
		kill -INT $pid
		wait $pid
		RESULT=ran
		return
	fi
	wait $pid
	rc=$?
	[ $rc != 0 ] || fail "--socket-hook $mode: agent exited 0 without running"
	grep -qi "$mode" "$TMP/$mode.log" || fail "--socket-hook $mode: unclear error: $(cat "$TMP/$mode.log")"
	RESULT=refused
	note "--socket-hook $mode refused (exit $rc): $(grep -i error "$TMP/$mode.log" | head -1)"
}

note "--socket-hook syscalls"
capture_with syscalls

note "--socket-hook kprobe"
try_forced kprobe
if [ ! -e /sys/bus/event_source/devices/kprobe ]; then
	[ "$RESULT" = refused ] || fail "kprobe mode ran on a kernel without kprobes"
	grep -q 'CONFIG_KPROBES' "$TMP/kprobe.log" || fail "kprobe refusal does not say why"
	kprobe=refused
else
	[ "$RESULT" = ran ] || fail "kprobe mode refused on a kernel with kprobes"
	capture_with kprobe
	kprobe=ran
fi

note "--socket-hook fentry"
try_forced fentry
fentry=$RESULT
[ "$fentry" = ran ] && capture_with fentry

note "--socket-hook tracepoint"
try_forced tracepoint
tracepoint=$RESULT
if [ -d /sys/kernel/tracing/events/sock/sock_send_length ]; then
	[ "$tracepoint" = ran ] || fail "tracepoint mode refused on a kernel with sock_send_length"
	capture_with tracepoint
else
	[ "$tracepoint" = refused ] || fail "tracepoint mode ran on a kernel without sock_send_length"
	grep -q 'sock_send_length' "$TMP/tracepoint.log" || fail "tracepoint refusal does not say why"
fi

note "auto"
AGENT_READY='socket hook:' start_agent --lib "$LIBSSL"
auto=$(grep -o 'socket hook: [a-z]*' "$TMP/agent.log" | head -1 | cut -d' ' -f3)
grep -E 'refused|unavailable|verified and loaded' "$TMP/agent.log" | sed 's/^/   /'
stop_agent
want=syscalls
for m in tracepoint fentry kprobe; do [ "${!m}" = ran ] && want=$m; done
[ "$auto" = "$want" ] || fail "auto picked $auto, the first that works is $want"

note "bad --lib"
"$AGENT" --tvn 127.0.0.1:$TVN_PORT --lib /nonexistent/libssl.so.3 --no-auto >"$TMP/e1" 2>&1
rc=$?
[ $rc != 0 ] && grep -q '/nonexistent/libssl.so.3' "$TMP/e1" ||
	fail "missing --lib: exit $rc, message: $(cat "$TMP/e1")"
note "missing --lib: exit $rc: $(grep -i error "$TMP/e1" | head -1)"
"$AGENT" --tvn 127.0.0.1:$TVN_PORT --lib /bin/true --no-auto >"$TMP/e2" 2>&1
rc=$?
[ $rc != 0 ] && grep -q '/bin/true' "$TMP/e2" && grep -q 'SSL_' "$TMP/e2" ||
	fail "--lib without SSL symbols: exit $rc, message: $(cat "$TMP/e2")"
note "--lib without SSL symbols: exit $rc: $(grep -i error "$TMP/e2" | head -1)"

if command -v setpriv >/dev/null; then
	setpriv --reuid 65534 --regid 65534 --clear-groups "$AGENT" --tvn 127.0.0.1:$TVN_PORT \
		--lib "$LIBSSL" --no-auto >"$TMP/e3" 2>&1
	rc=$?
	[ $rc != 0 ] && grep -q 'missing CAP_BPF/CAP_PERFMON (run as root)' "$TMP/e3" ||
		fail "unprivileged run: exit $rc, message: $(cat "$TMP/e3")"
	note "unprivileged: exit $rc: $(grep -i error "$TMP/e3" | head -1)"
fi

stop_tvn
streams
for ((p = 4461; p < port; p++)); do
	expect_pair $p "$TMP/py$p.c2s" "$TMP/py$p.s2c"
done
echo "PASS: hooks on $(uname -r): syscalls=ran kprobe=$kprobe fentry=$fentry" \
	"tracepoint=$tracepoint auto=$auto"
