#!/usr/bin/env bash
# tests/e2e/run.sh - `sudo make run`: ECV on this host for real traffic, until Ctrl-C.
#
# One tvn on 127.0.0.1 and one ecv-agent hooking every libssl that running (and new)
# processes map (auto discovery), shipping to it. The deduplicated plaintext goes to a
# pcap in the current directory; the flow log and both logs next to it.
#
# Environment (all optional):
#   ECV_RUN_DIR       where the output goes (default: the current directory)
#   ECV_TVN_PORT      VxLAN port of the tvn on 127.0.0.1 (default 4789)
#   ECV_TVN_HTTP      tvn /metrics, /flows, /capture (default 127.0.0.1:4790)
#   ECV_AGENT_HTTP    agent /metrics (default 127.0.0.1:4791)
#   ECV_AGENT_ARGS    extra agent flags (e.g. "--pid 1234" or "--lib /opt/app/libssl.so")
#   ECV_TVN_ARGS      extra tvn flags (e.g. "--out vxlan:10.0.0.9")
#   ECV_RUN_SECONDS   stop by itself after this many seconds (default: run until Ctrl-C)
#   BUILD             build directory (default build)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
DIR=${ECV_RUN_DIR:-$PWD}
PORT=${ECV_TVN_PORT:-4789}
TVN_HTTP=${ECV_TVN_HTTP:-127.0.0.1:4790}
AGENT_HTTP=${ECV_AGENT_HTTP:-127.0.0.1:4791}
SECS=${ECV_RUN_SECONDS:-0}
PCAP=$DIR/ecv-run.pcap
FLOWS=$DIR/ecv-run-flows.jsonl
TVN_LOG=$DIR/ecv-run-tvn.log
AGENT_LOG=$DIR/ecv-run-agent.log

die() { echo "run: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (eBPF uprobes): run 'sudo make run'"
[ -x "$BUILD/tvn" ] && [ -x "$BUILD/ecv-agent" ] || die "build first: make BUILD=$BUILD"
mkdir -p "$DIR" || die "cannot create $DIR"
command -v curl >/dev/null || die "curl is needed to read the health endpoints"

TVN_PID=
AGENT_PID=
stopping=0

# stop PID NAME: SIGINT (the agent closes its flows and detaches its probes, the tvn
# flushes its outputs), bounded wait, SIGKILL as the last resort.
stop() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -INT "$pid" 2>/dev/null
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "run: $2 did not exit after SIGINT: killing it" >&2
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
}

cleanup() {
	[ "$stopping" = 1 ] && return
	stopping=1
	echo
	echo "== stopping: agent first (it closes open flows), then the tvn"
	stop "$AGENT_PID" ecv-agent
	stop "$TVN_PID" tvn
	if [ -n "${SUDO_USER:-}" ]; then
		chown "$SUDO_USER:" "$PCAP"* "$FLOWS" "$TVN_LOG" "$AGENT_LOG" 2>/dev/null
	fi
	grep -h 'summary\|output ' "$TVN_LOG" 2>/dev/null | sed 's/^/   /'
	echo "   pcap:     $PCAP"
	echo "   flow log: $FLOWS ($(wc -l <"$FLOWS" 2>/dev/null || echo 0) flows)"
	echo "   logs:     $AGENT_LOG $TVN_LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

healthy() { curl -sf --max-time 1 "http://$1/healthz" >/dev/null; }
wait_healthy() { # ADDR PID SECONDS
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		healthy "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# Discovery finds the libraries of running processes; the system's libssl is named too,
# so that short-lived clients (curl, wget, python) started later are captured from their
# first call (a uprobe on a file covers every process that maps it).
LIBS=()
for l in $(ldconfig -p | awk '/libssl\.so\.(3|1\.1) / && /x86-64|aarch64/ {print $NF}'); do
	[ -e "$l" ] && LIBS+=(--lib "$l")
done
rm -f "$PCAP" "$FLOWS"
# shellcheck disable=SC2086
"$BUILD/tvn" --listen "127.0.0.1:$PORT" --allow 127.0.0.0/8 --out "pcap:$PCAP" \
	--flow-log "$FLOWS" --http "$TVN_HTTP" --stats-interval 60s ${ECV_TVN_ARGS:-} \
	>"$TVN_LOG" 2>&1 &
TVN_PID=$!
wait_healthy "$TVN_HTTP" "$TVN_PID" 10 || { cat "$TVN_LOG"; die "the tvn did not start"; }
# shellcheck disable=SC2086
"$BUILD/ecv-agent" --tvn "127.0.0.1:$PORT" --metrics "$AGENT_HTTP" --stats-interval 60s \
	"${LIBS[@]}" ${ECV_AGENT_ARGS:-} >"$AGENT_LOG" 2>&1 &
AGENT_PID=$!
wait_healthy "$AGENT_HTTP" "$AGENT_PID" 30 || { cat "$AGENT_LOG"; die "the agent did not start"; }

cat <<EOF
== ECV is capturing the TLS plaintext of this host (Ctrl-C to stop)
   agent:  $(grep -o 'capturing with .*' "$AGENT_LOG" | head -1)
   hooks:  $(printf "%s " "${LIBS[@]}" | sed "s/--lib //g")+ every libssl running processes map
   tvn:    127.0.0.1:$PORT, dedup $(grep -o 'dedup mode [a-z]*' "$TVN_LOG" | awk '{print $3}')
   pcap:     $PCAP
   flow log: $FLOWS
   metrics:  curl -s http://$TVN_HTTP/metrics      curl -s http://$AGENT_HTTP/metrics
   flows:    curl -s http://$TVN_HTTP/flows
   live:     curl -sN 'http://$TVN_HTTP/capture?filter=tcp+port+443' | wireshark -k -i -
   read it:  tshark -r $PCAP -d tcp.port==443,http -Y http
             (the plaintext still travels on port 443: tell tshark it is HTTP, or http2)
   try:      curl -s https://example.com/ >/dev/null   (any program using libssl)
EOF

start=$SECONDS
while :; do
	kill -0 "$AGENT_PID" 2>/dev/null || { tail -5 "$AGENT_LOG"; die "the agent exited"; }
	kill -0 "$TVN_PID" 2>/dev/null || { tail -5 "$TVN_LOG"; die "the tvn exited"; }
	[ "$SECS" -gt 0 ] && [ $((SECONDS - start)) -ge "$SECS" ] && break
	sleep 1
done
exit 0
