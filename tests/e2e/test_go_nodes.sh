#!/usr/bin/env bash
# tests/e2e/test_go_nodes.sh - Go's net/http on two nodes, each with its own agent (the
# deployment shape): both ends of every connection hooked, each node shipping its copy,
# one tvn deduplicating (DESIGN §7). Programs built here from source (Debian's Go, no
# network; the server with Go 1.22 from bookworm-backports when reachable, so that both
# probe sites are in play: the 1.19 stack check's jbe and 1.21+'s push after it).
#
# Node a: the Go client (tests/integration/lib/gotls https-client) and curl; node b: the
# Go server (https-server) and nginx (libssl). Connections, one per port:
#   Go -> Go   HTTP/1.1 over TLS 1.2 (4651) and TLS 1.3 (4652), HTTP/2 over TLS 1.2
#              (4653) and TLS 1.3 (4654): a 1 MiB POST body up, a 1 MiB response down;
#   Go -> Go   32 goroutines, 4 requests each, through one keep-alive pool (4655): 128
#              distinct 16 KiB uploads and 64 KiB responses;
#   curl -> Go HTTP/1.1 over TLS 1.2 (4656) and TLS 1.3 (4657), HTTP/2 over TLS 1.3
#              (4658): 1 MiB both ways;
#   Go -> nginx  GET of a 1 MiB file over TLS 1.3 (4662), POST of 1 MiB over TLS 1.2 (4661).
# Asserts on the tvn's pcap (tshark): every direction once, SYN, FIN, no duplicated
# byte, no hole; both nodes listed as sources of each connection (the same hash-derived
# ISN on both ends, or the copies would not merge); every body exactly once (HTTP/2:
# the DATA frames of its stream, tests/integration/lib/h2data.py); checksums valid and
# tshark's TCP analysis clean; Suricata logs each transaction once, no stream event
# (reassembly depth unlimited: its default, 1 MiB, is smaller than one body).
# Each 1 MiB upload is its connection's first request: the server says nothing before
# its end, so the output must open the server's scaled window by itself (the client's
# node sends the server's ACK, agent/conn.c), whichever node's copy reaches the tvn first.
set -u
. "$(dirname "$0")/lib.sh"

e2e_init ecvg go-nodes
need go
e2e_web_nodes "4661 4662" big.bin=1M
e2e_random "$E2E_TMP/up.bin" 1M
e2e_random "$E2E_TMP/down.bin" 1M
chmod 644 "$E2E_TMP/down.bin"

# Build: the client with Debian's Go, the server with 1.22 when it can be unpacked; the
# GOCACHE is the build tree's (shared with test_agent_go.sh), so a later run only links.
GOSRC=$E2E_TMP/src
cp -r "$E2E_ROOT/tests/integration/lib/gotls" "$GOSRC"
go_build() { # GO OUT
	(cd "$GOSRC" && GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod \
		GOCACHE="$BUILD/go-bpo/cache" \
		GOPATH="$E2E_TMP/gopath" "$1" build -o "$2" .) >>"$E2E_TMP/go.log" 2>&1 ||
		{ cat "$E2E_TMP/go.log"; fail "go build with $1 failed"; }
}
go_build "$(command -v go)" "$E2E_TMP/goclient"
GOSERVER_VER=1.19
if go22=$(bash "$E2E_ROOT/tests/integration/lib/go_bpo.sh" "$BUILD/go-bpo" 1.22 \
	2>"$E2E_TMP/bpo.log"); then
	go_build "$go22" "$E2E_TMP/goserver"
	GOSERVER_VER=1.22
else
	note "server built with Go 1.19: bookworm-backports unreachable ($(tail -1 "$E2E_TMP/bpo.log"))"
	go_build "$(command -v go)" "$E2E_TMP/goserver"
fi

e2e_tvn 4680
e2e_agent a 4681
e2e_agent b 4682
hooked() { grep -q "hooked go /proc/[0-9]*/root$2 " "$E2E_TMP/agent-$1.log"; }

note "Go $GOSERVER_VER server on node b, ports 4651-4658"
e2e_bg_in b goserver "$E2E_TMP/goserver" https-server "$E2E_TMP/cert.pem" "$E2E_TMP/key.pem" \
	"$B":465{1,2,3,4,5,6,7,8}
# Discovery rescans every second: bounded waits, not timing assertions.
wait_for 15 hooked b "$E2E_TMP/goserver" || { cat "$E2E_TMP/agent-b.log"; fail "Go server not hooked"; }
wait_for 10 e2e_tcp_listening b 4657 || { cat "$E2E_TMP/goserver.log"; fail "Go server did not listen"; }
grep -o "goserver: crypto/tls.*" "$E2E_TMP/agent-b.log" | sed 's/^/   /'

# client NAME PORT|URL UP [ENV...]: the Go client on node a POSTs UP (or GETs: "-") and
# keeps the response in $E2E_TMP/got-NAME. The first one waits until node a's agent has
# hooked the client binary (later processes of the same file are hooked already).
client() {
	local name=$1 url=$2 up=$3
	shift 3
	[[ $url == https:* ]] || url=https://$B:$url/xfer/$name
	e2e_bg_in a "client-$name" env GOTLS_WAIT="$E2E_TMP/go-a" GOTLS_DOWNFILE="$E2E_TMP/down.bin" \
		"$@" "$E2E_TMP/goclient" https-client "$url" "$up" "$E2E_TMP/got-$name"
	local pid=$E2E_PID
	if [ ! -e "$E2E_TMP/go-a" ]; then
		wait_for 15 hooked a "$E2E_TMP/goclient" ||
			{ cat "$E2E_TMP/agent-a.log"; fail "Go client not hooked"; }
		touch "$E2E_TMP/go-a"
	fi
	wait "$pid" || { cat "$E2E_TMP/client-$name.log"; fail "Go client $name failed"; }
}
note "Go -> Go: HTTP/1.1 and HTTP/2, TLS 1.2 and 1.3, 1 MiB up and down"
client h1-12 4651 "$E2E_TMP/up.bin" GOTLS_TLS12=1
client h1-13 4652 "$E2E_TMP/up.bin"
client h2-12 4653 "$E2E_TMP/up.bin" GOTLS_TLS12=1 GOTLS_H2=1
client h2-13 4654 "$E2E_TMP/up.bin" GOTLS_H2=1
for n in h1-12 h1-13 h2-12 h2-13; do
	cmp -s "$E2E_TMP/got-$n" "$E2E_TMP/down.bin" || fail "Go client $n received wrong bytes"
done

note "Go -> Go: 32 goroutines x 4 requests through one keep-alive pool (HTTP/1.1, TLS 1.3)"
mkdir -p "$E2E_TMP/many-up" "$E2E_TMP/got-many"
e2e_in a env GOTLS_CONNS=32 GOTLS_REQS=4 GOTLS_UPLEN=16384 GOTLS_DOWNLEN=65536 \
	"$E2E_TMP/goclient" https-client "https://$B:4655/xfer/many" "$E2E_TMP/many-up" \
	"$E2E_TMP/got-many" || fail "concurrent Go clients failed"

note "curl -> Go: HTTP/1.1 over TLS 1.2 and TLS 1.3, HTTP/2 over TLS 1.3"
curl_go() { # NAME PORT CURL-ARGS...
	local name=$1 port=$2
	shift 2
	e2e_in a curl -sS -k --max-time 30 "$@" -H "X-Down-File: $E2E_TMP/down.bin" \
		--data-binary "@$E2E_TMP/up.bin" -o "$E2E_TMP/got-$name" \
		-D "$E2E_TMP/hdr-$name" "https://$B:$port/xfer/$name" || fail "curl $name failed"
	cmp -s "$E2E_TMP/got-$name" "$E2E_TMP/down.bin" || fail "curl $name received wrong bytes"
	grep -qi "x-up-sha256: $(sha256sum <"$E2E_TMP/up.bin" | cut -d' ' -f1)" "$E2E_TMP/hdr-$name" ||
		fail "the Go server received other bytes from curl $name"
}
curl_go curl-h1 4656 --http1.1 --tlsv1.2 --tls-max 1.2
curl_go curl-h13 4657 --http1.1 --tlsv1.3
curl_go curl-h2 4658 --http2 --tlsv1.3

note "Go -> nginx: GET 1 MiB over TLS 1.3, POST 1 MiB over TLS 1.2"
client ng-get "https://$B:4662/big.bin" -
cmp -s "$E2E_TMP/got-ng-get" "$WWW/big.bin" || fail "Go client got a wrong big.bin from nginx"
client ng-post "https://$B:4661/upload" "$E2E_TMP/up.bin" GOTLS_TLS12=1
grep -q uploaded "$E2E_TMP/got-ng-post" || fail "nginx did not take the Go client's upload"

for n in a b; do
	for m in ecv_agent_lost_events_total ecv_agent_gaps_total ecv_agent_tx_errors_total; do
		v=$(e2e_agent_metric $n $m)
		[ "$v" = 0 ] || fail "agent $n: $m = $v (want 0)"
	done
done
e2e_stop_agent a
SENT_A=$E2E_SENT
e2e_stop_agent b
SENT_B=$E2E_SENT
e2e_wait_tvn_rx $((SENT_A + SENT_B)) ||
	fail "tvn received $(e2e_tvn_metric tvn_rx_packets_total) of $((SENT_A + SENT_B)) datagrams"
note "tvn: $(e2e_tvn_metric tvn_rx_packets_total) datagrams in, $(e2e_tvn_metric tvn_dedup_dropped_total) duplicates dropped"
e2e_stop_tvn
e2e_streams

# Every connection once, clean both ways, merged from both nodes' copies.
NCONN=0
NPOOL=0
declare -A CP=()
for port in 4651 4652 4653 4654 4656 4657 4658 4661 4662 4655; do
	ports=$(e2e_client_ports "$B" $port)
	n=$(echo "$ports" | wc -w)
	if [ $port = 4655 ]; then
		[ "$n" -ge 1 ] && [ "$n" -le 32 ] || fail "$n connections to $B:4655 (want 1 to 32)"
		NPOOL=$n
	else
		[ "$n" = 1 ] || fail "$n connections to $B:$port in the output (want 1)"
		CP[$port]=$ports
	fi
	for p in $ports; do
		e2e_clean_direction "$A" "$p" "$B" $port
		e2e_clean_direction "$B" $port "$A" "$p"
		s=$(e2e_flow_sources "$A" "$p" "$E2E_FLOWS" $port)
		[ "$s" = 2 ] || fail "tvn flow log: $A:$p -> $B:$port had $s sources (want a and b)"
	done
	NCONN=$((NCONN + n))
done
note "ok: $NCONN connections, each direction with SYN and FIN, no duplicated byte, no hole, both nodes' copies merged"
e2e_clean_capture $NCONN

MB=1048576
up() { e2e_dump "$A" "${CP[$1]}" "$B" "$1"; }
down() { e2e_dump "$B" "$1" "$A" "${CP[$1]}"; }
for port in 4651 4652 4656 4657; do
	e2e_expect_once "$(up $port)" "$E2E_TMP/up.bin" "HTTP/1.1 upload to $port"
	e2e_expect_once "$(down $port)" "$E2E_TMP/down.bin" "HTTP/1.1 download from $port"
done
e2e_expect_once "$(down 4662)" "$WWW/big.bin" "nginx's 1 MiB response to the Go client"
e2e_expect_once "$(up 4661)" "$E2E_TMP/up.bin" "the Go client's 1 MiB upload to nginx"
# HTTP/2: each body is its stream's DATA frames, the framing intact around them.
for port in 4653 4654 4658; do
	for d in up down; do
		python3 "$E2E_ROOT/tests/integration/lib/h2data.py" "$($d $port)" "$E2E_TMP/h2-$port-$d" \
			>"$E2E_TMP/h2-$port-$d.txt" || fail "HTTP/2 on $port ($d): framing broken"
	done
	[ "$(wc -l <"$E2E_TMP/h2-$port-up.txt")" = 1 ] ||
		fail "HTTP/2 on $port: not one request body: $(cat "$E2E_TMP/h2-$port-up.txt")"
	cmp -s "$E2E_TMP"/h2-$port-up/stream-*.bin "$E2E_TMP/up.bin" ||
		fail "HTTP/2 on $port: the request body differs"
	[ "$(awk '{ print $3 }' "$E2E_TMP/h2-$port-down.txt" | paste -sd ' ')" = "$MB" ] ||
		fail "HTTP/2 on $port: not one response body: $(cat "$E2E_TMP/h2-$port-down.txt")"
	cmp -s "$E2E_TMP/h2-$port-down/stream-$(awk -v n=$MB '$3 == n { print $2 }' \
		"$E2E_TMP/h2-$port-down.txt").bin" "$E2E_TMP/down.bin" ||
		fail "HTTP/2 on $port: the response body differs"
	note "ok: HTTP/2 on $port: one 1 MiB body each way in its DATA frames, byte-exact"
done
# The pool: each of the 128 uploads and responses once among its connections.
python3 - "$E2E_TMP" "$A" "$B" <<'PY' || fail "the concurrent requests' bodies are not each once in the capture"
import glob, os, sys
tmp, a, b = sys.argv[1:]
ups = b"".join(open(f, "rb").read() for f in glob.glob(f"{tmp}/dump/{a}_*-{b}_4655.bin"))
downs = b"".join(open(f, "rb").read() for f in glob.glob(f"{tmp}/dump/{b}_4655-{a}_*.bin"))
bad = 0
for d, hay in (("many-up", ups), ("got-many", downs)):
    files = glob.glob(f"{tmp}/{d}/*")
    for f in files:
        n = hay.count(open(f, "rb").read())
        if n != 1:
            print(f"{os.path.basename(f)}: {n} times in the capture", file=sys.stderr)
            bad += 1
    if len(files) != 128:
        print(f"{d}: {len(files)} bodies, not 128", file=sys.stderr)
        bad += 1
print(f"== ok: 128 uploads and 128 responses of the pool each exactly once" if not bad else "")
sys.exit(bad > 0)
PY

MB=1048576
# Suricata, on the single connections and on the pool apart. In the pool Go's net/http
# reads a response on another goroutine than the one writing the request, so a client's
# agent may learn of the read first; the tvn numbers that bare ACK at its direction's
# emitted edge, not before its own last request.
tshark -n -r "$E2E_PCAP" -Y 'tcp.port == 4655' -w "$E2E_TMP/pool.pcap" 2>/dev/null
tshark -n -r "$E2E_PCAP" -Y '!(tcp.port == 4655)' -w "$E2E_TMP/single.pcap" 2>/dev/null
e2e_suricata "$E2E_TMP/single.pcap" --only --sessions $((NCONN - NPOOL)) \
	--set stream.reassembly.depth=0 \
	--expect "POST /xfer/h1-12 200 $MB" --expect "POST /xfer/h1-13 200 $MB" \
	--expect "POST /xfer/h2-12 200 -" --expect "POST /xfer/h2-13 200 -" \
	--expect "POST /xfer/curl-h1 200 $MB" --expect "POST /xfer/curl-h13 200 $MB" \
	--expect "POST /xfer/curl-h2 200 -" \
	--expect "GET /big.bin 200 $MB" --expect "POST /upload 200 9"
e2e_suricata "$E2E_TMP/pool.pcap" --only --sessions "$NPOOL" \
	--expect "POST /xfer/many 200 65536x128"

echo "test_go_nodes: all passed (Go 1.19 client, Go $GOSERVER_VER server)"
