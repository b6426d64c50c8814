#!/usr/bin/env bash
# tests/e2e/test_two_nodes.sh - DESIGN §7 "what works": two nodes as network namespaces,
# curl on node a, nginx (TLS 1.2 on 4543, TLS 1.3 on 4544) on node b, one ecv-agent per
# node scoped with --netns, one tvn on the collector (--dedup bytes, the default).
# Traffic: a GET over TLS 1.2; then one keep-alive TLS 1.3 connection carrying a 300 KB
# download and a 100 KB POST upload (curl with two URLs).
# Asserts, reading the tvn's pcap with tshark: each connection appears once, each
# direction has a synthesized SYN, a FIN, no duplicated byte and no hole; checksums are
# valid, tshark flags no data segment, one FIN per direction; the index page,
# the 300 KB file and the 100 KB upload each appear exactly once; the tvn received both
# nodes' copies (duplicates dropped > 0) and each agent captured its side completely.
# Suricata (default configuration) logs the three HTTP transactions once each, with
# their lengths, and counts no stream event; tshark's expert analysis is clean.
set -u
. "$(dirname "$0")/lib.sh"

e2e_init ecva two-nodes
e2e_web_nodes "4543 4544" big.bin=300K
printf 'ECV two-node index page\n' >"$WWW/index.html"
e2e_random "$E2E_TMP/upload.bin" 100K
e2e_tvn 4580
e2e_agent a 4581
e2e_agent b 4582

note "TLS 1.2: GET /index.html"
e2e_in a curl -sS -k --tlsv1.2 --tls-max 1.2 --max-time 20 -o "$E2E_TMP/got-index.html" \
	"https://$B:4543/index.html" || fail "curl over TLS 1.2 failed"
cmp -s "$E2E_TMP/got-index.html" "$WWW/index.html" || fail "curl got a wrong index page"

note "TLS 1.3 keep-alive: GET /big.bin (300 KB) then POST /upload (100 KB)"
e2e_in a curl -sS -v -k --tlsv1.3 --max-time 30 -o "$E2E_TMP/got-big.bin" "https://$B:4544/big.bin" \
	--next -k --tlsv1.3 --max-time 30 --data-binary "@$E2E_TMP/upload.bin" \
	-o "$E2E_TMP/got-upload.txt" "https://$B:4544/upload" 2>"$E2E_TMP/curl13.log" ||
	{ cat "$E2E_TMP/curl13.log"; fail "curl over TLS 1.3 failed"; }
cmp -s "$E2E_TMP/got-big.bin" "$WWW/big.bin" || fail "curl got a wrong big.bin"
grep -q uploaded "$E2E_TMP/got-upload.txt" || fail "nginx did not take the upload"
grep -qi 're-using existing connection' "$E2E_TMP/curl13.log" ||
	fail "curl opened a second connection: the test needs one keep-alive connection"

# Each node must have captured its own side before the agents stop: node a wrote the
# requests (>= 100 KB upload) and read the responses (>= 300 KB), node b the reverse.
KB100=102400
KB300=307200
bytes_at_least() { [ "$(e2e_agent_metric "$1" "ecv_agent_bytes_total{dir=\"$2\"}")" -ge "$3" ] 2>/dev/null; }
captured() {
	local n
	for n in a b; do
		echo "agent $n:"
		e2e_in $n curl -s --max-time 2 "http://127.0.0.1:${E2E_AGENT_METRICS[$n]}/metrics" |
			grep -v '^#' | sed 's/^/   /'
	done
}
wait_for 15 bytes_at_least a write $KB100 || { captured; fail "agent a did not capture the upload"; }
wait_for 15 bytes_at_least a read $KB300 || { captured; fail "agent a did not capture the download"; }
wait_for 15 bytes_at_least b read $KB100 || { captured; fail "agent b did not capture the upload"; }
wait_for 15 bytes_at_least b write $KB300 || { captured; fail "agent b did not capture the download"; }
for n in a b; do
	for m in ecv_agent_lost_events_total ecv_agent_gaps_total ecv_agent_tx_errors_total; do
		v=$(e2e_agent_metric $n $m)
		[ "$v" = 0 ] || fail "agent $n: $m = $v (want 0)"
	done
done

# SIGINT: each agent closes its open flows (nginx keeps its side alive), flushes and
# reports what it sent; the tvn must have received all of it before it stops.
e2e_stop_agent a
SENT_A=$E2E_SENT
e2e_stop_agent b
SENT_B=$E2E_SENT
note "agents sent $SENT_A + $SENT_B datagrams"
e2e_wait_tvn_rx $((SENT_A + SENT_B)) ||
	fail "tvn received $(e2e_tvn_metric tvn_rx_packets_total) of $((SENT_A + SENT_B)) datagrams"
DROPPED=$(e2e_tvn_metric tvn_dedup_dropped_total)
note "tvn: $(e2e_tvn_metric tvn_rx_packets_total) datagrams in, $DROPPED duplicates dropped"
[ "$DROPPED" -gt 0 ] || fail "tvn dropped no duplicate: it did not get both nodes' copies"
e2e_stop_tvn

e2e_streams
for port in 4543 4544; do
	n=$(e2e_client_ports "$B" $port | wc -l)
	[ "$n" = 1 ] || fail "$n connections to $B:$port in the output (want 1)"
done
P12=$(e2e_client_ports "$B" 4543)
P13=$(e2e_client_ports "$B" 4544)
for d in "$A $P12 $B 4543" "$B 4543 $A $P12" "$A $P13 $B 4544" "$B 4544 $A $P13"; do
	# shellcheck disable=SC2086
	e2e_clean_direction $d
done
note "ok: 4 directions with SYN, FIN, no duplicated byte, no hole"
e2e_clean_capture 2
for p in "$P12 4543" "$P13 4544"; do
	n=$(e2e_flow_sources "$A" "${p% *}" "$E2E_FLOWS" "${p#* }")
	[ "$n" = 2 ] || fail "tvn flow log: connection from port $p had $n sources (want a and b)"
done
note "ok: the tvn flow log lists both nodes as sources of each connection"

e2e_expect_once "$(e2e_dump "$B" 4543 "$A" "$P12")" "$WWW/index.html" "TLS 1.2 response body"
printf 'GET /index.html HTTP/1.1\r\n' >"$E2E_TMP/req12"
e2e_expect_once "$(e2e_dump "$A" "$P12" "$B" 4543)" "$E2E_TMP/req12" "TLS 1.2 request line"
e2e_expect_once "$(e2e_dump "$B" 4544 "$A" "$P13")" "$WWW/big.bin" "TLS 1.3 300 KB download"
e2e_expect_once "$(e2e_dump "$A" "$P13" "$B" 4544)" "$E2E_TMP/upload.bin" "TLS 1.3 100 KB upload"
printf 'POST /upload HTTP/1.1\r\n' >"$E2E_TMP/req13"
e2e_expect_once "$(e2e_dump "$A" "$P13" "$B" 4544)" "$E2E_TMP/req13" "TLS 1.3 POST request line"

# The same output through a stateful IDS: every transaction logged once, whole.
e2e_suricata --only --sessions 2 --expect "GET /index.html 200 $(stat -c %s "$WWW/index.html")" \
	--expect "GET /big.bin 200 $KB300" --expect "POST /upload 200 9"

echo "test_two_nodes: all passed"
