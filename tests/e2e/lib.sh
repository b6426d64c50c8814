# tests/e2e/lib.sh - end-to-end harness: network-namespace "nodes", TLS peers, a TVN,
# one agent per node, and checkers that read the TVN's output the way a tool would.
# Sourced by tests/e2e/test_*.sh (and demo.sh); not run on its own.
#
# Topology made by e2e_topology NODE...:
#
#   PREFIX-NODE1 (eth0 10.77.0.1/24) --veth--+
#   PREFIX-NODE2 (eth0 10.77.0.2/24) --veth--+-- br0 (10.77.0.254/24) in PREFIX-c
#   ...                                           collector: the tvn listens here
#
# Every address lives only inside namespaces made here; the agents run *inside* their
# node's namespace (ip netns exec) so the TVN sees each node's copy arrive from that
# node's address, as on a real cluster, and they are scoped to it with --netns.
# Everything started is remembered and torn down on EXIT (processes by pid, anything
# left inside the namespaces, the namespaces, the temp dir).
#
# Environment: BUILD (default build); E2E_AGENT / E2E_TVN override the binaries.

. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib/harness.bash"
E2E_ROOT=$HARNESS_ROOT
E2E_AGENT=${E2E_AGENT:-$BUILD/ecv-agent}
E2E_TVN=${E2E_TVN:-$BUILD/tvn}
E2E_STREAMS=$E2E_ROOT/tests/integration/lib/streams.py
E2E_LIBSSL=${E2E_LIBSSL:-$(ldconfig -p | awk '/libssl\.so\.3 / && /x86-64/ {print $NF; exit}')}
E2E_NET=10.77.0
E2E_TVN_IP=$E2E_NET.254
E2E_TVN_PORT=4789

E2E_TMP=
E2E_PREFIX=
declare -A E2E_IP=()

# Older names of the harness's skip/fail/note, wait_for and stop_pid, for the scripts
# that still use them (tests/bench/agent_bench.sh and uprobe_floor.sh, tests/e2e/demo.sh).
e2e_skip() { skip "$@"; }
e2e_fail() { fail "$@"; }
e2e_note() { note "$@"; }
e2e_wait_for() { wait_for "$@"; }
e2e_stop() { stop_pid "$@"; }

# e2e_init PREFIX NAME: preconditions, temp dir /tmp/PREFIX-NAME.*, cleanup trap.
# E2E_NEED_TVN=0: the test runs no tvn.
e2e_init() {
	E2E_PREFIX=$1
	[ "$(id -u)" = 0 ] || skip "needs root (BPF, network namespaces)"
	[ -x "$E2E_AGENT" ] || fail "no agent binary at $E2E_AGENT (build it first)"
	[ "${E2E_NEED_TVN:-1}" = 0 ] || [ -x "$E2E_TVN" ] ||
		fail "no tvn binary at $E2E_TVN (build it first)"
	need tshark openssl python3 ip curl nginx
	[ -r /sys/kernel/btf/vmlinux ] || skip "kernel without BTF"
	if [ -z "$E2E_LIBSSL" ] || [ ! -e "$E2E_LIBSSL" ]; then skip "no libssl.so.3 found"; fi
	harness_init "$E2E_PREFIX-$2"
	E2E_TMP=$HARNESS_TMP
	chmod 755 "$E2E_TMP" # nginx workers (www-data) read the served files
}

# e2e_ns NAME: creates namespace PREFIX-NAME with loopback up (replacing a stale one).
e2e_ns() { harness_ns "$E2E_PREFIX-$1"; }

# e2e_topology NODE...: the collector namespace with a bridge, and one namespace per
# node wired to it; node i gets 10.77.0.i (E2E_IP[NODE]).
e2e_topology() {
	local c=$E2E_PREFIX-c i=0 node ns
	e2e_ns c
	ip -n "$c" link add br0 type bridge
	ip -n "$c" addr add "$E2E_TVN_IP/24" dev br0
	ip -n "$c" link set br0 up
	for node in "$@"; do
		i=$((i + 1))
		ns=$E2E_PREFIX-$node
		e2e_ns "$node"
		ip -n "$ns" link add eth0 type veth peer name "v-$node" netns "$c" ||
			fail "cannot create veth for $node"
		ip -n "$c" link set "v-$node" master br0 up
		ip -n "$ns" addr add "$E2E_NET.$i/24" dev eth0
		ip -n "$ns" link set eth0 up
		E2E_IP[$node]=$E2E_NET.$i
	done
}

# e2e_in NODE CMD...: runs CMD inside node NODE ("c" is the collector).
e2e_in() {
	local node=$1
	shift
	ip netns exec "$E2E_PREFIX-$node" "$@"
}

# e2e_bg NAME CMD...: bg (see harness.bash) with output in $E2E_TMP/NAME.log and no
# input; its pid in $E2E_PID.
e2e_bg() {
	local name=$1
	shift
	bg "$@" </dev/null >"$E2E_TMP/$name.log" 2>&1
	E2E_PID=$BG_PID
}

# e2e_bg_in NODE NAME CMD...: e2e_bg inside NODE (ip netns exec execs CMD in place, so
# $E2E_PID is CMD's pid).
e2e_bg_in() {
	local node=$1 name=$2
	shift 2
	e2e_bg "$name" ip netns exec "$E2E_PREFIX-$node" "$@"
}

# e2e_tcp_listening NODE PORT
e2e_tcp_listening() { e2e_in "$1" ss -Hltn "sport = :$2" | grep -q .; }

# e2e_cert: a self-signed certificate in $E2E_TMP/cert.pem, key.pem.
e2e_cert() { harness_cert "$E2E_TMP" ecv-e2e; }

# e2e_random FILE SIZE: SIZE random bytes (e.g. 300K) in FILE.
e2e_random() { head -c "$2" /dev/urandom >"$1"; }

# e2e_nginx NODE WWW P12 P13 [PH2]: nginx in NODE serving WWW: TLS 1.2 + HTTP/1.1 on P12,
# TLS 1.3 + HTTP/1.1 on P13 and, when PH2 is given, TLS 1.2/1.3 + HTTP/2 (ALPN h2) on PH2,
# where PUT /put/NAME stores the body as $E2E_TMP/put/NAME (nginx reads an HTTP/2 body
# whole only there: its POST /upload answers first and resets the stream).
# Keep-alive on, sendfile off (a sendfile'd body never passes through SSL_write), POST
# /upload takes a body of up to 64 MB and answers "uploaded"; everything else is a static
# file of WWW; on P13, /slow/FILE is WWW/FILE sent at ECVX_SLOW_RATE (nginx limit_rate,
# default 2m) so that the *server* writes slowly (a client-side --limit-rate lets nginx
# write the whole file into socket buffers in the first second).
# Access log in $E2E_TMP/nginx-NODE.access.log.
e2e_nginx() {
	local node=$1 www=$2 p12=$3 p13=$4 ph2=${5:-} conf=$E2E_TMP/nginx-$1.conf h2=
	[ -z "$ph2" ] || h2="server {
		listen $ph2 ssl http2;
		ssl_protocols TLSv1.2 TLSv1.3;
		root $www;
		location = /upload { client_max_body_size 64m; return 200 \"uploaded\\n\"; }
		location /put/ {
			alias $E2E_TMP/put/;
			dav_methods PUT;
			client_max_body_size 64m;
		}
	}"
	mkdir -p "$E2E_TMP/put"
	chmod 777 "$E2E_TMP/put"
	cat >"$conf" <<NGINX
worker_processes 1;
pid $E2E_TMP/nginx-$node.pid;
error_log $E2E_TMP/nginx-$node.error.log warn;
events { worker_connections 1024; }
http {
	access_log $E2E_TMP/nginx-$node.access.log;
	client_body_temp_path $E2E_TMP/nginx-body;
	proxy_temp_path $E2E_TMP/nginx-proxy;
	fastcgi_temp_path $E2E_TMP/nginx-fcgi;
	uwsgi_temp_path $E2E_TMP/nginx-uwsgi;
	scgi_temp_path $E2E_TMP/nginx-scgi;
	default_type application/octet-stream;
	types { text/html html; text/plain txt; application/json json; }
	keepalive_timeout 60s;
	keepalive_requests 1000000;
	sendfile off;
	ssl_certificate $E2E_TMP/cert.pem;
	ssl_certificate_key $E2E_TMP/key.pem;
	server {
		listen $p12 ssl;
		ssl_protocols TLSv1.2;
		root $www;
		location = /upload { client_max_body_size 64m; return 200 "uploaded\n"; }
	}
	server {
		listen $p13 ssl;
		ssl_protocols TLSv1.3;
		root $www;
		location = /upload { client_max_body_size 64m; return 200 "uploaded\n"; }
		location /slow/ { alias $www/; limit_rate ${ECVX_SLOW_RATE:-2m}; }
	}
	$h2
}
NGINX
	e2e_bg_in "$node" "nginx-$node" nginx -c "$conf" -g 'daemon off;'
	local p
	for p in "$p12" "$p13" $ph2; do
		if ! wait_for 10 e2e_tcp_listening "$node" "$p"; then
			cat "$E2E_TMP/nginx-$node.log" "$E2E_TMP/nginx-$node.error.log"
			fail "nginx did not start"
		fi
	done
}

# e2e_web_nodes "P12 P13 [PH2]" FILE=SIZE...: the usual scene: nodes a (the client) and
# b (nginx on the ports P12 P13 [PH2], see e2e_nginx) wired to the collector, the
# certificate, and WWW=$E2E_TMP/www holding the random FILEs b serves. Sets A, B, WWW.
e2e_web_nodes() {
	local ports=$1
	shift
	e2e_topology a b
	A=${E2E_IP[a]}
	B=${E2E_IP[b]}
	e2e_cert
	WWW=$E2E_TMP/www
	harness_www "$WWW" "$@"
	# shellcheck disable=SC2086 # the ports are words
	e2e_nginx b "$WWW" $ports
}

# e2e_tvn_start NAME PORT HTTP_PORT [ARGS...]: a tvn in the collector listening on
# 10.77.0.254:PORT, writing $E2E_TMP/NAME.pcap (E2E_TVN_OUT: another --out instead, e.g.
# pcap:/dev/null for a benchmark) and $E2E_TMP/NAME-flows.jsonl, with /metrics on
# 127.0.0.1:HTTP_PORT inside the collector (read it with e2e_tvn_metric).
declare -A E2E_TVNS_PID=() E2E_TVNS_HTTP=()
e2e_tvn_start() {
	local name=$1 port=$2 http=$3
	shift 3
	e2e_bg_in c "$name" "$E2E_TVN" --listen "$E2E_TVN_IP:$port" ${TVN_RX:+--rx "$TVN_RX"} \
		--out "${E2E_TVN_OUT:-pcap:$E2E_TMP/$name.pcap}" --flow-log "$E2E_TMP/$name-flows.jsonl" \
		--http "127.0.0.1:$http" "$@"
	E2E_TVNS_PID[$name]=$E2E_PID
	E2E_TVNS_HTTP[$name]=$http
	started "$E2E_PID" "$E2E_TMP/$name.log" 10 "tvn $name" \
		e2e_in c curl -sf "http://127.0.0.1:$http/healthz"
}

# e2e_tvn HTTP_PORT [ARGS...]: the default tvn "tvn" on port 4789; its capture is
# $E2E_PCAP, its flow log $E2E_FLOWS.
e2e_tvn() {
	e2e_tvn_start tvn "$E2E_TVN_PORT" "$@"
	E2E_PCAP=$E2E_TMP/tvn.pcap
	E2E_FLOWS=$E2E_TMP/tvn-flows.jsonl
}

# e2e_tvn_metric NAME [TVN]: sum of every sample of NAME (all label sets) on a tvn.
e2e_tvn_metric() {
	e2e_in c curl -s --max-time 2 "http://127.0.0.1:${E2E_TVNS_HTTP[${2:-tvn}]}/metrics" |
		awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d\n", s }'
}

# e2e_agent NODE METRICS_PORT [ARGS...]: ecv-agent inside NODE, scoped to it with
# --netns, hooking the system libssl (E2E_AGENT_LIB: another), shipping to the tvn; returns once /healthz
# answers (the agent serves it only after its probes are attached). Pid in
# E2E_AGENT_PID[NODE], log in $E2E_TMP/agent-NODE.log.
declare -A E2E_AGENT_PID=() E2E_AGENT_METRICS=()
e2e_agent() {
	local node=$1 port=$2
	shift 2
	e2e_bg_in "$node" "agent-$node" "$E2E_AGENT" --netns "/var/run/netns/$E2E_PREFIX-$node" \
		--tvn "$E2E_TVN_IP:$E2E_TVN_PORT" --node "$node" --lib "${E2E_AGENT_LIB:-$E2E_LIBSSL}" \
		--metrics "127.0.0.1:$port" --stats-interval 1h ${ECV_EVENTS:+--events "$ECV_EVENTS"} ${ECV_GSO:+--gso "$ECV_GSO"} "$@"
	E2E_AGENT_PID[$node]=$E2E_PID
	E2E_AGENT_METRICS[$node]=$port
	started "$E2E_PID" "$E2E_TMP/agent-$node.log" 90 "agent on $node" \
		e2e_in "$node" curl -sf "http://127.0.0.1:$port/healthz"
	note "agent $node: $(grep -o 'capturing with .*' "$E2E_TMP/agent-$node.log")"
}

# e2e_agent_metric NODE NAME: the agent's value of a sample (first match).
e2e_agent_metric() {
	e2e_in "$1" curl -s --max-time 2 "http://127.0.0.1:${E2E_AGENT_METRICS[$1]}/metrics" |
		awk -v n="$2" '$1 == n || index($1, n "{") == 1 { print $2; exit }'
}

# e2e_stop_agent NODE: SIGINT; the agent closes its flows, flushes, must exit 0. Sets
# E2E_SENT to the datagrams it sent (from the stats line it prints at exit).
e2e_stop_agent() {
	local node=$1
	stopped "${E2E_AGENT_PID[$node]}" "$E2E_TMP/agent-$node.log" "agent $node"
	E2E_SENT=$(grep '"type":"stats"' "$E2E_TMP/agent-$node.log" | tail -1 |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["tx_packets"])') ||
		fail "agent $node printed no final stats line"
}

# e2e_wait_tvn_rx N [TVN...]: waits (bounded) until the tvns (default: tvn) have
# received N datagrams between them.
e2e_tvn_has() {
	local want=$1 sum=0 t
	shift
	for t in "${@:-tvn}"; do sum=$((sum + $(e2e_tvn_metric tvn_rx_packets_total "$t"))); done
	[ "$sum" -ge "$want" ]
}
e2e_wait_tvn_rx() { wait_for 15 e2e_tvn_has "$@"; }

# e2e_stop_tvn [TVN]: SIGINT; the tvn flushes and closes its outputs, must exit 0.
e2e_stop_tvn() {
	local name=${1:-tvn}
	stopped "${E2E_TVNS_PID[$name]}" "$E2E_TMP/$name.log" "tvn $name"
	[ -s "$E2E_TMP/$name.pcap" ] || { cat "$E2E_TMP/$name.log"; fail "tvn $name wrote no pcap"; }
}

# e2e_streams [PCAP]: reassembles every TCP direction of the capture with tshark into
# $E2E_TMP/streams.txt (one line per direction, see streams.py) and $E2E_TMP/dump/
# (both replaced at each call).
e2e_streams() {
	rm -rf "$E2E_TMP/dump"
	python3 "$E2E_STREAMS" "${1:-$E2E_PCAP}" --dump "$E2E_TMP/dump" >"$E2E_TMP/streams.txt" ||
		fail "cannot read ${1:-$E2E_PCAP} with tshark"
	note "streams in $(basename "${1:-$E2E_PCAP}"):"
	sed 's/^/   /' "$E2E_TMP/streams.txt"
}

e2e_field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# e2e_direction SRC SPORT DST DPORT: the one streams.txt line of that direction.
e2e_direction() {
	local l
	l=$(awk -v a="$1" -v b="$2" -v c="$3" -v d="$4" '$1 == a && $2 == b && $3 == c && $4 == d' \
		"$E2E_TMP/streams.txt")
	[ -n "$l" ] || fail "no stream $1:$2 -> $3:$4 in the capture"
	[ "$(echo "$l" | wc -l)" = 1 ] || fail "stream $1:$2 -> $3:$4 listed twice"
	echo "$l"
}

# e2e_clean_direction SRC SPORT DST DPORT: no duplicated byte, no hole, SYN and FIN.
e2e_clean_direction() {
	local l
	l=$(e2e_direction "$@")
	[ "$(e2e_field "$l" dup)" = 0 ] || fail "$1:$2 -> $3:$4: duplicated bytes: $l"
	[ "$(e2e_field "$l" holes)" = 0 ] || fail "$1:$2 -> $3:$4: holes: $l"
	[ "$(e2e_field "$l" syn)" = 1 ] || fail "$1:$2 -> $3:$4: no synthesized SYN: $l"
	[ "$(e2e_field "$l" fin)" = 1 ] || fail "$1:$2 -> $3:$4: no FIN: $l"
}

# e2e_dump SRC SPORT DST DPORT: path of that direction's reassembled bytes.
e2e_dump() { echo "$E2E_TMP/dump/$1_$2-$3_$4.bin"; }

# e2e_count_in HAYSTACK NEEDLE: how many times NEEDLE's bytes occur in HAYSTACK.
e2e_count_in() {
	python3 - "$1" "$2" <<'PY'
import sys
hay = open(sys.argv[1], "rb").read()
needle = open(sys.argv[2], "rb").read()
print(hay.count(needle) if needle else 0)
PY
}

# e2e_expect_once FILE_IN_STREAM CONTENT_FILE WHAT: CONTENT_FILE's bytes occur exactly
# once in the reassembled direction.
e2e_expect_once() {
	local n
	n=$(e2e_count_in "$1" "$2")
	[ "$n" = 1 ] || fail "$3: found $n times in the tvn output (want exactly once)"
	note "ok: $3 ($(stat -c %s "$2") bytes) appears exactly once"
}

# e2e_client_ports DST DPORT: the client ports of every connection to DST:DPORT.
e2e_client_ports() {
	awk -v d="$1" -v p="$2" '$3 == d && $4 == p { print $2 }' "$E2E_TMP/streams.txt" | sort -u
}

# e2e_tshark_count FILTER [PCAP]: frames of the capture matching a display filter, with
# IP and TCP checksum validation on.
e2e_tshark_count() {
	tshark -n -r "${2:-$E2E_PCAP}" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
		-Y "$1" 2>/dev/null | wc -l
}

# e2e_clean_capture NCONN [PCAP]: what a tool relies on: no bad IP/TCP checksum, no
# frame at all that tshark's TCP analysis flags (retransmission = a byte delivered
# twice, out of order, previous segment lost, ACKed unseen segment = a bare ACK or FIN
# sent before the FIN it acknowledges, duplicate ACK): the output reads as one clean
# conversation, handshake and close included; and exactly one SYN, one SYN-ACK and one
# FIN per direction for each of the NCONN connections.
e2e_clean_capture() {
	local n pcap=${2:-$E2E_PCAP}
	n=$(e2e_tshark_count 'ip.checksum.status == 0 or tcp.checksum.status == 0' "$pcap")
	[ "$n" = 0 ] || fail "$n frames with a bad checksum"
	n=$(e2e_tshark_count 'tcp.analysis.flags' "$pcap")
	[ "$n" = 0 ] || fail "$n frames flagged by tshark's TCP analysis:
$(tshark -n -r "$pcap" -o tcp.check_checksum:TRUE -Y 'tcp.analysis.flags' 2>/dev/null | head)"
	n=$(e2e_tshark_count 'tcp.flags.syn == 1 and tcp.flags.ack == 0' "$pcap")
	[ "$n" = "$1" ] || fail "$n SYNs for $1 connections"
	n=$(e2e_tshark_count 'tcp.flags.syn == 1 and tcp.flags.ack == 1' "$pcap")
	[ "$n" = "$1" ] || fail "$n SYN-ACKs for $1 connections"
	n=$(e2e_tshark_count 'tcp.flags.fin == 1' "$pcap")
	[ "$n" = $(($1 * 2)) ] || fail "$n FINs for $1 connections (want one per direction):
$(tshark -n -r "$pcap" -Y 'tcp.flags.fin == 1' 2>/dev/null | head)"
	note "ok: checksums valid, no frame flagged by TCP analysis, one SYN/SYN-ACK and two FINs per connection"
}

# e2e_suricata [PCAP] [ARGS...]: what an IDS reads from the capture (see
# tests/integration/lib/suricata.py for ARGS: --expect "METHOD URL STATUS LENGTH",
# --only, --sessions N, --set KEY=VALUE): Suricata 7 with its default configuration logs
# each expected HTTP transaction exactly once and counts no stream.* event, and tshark's
# expert analysis shows no warning or error. Output in $E2E_TMP/suricata-NAME/.
E2E_SURICATA=$E2E_ROOT/tests/integration/lib/suricata.py
e2e_suricata() {
	local pcap=$E2E_PCAP
	case "${1:-}" in -*|'') ;; *) pcap=$1; shift ;; esac
	command -v suricata >/dev/null || fail "suricata not installed (make deps installs it)"
	python3 "$E2E_SURICATA" "$pcap" --keep "$E2E_TMP/suricata-$(basename "$pcap" .pcap)" "$@" ||
		fail "Suricata does not accept $(basename "$pcap") (details above)"
	note "ok: Suricata logs every transaction of $(basename "$pcap"), no stream event; tshark expert clean"
}

# e2e_flow_sources SRC SPORT [FLOWLOG] [DPORT]: the number of distinct sources the tvn's
# flow log lists for the flow from SRC:SPORT (either direction; to DPORT only, when
# given: a client port may be reused towards two server ports).
e2e_flow_sources() {
	python3 - "${3:-$E2E_FLOWS}" "$1" "$2" "${4:-0}" <<'PY'
import json, os, sys
path, ip, port, peer = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
best = 0
lines = open(path).read().splitlines() if os.path.exists(path) else []
for line in lines:
    try:
        f = json.loads(line)
    except ValueError:
        continue
    ends = {(f.get("src"), f.get("sport"), f.get("dport")), (f.get("dst"), f.get("dport"), f.get("sport"))}
    if any(e[:2] == (ip, port) and (not peer or e[2] == peer) for e in ends):
        best = max(best, len({(s.get("addr"), s.get("vni")) for s in f.get("sources", [])}))
print(best)
PY
}
