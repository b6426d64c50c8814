#!/usr/bin/env bash
# tests/integration/test_agent_cli.sh - ecv-agent's command line as an operator meets it:
# bad flags print usage and exit 2; --help documents every flag; a missing library, a
# library without SSL symbols and an unresolvable TVN each give one line naming the
# cause and a non-zero exit with no uprobe left attached; a healthy agent serves its
# metrics and exits 0 on SIGTERM, detaching its uprobes.
# Needs root and BPF (exit 77 with a reason otherwise). Ports 4594-4596, files under
# a mktemp dir prefixed ecva-.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
AGENT=$BUILD/ecv-agent
fail=0

if [ "$(id -u)" -ne 0 ]; then
	echo "skip: needs root (BPF)"
	exit 77
fi
if [ ! -x "$AGENT" ]; then
	echo "FAIL: $AGENT not built"
	exit 1
fi

TMP=$(mktemp -d /tmp/ecva-cli.XXXXXX)
APID=
cleanup() {
	[ -n "$APID" ] && kill -KILL "$APID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

# Runs the agent with a bound in time; stdout+stderr in $TMP/out, status in $rc.
run_agent() {
	timeout 90 "$AGENT" "$@" >"$TMP/out" 2>&1
	rc=$?
}

# Uprobes attached to a file show up in `bpftool perf list` with its path.
attached() { bpftool perf list 2>/dev/null | grep -c -F "$1"; }

LIBSSL=$(ldconfig -p | awk '/libssl\.so\.3 / {print $NF; exit}')
if [ -z "$LIBSSL" ]; then
	echo "FAIL: no libssl.so.3 on this machine"
	exit 1
fi
# Private copies: no process maps them, so other agents running on this machine never
# hook these paths and the bpftool checks below see only this test's agent.
cp "$LIBSSL" "$TMP/libssl-ecva.so.3"
LIBC=$(ldconfig -p | awk '/libc\.so\.6 / {print $NF; exit}')
cp "$LIBC" "$TMP/libnossl-ecva.so"

# --- bad usage: exit 2 and the usage text -------------------------------------
while IFS= read -r args; do
	# shellcheck disable=SC2086
	run_agent $args
	if [ "$rc" -eq 2 ] && grep -q '^Usage:' "$TMP/out"; then
		ok "bad usage '$args' -> exit 2 with usage"
	else
		bad "bad usage '$args' -> exit $rc"; sed 's/^/     | /' "$TMP/out" | head -5
	fi
done <<'LIST'
--bogus
--vni 16777216
--vni 12abc
--mtu 100
--mtu -5
--perf-pages 3
--events fast
--ring-size 3000
--ring-size 2g
--ring-size 1k
--max-chunks 65
--socket-hook kretprobe
--flow-timeout soon
--gso sometimes
--nice 20
--nice -21
--nice low
--stats-interval 5x
--pid 0
--metrics nocolon
--no-auto
--tvn
stray-argument
LIST

# --- help and version -----------------------------------------------------------
run_agent --help
if [ "$rc" -eq 0 ]; then ok "--help exits 0"; else bad "--help exit $rc"; fi
for flag in --tvn --vni --mtu --lib --bin --go-bin --no-auto --pid --cgroup --netns --socket-hook \
	--events --ring-size --perf-pages --max-chunks --node --metrics --stats-interval --flow-timeout --verbose \
	--version --help --config --gso --nice; do
	grep -q -- "$flag" "$TMP/out" || bad "--help does not document $flag"
done
run_agent --version
if [ "$rc" -eq 0 ] && grep -q '^ecv-agent ' "$TMP/out"; then ok "--version"; else bad "--version"; fi

# --- --config FILE: the file's values get the command line's checks -----------------
echo '{"vni": 16777216}' >"$TMP/bad-value.json"
echo '{"no-such-flag": 1}' >"$TMP/bad-key.json"
echo '{"tvn": ["no-such-tvn-cfg.invalid"], "vni": 5, "no-auto": true, "lib": "/nonexistent-ecva"}' \
	>"$TMP/good.json"
run_agent --config "$TMP/bad-value.json"
if [ "$rc" -eq 2 ] && grep -q "for --vni" "$TMP/out"; then ok "--config bad value -> exit 2"; else bad "--config bad value -> exit $rc"; fi
run_agent --config "$TMP/bad-key.json"
if [ "$rc" -eq 2 ] && grep -q "unknown key 'no-such-flag'" "$TMP/out"; then ok "--config unknown key -> exit 2"; else bad "--config unknown key -> exit $rc"; fi
run_agent --config "$TMP/good.json" --lib "$TMP/libssl-ecva.so.3"
# the file's --lib comes first and is checked first; the command line adds to it
if [ "$rc" -eq 1 ] && grep -q "failed to hook /nonexistent-ecva" "$TMP/out"; then
	ok "--config values are used (repeatable --lib from the file first)"
else
	bad "--config values not used -> exit $rc"; sed 's/^/     | /' "$TMP/out" | head -3
fi

# --- runtime errors: exit 1, one line naming the cause, nothing attached ----------

run_agent --no-auto --lib "$TMP/missing/libssl.so.3" --tvn 127.0.0.1:4595
if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] && grep -q "failed to hook $TMP/missing/libssl.so.3" "$TMP/out"; then
	ok "missing --lib -> exit $rc: $(grep -m1 error "$TMP/out")"
else
	bad "missing --lib -> exit $rc"; sed 's/^/     | /' "$TMP/out"
fi

# A real library first, then one without SSL symbols: the first one's uprobes were
# attached when the second failed, and must be gone.
run_agent --no-auto --lib "$TMP/libssl-ecva.so.3" --lib "$TMP/libnossl-ecva.so" --tvn 127.0.0.1:4595
if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] && grep -q "libnossl-ecva.so" "$TMP/out"; then
	ok "--lib without SSL symbols -> exit $rc: $(grep -m1 error "$TMP/out")"
else
	bad "--lib without SSL symbols -> exit $rc"; sed 's/^/     | /' "$TMP/out"
fi
n=$(attached "$TMP/")
if [ "$n" -eq 0 ]; then ok "no uprobe left on $TMP/*"; else bad "$n uprobes left on $TMP/*"; fi

run_agent --no-auto --lib "$TMP/libssl-ecva.so.3" --tvn no-such-tvn.invalid:4789
if [ "$rc" -eq 1 ] && grep -q "failed to resolve TVN 'no-such-tvn.invalid:4789'" "$TMP/out"; then
	ok "unresolvable --tvn -> exit 1: $(grep -m1 error "$TMP/out")"
else
	bad "unresolvable --tvn -> exit $rc"; sed 's/^/     | /' "$TMP/out"
fi
[ "$(attached "$TMP/")" -eq 0 ] || bad "uprobes left after the TVN error"

run_agent --no-auto --lib "$TMP/libssl-ecva.so.3" --netns "$TMP/no-such-netns"
if [ "$rc" -eq 1 ] && grep -q "no-such-netns" "$TMP/out"; then
	ok "missing --netns -> exit 1"
else
	bad "missing --netns -> exit $rc"
fi

# --- a healthy run: metrics, then SIGTERM -> exit 0 and detached ------------------
"$AGENT" --no-auto --lib "$TMP/libssl-ecva.so.3" --tvn 127.0.0.1:4595 \
	--metrics 127.0.0.1:4594 --stats-interval 200ms --nice -3 >"$TMP/run.log" 2>&1 &
APID=$!
up=0
for _ in $(seq 1 300); do # up to 60 s for BPF load and attach (loaded CI hosts)
	if curl -sf http://127.0.0.1:4594/healthz >/dev/null 2>&1; then up=1; break; fi
	kill -0 "$APID" 2>/dev/null || break
	sleep 0.2
done
if [ "$up" -eq 1 ]; then
	ok "agent up, /healthz answers"
	curl -sf http://127.0.0.1:4594/metrics >"$TMP/metrics"
	for m in ecv_agent_events_total 'ecv_agent_bytes_total{dir="write"}' \
		'ecv_agent_bytes_total{dir="read"}' ecv_agent_lost_events_total \
		ecv_agent_truncated_total ecv_agent_flows_active ecv_agent_tx_packets_total \
		ecv_agent_tx_errors_total ecv_agent_gaps_total ecv_agent_gap_bytes_total 'ecv_agent_targets{kind="openssl"}'; do
		grep -q -F "$m " "$TMP/metrics" || bad "/metrics lacks $m"
	done
	if grep -q '^ecv_agent_targets{kind="openssl"} 1$' "$TMP/metrics"; then
		ok "/metrics: one target hooked"
	else
		bad "/metrics: ecv_agent_targets is not 1"
	fi
	# --nice: every thread of the agent (consumer and HTTP server) runs at that value
	# (field 19 of /proc/PID/task/TID/stat, counted after the ')' that ends comm).
	nices=$(for t in /proc/"$APID"/task/*/stat; do sed 's/.*) //' "$t" | cut -d' ' -f17; done | sort -u)
	if [ "$nices" = "-3" ]; then ok "--nice -3: every thread at nice -3"; else bad "--nice -3: threads at '$nices'"; fi
	n=$(attached "$TMP/libssl-ecva.so.3")
	if [ "$n" -gt 0 ]; then ok "$n uprobes attached while running"; else bad "no uprobe visible while running"; fi
	kill -TERM "$APID"
	wait "$APID"
	rc=$?
	APID=
	if [ "$rc" -eq 0 ]; then ok "SIGTERM -> exit 0"; else bad "SIGTERM -> exit $rc"; fi
	n=$(attached "$TMP/")
	if [ "$n" -eq 0 ]; then ok "uprobes detached after exit"; else bad "$n uprobes left after exit"; fi
	# --stats-interval: JSON lines on stderr with the counters, the last one at exit.
	if grep '"type":"stats"' "$TMP/run.log" | tail -1 | python3 -c '
import json, sys
s = json.load(sys.stdin)
need = ["events", "bytes", "lost", "truncated", "gaps", "gap_bytes", "flows_active", "tx_packets",
        "tx_bytes", "tx_errors", "targets"]
missing = [k for k in need if k not in s]
sys.exit(1 if missing or s["targets"] != 1 else 0)'; then
		ok "stats lines are JSON with every counter"
	else
		bad "no valid JSON stats line"; grep stats "$TMP/run.log" | tail -2
	fi
else
	bad "agent did not come up"; sed 's/^/     | /' "$TMP/run.log"
fi

if [ "$fail" -ne 0 ]; then
	echo "test_agent_cli: FAILED"
	exit 1
fi
echo "test_agent_cli: all passed"
