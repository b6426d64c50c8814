#!/usr/bin/env bash
# test_agent_events.sh - both event transports capture exactly, each when forced:
#   --events ringbuf (the BPF ring buffer) and --events perf (the perf event array) each
#   carry an openssl exchange, a python ssl exchange and one 1 MiB SSL_write_ex (64 full
#   chunks in one BPF run) to the tvn byte-exact, and say which transport they use;
#   a ring asked smaller than one captured call is raised to hold it (logged);
#   auto picks the ring buffer on a kernel that has it (>= 5.8).
# Lost events are covered by tests/e2e/test_fault_{perf,ring}_small.sh.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init events
MiB=1048576
PEER=$ECVB_ROOT/tests/integration/lib/tls_peer.py

start_tvn 4470
METRICS_PORT=4479
port=4471

# big_pair PORT: a python client sends one 1 MiB SSL_write_ex (8-byte length + payload)
# and a small one; what it sent is in $TMP/big$PORT.c2s.
big_pair() {
	local port=$1 spid
	head -c $((MiB - 8)) /dev/urandom >"$TMP/big$port.1"
	head -c 1000 /dev/urandom >"$TMP/big$port.2"
	bg ip netns exec "$NS" python3 "$PEER" server "$port" "$TMP/cert.pem" "$TMP/key.pem"
	spid=$BG_PID
	wait_for 10 tcp_listening "$port" || fail "python server did not listen on $port"
	ip netns exec "$NS" python3 "$PEER" client 127.0.0.1 "$port" --record "$TMP/big$port" \
		"$TMP/big$port.1" "$TMP/big$port.2" || fail "python client to $port failed"
	wait "$spid" || fail "python server on $port failed"
}

# capture_with MODE WHAT: openssl, python and 1 MiB exchanges with --events MODE; the
# agent must say it uses WHAT ("ring buffer" / "perf buffer") and lose nothing.
declare -A MODE_OF=()
capture_with() {
	local mode=$1 what=$2 lost
	start_agent --lib "$LIBSSL" --events "$mode"
	grep -q "events: $what" "$TMP/agent.log" ||
		fail "--events $mode: agent did not say '$what': $(grep 'events' "$TMP/agent.log")"
	openssl_pair $port
	MODE_OF[$port]=openssl
	python_pair $((port + 1))
	MODE_OF[$((port + 1))]=python
	big_pair $((port + 2))
	MODE_OF[$((port + 2))]=big
	sleep 0.5
	lost=$(metric ecv_agent_lost_events_total)
	[ "$lost" = 0 ] || fail "--events $mode: $lost events lost"
	stop_agent
	port=$((port + 3))
}

note "--events ringbuf"
capture_with ringbuf "ring buffer"
note "--events perf"
capture_with perf "perf buffer"

note "--ring-size 4k --max-chunks 2: raised to hold one captured call"
AGENT_READY='socket hook:' start_agent --lib "$LIBSSL" --events ringbuf --ring-size 4k \
	--max-chunks 2
grep -q 'ring buffer raised from 4 to 64 KiB' "$TMP/agent.log" ||
	fail "small ring not raised: $(grep 'ring' "$TMP/agent.log")"
stop_agent

note "--events auto"
AGENT_READY='socket hook:' start_agent --lib "$LIBSSL"
auto=$(grep -o 'events: [a-z]* buffer' "$TMP/agent.log" | head -1)
stop_agent
[ "$auto" = "events: ring buffer" ] || fail "auto chose '$auto' on a kernel with ring buffers"

stop_tvn
streams
for ((p = 4471; p < port; p++)); do
	case ${MODE_OF[$p]} in
	openssl) expect_pair $p "$TMP/$p.c" "$TMP/$p.s" ;;
	python) expect_pair $p "$TMP/py$p.c2s" "$TMP/py$p.s2c" ;;
	big) expect_pair $p "$TMP/big$p.c2s" "$TMP/big$p.s2c" "1 MiB call" ;;
	esac
done
echo "PASS: ring buffer and perf buffer each captured openssl, python and a 1 MiB call" \
	"exactly on $(uname -r)"
