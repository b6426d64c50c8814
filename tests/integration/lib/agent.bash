# tests/integration/lib/agent.bash - shared helpers of the test_agent_*.sh scripts.
# Sourced, not run (tests/run.sh only runs *.sh). Every test:
#   - runs its TLS programs in its own network namespace ecvb-<name> (loopback inside),
#     and scopes the agent to it with --netns, so other tests' traffic on this host is
#     never captured and ports never collide;
#   - ships to a tvn on 127.0.0.1 (root namespace) writing a pcap, read back by tshark;
#   - cleans up on exit (processes it started, by pid; its namespace; its temp dir).
# Environment: BUILD (default build), ECVB_AGENT / ECVB_TVN to override the binaries,
# ECVB_PROBE_SITES=exported|auto to run every agent with that --probe-sites (e.g.
# `ECVB_PROBE_SITES=exported ONLY='test_agent_*' bash tests/run.sh`).
# ECV_EVENTS (auto, ringbuf, perf) to run every agent with that --events transport.
# ECV_SOCKET_HOOK=MODE to force the agent's socket hook (--socket-hook MODE) wherever a
# test does not choose one itself (the kernel matrix, tests/kernels/, runs every test
# with each hook).

. "$(dirname "${BASH_SOURCE[0]}")/harness.bash"
ECVB_ROOT=$HARNESS_ROOT
AGENT=${ECVB_AGENT:-$BUILD/ecv-agent}
TVN=${ECVB_TVN:-$BUILD/tvn}
STREAMS=$ECVB_ROOT/tests/integration/lib/streams.py
LIBSSL=/usr/lib/x86_64-linux-gnu/libssl.so.3

METRICS_PORT=0
TMP=

# ecvb_init NAME: preconditions, temp dir, namespace ecvb-NAME, certificate, cleanup.
ecvb_init() {
	local name=$1
	[ "$(id -u)" = 0 ] || skip "needs root (BPF, network namespaces)"
	[ -x "$AGENT" ] || skip "no agent binary at $AGENT (build it first)"
	[ -x "$TVN" ] || skip "no tvn binary at $TVN (build it first)"
	need tshark openssl python3 ip curl
	[ -r /sys/kernel/btf/vmlinux ] || skip "kernel without BTF"
	[ -e "$LIBSSL" ] || skip "no $LIBSSL"
	harness_init "ecvb-$name"
	TMP=$HARNESS_TMP
	# Two runs of one test (two build trees) would share its namespace and ports: the
	# namespace's lock makes the second wait for the first.
	NS=ecvb-$name
	harness_ns "$NS"
	harness_cert "$TMP"
}

udp_listening() { ss -Hlun "sport = :$1" | grep -q .; }
tcp_listening() { ip netns exec "$NS" ss -Hltn "sport = :$1" | grep -q .; }

# start_tvn PORT: tvn on 127.0.0.1:PORT writing $TMP/out.pcap.
start_tvn() {
	TVN_PORT=$1
	PCAP=$TMP/out.pcap
	FLOWS=$TMP/flows.jsonl
	bg "$TVN" --listen 127.0.0.1:"$TVN_PORT" ${TVN_RX:+--rx "$TVN_RX"} --out "pcap:$PCAP" \
		--flow-log "$FLOWS" >"$TMP/tvn.log" 2>&1
	TVN_PID=$BG_PID
	started "$TVN_PID" "$TMP/tvn.log" 10 tvn udp_listening "$TVN_PORT"
}

# openssl_pair PORT [s_client options]: one exchange between openssl s_server and
# s_client (SSL_write/SSL_read); the bytes each side sent are in $TMP/PORT.c and .s.
# SERVER_NS/CLIENT_NS (default $NS), ADDR (default 127.0.0.1) and SERVER_ENV (env
# assignments for the server, e.g. LD_LIBRARY_PATH=...) place the two programs.
openssl_pair() {
	local port=$1 sfd cfd spid cpid sns=${SERVER_NS:-$NS} cns=${CLIENT_NS:-$NS}
	shift
	head -c 3000 /dev/urandom | base64 >"$TMP/$port.c"
	head -c 5000 /dev/urandom | base64 >"$TMP/$port.s"
	mkfifo "$TMP/$port.sin" "$TMP/$port.cin"
	# Held open read-write here so neither program sees end of input early.
	exec {sfd}<>"$TMP/$port.sin" {cfd}<>"$TMP/$port.cin"
	bg ip netns exec "$sns" env ${SERVER_ENV:-} openssl s_server -accept "$port" \
		-cert "$TMP/cert.pem" -key "$TMP/key.pem" -quiet -naccept 1 \
		<"$TMP/$port.sin" >"$TMP/$port.sout" 2>&1
	spid=$BG_PID
	SERVER_PID=$spid
	wait_for 10 bash -c "ip netns exec $sns ss -Hltn 'sport = :$port' | grep -q ." ||
		fail "s_server did not listen on $port"
	[ -z "${BEFORE_CLIENT:-}" ] || $BEFORE_CLIENT
	bg ip netns exec "$cns" openssl s_client -connect "${ADDR:-127.0.0.1}:$port" -quiet "$@" \
		<"$TMP/$port.cin" >"$TMP/$port.cout" 2>"$TMP/$port.cerr"
	cpid=$BG_PID
	cat "$TMP/$port.c" >&$cfd
	wait_for 20 cmp -s "$TMP/$port.c" "$TMP/$port.sout" ||
		fail "s_server on $port did not receive the client's bytes"
	cat "$TMP/$port.s" >&$sfd
	wait_for 20 cmp -s "$TMP/$port.s" "$TMP/$port.cout" ||
		fail "s_client to $port did not receive the server's bytes"
	kill -TERM "$cpid"
	wait "$cpid" 2>/dev/null
	wait_for 10 exited "$spid" || kill -TERM "$spid"
	exec {sfd}>&- {cfd}>&-
}

# python_pair PORT [ADDR]: one exchange between the python peers (SSL_write_ex and
# SSL_read_ex) on ADDR (default 127.0.0.1, ::1 for IPv6); what the client sent and
# received is in $TMP/py$PORT.c2s and .s2c.
python_pair() {
	local port=$1 addr=${2:-127.0.0.1} spid peer=$ECVB_ROOT/tests/integration/lib/tls_peer.py
	head -c 20000 /dev/urandom >"$TMP/py$port.1"
	head -c 777 /dev/urandom >"$TMP/py$port.2"
	bg ip netns exec "$NS" python3 "$peer" server "$port" "$TMP/cert.pem" "$TMP/key.pem" \
		--bind "$addr"
	spid=$BG_PID
	wait_for 10 tcp_listening "$port" || fail "python server did not listen on $port"
	ip netns exec "$NS" python3 "$peer" client "$addr" "$port" --record "$TMP/py$port" \
		"$TMP/py$port.1" "$TMP/py$port.2" || fail "python client to $port failed"
	wait "$spid" || fail "python server on $port failed"
}

# start_agent ARGS...: ecv-agent scoped to $NS shipping to the tvn; waits until it has
# chosen its socket hook and hooked at least one library (log lines of agent/probe.c).
start_agent() {
	METRICS_PORT=${METRICS_PORT:-0}
	local extra=()
	[ "$METRICS_PORT" != 0 ] && extra+=(--metrics 127.0.0.1:"$METRICS_PORT")
	[ -n "${ECVB_PROBE_SITES:-}" ] && extra+=(--probe-sites "$ECVB_PROBE_SITES")
	[ -n "${ECV_EVENTS:-}" ] && extra+=(--events "$ECV_EVENTS")
	[[ -z "${ECV_SOCKET_HOOK:-}" || " $* " == *" --socket-hook "* ]] ||
		extra+=(--socket-hook "$ECV_SOCKET_HOOK")
	bg "$AGENT" --tvn 127.0.0.1:"$TVN_PORT" --netns /var/run/netns/"$NS" "${extra[@]}" \
		"$@" >"$TMP/agent.log" 2>&1
	AGENT_PID=$BG_PID
	started "$AGENT_PID" "$TMP/agent.log" 20 "agent (log line '${AGENT_READY:-hooked }')" \
		grep -q "${AGENT_READY:-hooked }" "$TMP/agent.log"
	note "agent: $(grep -o 'socket hook: .*' "$TMP/agent.log" | head -1); $(grep -o 'events: .*' "$TMP/agent.log" | head -1)"
}

# stop_agent: SIGINT, the agent closes its flows and flushes; it must exit 0.
# Bounded, not timed: removing uprobes costs the kernel ~2 s per hooked library.
stop_agent() { stopped "$AGENT_PID" "$TMP/agent.log" agent 30; }

# stop_tvn: SIGINT, the tvn flushes and closes its pcap; it must exit 0.
stop_tvn() {
	stopped "$TVN_PID" "$TMP/tvn.log" tvn 10
	[ -s "$PCAP" ] || { cat "$TMP/tvn.log"; fail "tvn wrote no pcap"; }
}

# streams: reassembles $PCAP into $TMP/streams.txt and $TMP/dump/.
streams() {
	python3 "$STREAMS" "$PCAP" --dump "$TMP/dump" >"$TMP/streams.txt" ||
		fail "cannot read $PCAP with tshark"
	note "streams in the capture:"
	sed 's/^/   /' "$TMP/streams.txt"
}

# stream_line SPORT DPORT: the streams.txt line of that direction (one, or fail).
stream_line() {
	local l
	l=$(awk -v s="$1" -v d="$2" '$2 == s && $4 == d' "$TMP/streams.txt")
	[ -n "$l" ] || fail "no stream $1 -> $2 in the capture"
	[ "$(echo "$l" | wc -l)" = 1 ] || fail "stream $1 -> $2 appears more than once"
	echo "$l"
}

# stream_file SPORT DPORT: the dumped bytes of that direction.
stream_file() { ls "$TMP"/dump/*_"$1"-*_"$2".bin 2>/dev/null | head -1; }

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# expect_exact SPORT DPORT FILE [syn]: that direction holds exactly FILE's bytes, once,
# with no hole; with "syn", it starts with a synthesized SYN.
expect_exact() {
	local l f
	l=$(stream_line "$1" "$2")
	f=$(stream_file "$1" "$2")
	[ "$(field "$l" dup)" = 0 ] || fail "$1 -> $2: duplicated bytes ($l)"
	[ "$(field "$l" holes)" = 0 ] || fail "$1 -> $2: holes ($l)"
	cmp -s "$f" "$3" || fail "$1 -> $2: bytes differ from $(basename "$3") ($l)"
	if [ "${4:-}" = syn ]; then
		[ "$(field "$l" syn)" = 1 ] || fail "$1 -> $2: no synthesized SYN ($l)"
	fi
	note "ok: $1 -> $2 holds exactly $(basename "$3") ($(stat -c %s "$3") bytes)"
}

# capture_done: lets the last perf samples reach the agent, stops the agent (it must
# exit 0) and the tvn, and reassembles the capture (streams).
capture_done() {
	sleep 0.5
	stop_agent
	stop_tvn
	streams
}

# expect_pair PORT C2S S2C [WHAT]: the connection to PORT was captured (its client port
# in $CPORT), each direction holding exactly that file's bytes after a synthesized SYN.
expect_pair() {
	CPORT=$(client_port_of "$1")
	[ -n "$CPORT" ] || fail "no flow to $1 captured${4:+ ($4)}"
	expect_exact "$CPORT" "$1" "$2" syn
	expect_exact "$1" "$CPORT" "$3" syn
}

# client_vs_s_server PORT CLIENT...: openssl s_server in namespace $CNS (a peer the agent
# does not see) on PORT, the client command CLIENT in $NS with a pipe as its stdin and
# $TMP/cout as its output; the client sends $TMP/c, the server answers $TMP/s, each
# waited for on the other side before both are stopped. The capture is then checked
# with `expect_pair PORT "$TMP/c" "$TMP/s"`.
client_vs_s_server() {
	local port=$1 sfd cfd spid cpid
	shift
	rm -f "$TMP/sin" "$TMP/cin"
	mkfifo "$TMP/sin" "$TMP/cin"
	exec {sfd}<>"$TMP/sin" {cfd}<>"$TMP/cin"
	bg ip netns exec "$CNS" openssl s_server -accept "$port" -cert "$TMP/cert.pem" \
		-key "$TMP/key.pem" -quiet -naccept 1 <"$TMP/sin" >"$TMP/sout" 2>&1
	spid=$BG_PID
	wait_for 10 bash -c "ip netns exec $CNS ss -Hltn 'sport = :$port' | grep -q ." ||
		fail "s_server did not listen on $port"
	bg ip netns exec "$NS" "$@" <"$TMP/cin" >"$TMP/cout" 2>"$TMP/cerr"
	cpid=$BG_PID
	cat "$TMP/c" >&$cfd
	wait_for 20 cmp -s "$TMP/c" "$TMP/sout" || fail "s_server did not receive the client's bytes"
	cat "$TMP/s" >&$sfd
	# Some clients print more than the bytes received (gnutls-cli: the handshake).
	wait_for 20 grep -qF "$(tail -1 "$TMP/s")" "$TMP/cout" ||
		fail "$1 did not receive the server's bytes"
	kill -TERM "$cpid"
	wait "$cpid" 2>/dev/null
	wait_for 10 exited "$spid" || kill -TERM "$spid"
	exec {sfd}>&- {cfd}>&-
}

# build_static_client: $TMP/static_client (lib/static_tls_client.c) linked with
# OpenSSL's static archives, so that no libssl.so is mapped; skips where they are absent.
build_static_client() {
	for a in /usr/lib/x86_64-linux-gnu/libssl.a /usr/lib/x86_64-linux-gnu/libcrypto.a; do
		[ -r "$a" ] || skip "no static OpenSSL ($a; libssl-dev)"
	done
	command -v cc >/dev/null || skip "no C compiler to build the static client"
	cc -O2 -o "$TMP/static_client" "$ECVB_ROOT/tests/integration/lib/static_tls_client.c" \
		/usr/lib/x86_64-linux-gnu/libssl.a /usr/lib/x86_64-linux-gnu/libcrypto.a \
		-lpthread -ldl >"$TMP/cc.log" 2>&1 || { cat "$TMP/cc.log"; skip "cannot link OpenSSL statically"; }
	if ldd "$TMP/static_client" | grep -q libssl; then fail "static client maps libssl.so"; fi
}

# metric NAME: the agent's value of a Prometheus sample (first match), or empty.
metric() {
	curl -s --max-time 2 "http://127.0.0.1:$METRICS_PORT/metrics" |
		awk -v n="$1" '$1 == n || index($1, n "{") == 1 { print $2; exit }'
}

# the server port of a flow is the peer port of the client's ephemeral one: find the
# client port of the (only) connection to PORT in the capture.
client_port_of() {
	awk -v p="$1" '$4 == p { print $2; exit }' "$TMP/streams.txt"
}
