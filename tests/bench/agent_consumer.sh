#!/bin/bash
# tests/bench/agent_consumer.sh - bulk TLS throughput and lost perf events with and
# without ecv-agent (+ tvn), on one machine. Measures the agent's user-space consumer:
# one python ssl server sends BENCH_MB megabytes to one python ssl client over loopback
# in network namespace ecvq-bench (SSL_write_ex / SSL_read_ex, both ends captured by one
# agent scoped with --netns), the agent ships to a tvn on 127.0.0.1:4391 writing
# pcap:/dev/null. Rounds alternate without / with the agent.
#   sudo BUILD=build BENCH_MB=200 BENCH_ROUNDS=3 bash tests/bench/agent_consumer.sh
# Another agent binary: BENCH_AGENT (e.g. an older build, same tvn). Extra agent flags:
# BENCH_AGENT_ARGS (e.g. "--perf-pages 64"). Not a test: prints a
# table and exits 0 unless something failed to run.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
MB=${BENCH_MB:-200}
ROUNDS=${BENCH_ROUNDS:-3}
NS=ecvq-bench
PORT=4390
TVN_PORT=4391
PIDS=()
TMP=

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
	done
	for pid in $(ip netns pids $NS 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
	ip netns del $NS 2>/dev/null
	[ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
[ "$(id -u)" = 0 ] || { echo "skip: needs root"; exit 77; }
TMP=$(mktemp -d /tmp/ecvq-bench.XXXXXX)
ip netns del $NS 2>/dev/null
ip netns add $NS && ip -n $NS link set lo up || exit 1
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" \
	-days 2 -subj /CN=localhost >/dev/null 2>&1 || exit 1

cat >"$TMP/bulk.py" <<'PY'
import socket, ssl, sys, time
mode, port, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if mode == "server":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port)); ls.listen(1)
    open(sys.argv[6], "w").close()
    c, _ = ls.accept(); s = ctx.wrap_socket(c, server_side=True)
    block = bytes(range(256)) * 1024  # 256 KiB per sendall
    for _ in range(mb * 4):
        s.sendall(block)
    s.close()
else:
    ctx = ssl.create_default_context(); ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    t0 = time.monotonic(); n = 0
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        n += len(d)
    dt = time.monotonic() - t0
    if n != mb << 20:
        sys.exit("short transfer: %d bytes" % n)
    print("%.1f" % (n / dt / 1e6))
PY

# one_round: prints MB/s of one transfer.
one_round() {
	rm -f "$TMP/ready"
	ip netns exec $NS python3 "$TMP/bulk.py" server $PORT "$MB" "$TMP/cert.pem" \
		"$TMP/key.pem" "$TMP/ready" &
	local srv=$!
	for _ in $(seq 100); do [ -e "$TMP/ready" ] && break; sleep 0.1; done
	ip netns exec $NS timeout 300 python3 "$TMP/bulk.py" client $PORT "$MB"
	wait $srv
}

start_ecv() {
	"$BUILD/tvn" --listen 127.0.0.1:$TVN_PORT --out pcap:/dev/null >"$TMP/tvn.log" 2>&1 &
	TVN_PID=$!
	PIDS+=("$TVN_PID")
	# shellcheck disable=SC2086
	"${BENCH_AGENT:-$BUILD/ecv-agent}" --no-auto --lib /usr/lib/x86_64-linux-gnu/libssl.so.3 \
		--netns /var/run/netns/$NS --tvn 127.0.0.1:$TVN_PORT ${BENCH_AGENT_ARGS:-} \
		>"$TMP/agent.log" 2>&1 &
	AGENT_PID=$!
	PIDS+=("$AGENT_PID")
	for _ in $(seq 300); do grep -q capturing "$TMP/agent.log" && return 0; sleep 0.1; done
	echo "agent did not start:"; cat "$TMP/agent.log"; exit 1
}

stop_ecv() {
	local t u
	# utime + stime of the agent and the tvn, in clock ticks (fields 14, 15 of
	# /proc/PID/stat).
	t=$(awk '{print $14 + $15}' /proc/$AGENT_PID/stat)
	u=$(awk '{print $14 + $15}' /proc/$TVN_PID/stat)
	kill -TERM $AGENT_PID
	wait $AGENT_PID
	kill -TERM $TVN_PID
	wait $TVN_PID
	PIDS=()
	# "stopped: E events, F frames, D datagrams sent, S send errors, L lost"
	echo "$(sed -n 's/.*stopped: \([0-9]*\) events.* \([0-9]*\) lost.*/\1 \2/p' \
		"$TMP/agent.log") $(awk -v t="$t" -v u="$u" -v hz="$(getconf CLK_TCK)" \
		'BEGIN{printf "%.2f %.2f", t/hz, u/hz}')"
}

without=() with=() lost=() events=() cpu=() tcpu=()
for r in $(seq "$ROUNDS"); do
	without+=("$(one_round)")
	start_ecv
	with+=("$(one_round)")
	stop_ecv >"$TMP/stop"
	read -r ev lo cp tc <"$TMP/stop"
	events+=("$ev")
	lost+=("$lo")
	cpu+=("$cp")
	tcpu+=("$tc")
	echo "round $r: without ${without[-1]} MB/s, with ${with[-1]} MB/s, events $ev," \
		"lost $lo, agent CPU ${cp} s, tvn CPU ${tc} s"
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mw=$(med "${without[@]}")
mx=$(med "${with[@]}")
echo "median bulk MB/s: without $mw, with $mx ($(awk -v a="$mx" -v b="$mw" 'BEGIN{printf "%.1f", 100*a/b}') %)"
echo "lost events per round: ${lost[*]} (events per round: ${events[*]})"
echo "agent CPU seconds (user+sys) per round: ${cpu[*]}"
echo "tvn CPU seconds (user+sys) per round: ${tcpu[*]}"
