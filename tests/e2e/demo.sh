#!/usr/bin/env bash
# tests/e2e/demo.sh - `sudo make demo`: ECV end to end on one machine, in about a minute.
#
#   ecvx-demo-client (10.78.0.1)    ecvx-demo-server (10.78.0.2)
#   curl  + ecv-agent               nginx (TLS 1.2/1.3, HTTP/1.1 + HTTP/2) + ecv-agent
#              \                      /
#               VxLAN/UDP 4789 ------+---> ecvx-demo-c (10.78.0.254): tvn
#                                          pcap + flow log + /metrics + /capture
#
# Both agents capture the same connections (one at each end), so every flow reaches the
# tvn twice; the tvn keeps one copy. The demo then shows what a tool would read.
# Ctrl-C at any time: the trap ends every process it started (agents detach their
# probes), deletes the namespaces and the temp dir.
# Environment: BUILD, ECV_DEMO_PCAP (where the pcap is copied, default ./ecv-demo.pcap),
# E2E_KEEP=1 keeps the temp dir.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT_PCAP=${ECV_DEMO_PCAP:-$PWD/ecv-demo.pcap}

if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (eBPF probes, network namespaces): run 'sudo make demo'" >&2
	exit 1
fi
bash "$ROOT/tools/deps.sh" || { echo "demo: cannot install the dependencies" >&2; exit 1; }

. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/e2e/lib_extra.sh"
ecvx_net 10.78.0
P12=4643 # TLS 1.2, HTTP/1.1
P13=4644 # TLS 1.3, HTTP/1.1
PH2=4645 # TLS 1.3, HTTP/2
TVN_HTTP=4680

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { echo "   $*"; }

ecvx_init ecvx-demo run
# lib.sh's INT/TERM trap exits 1 and its EXIT trap cleans up; say so when it happens.
trap 'echo; echo "demo: interrupted, cleaning up"; exit 130' INT TERM

step "1. two worker nodes and a collector (network namespaces)"
e2e_topology client server
CLIENT=${E2E_IP[client]}
SERVER=${E2E_IP[server]}
say "client node $CLIENT (curl), server node $SERVER (nginx), collector $E2E_TVN_IP (tvn)"
e2e_cert
WWW=$E2E_TMP/www
mkdir -p "$WWW"
printf '<html><body>Hello from the ECV demo</body></html>\n' >"$WWW/index.html"
printf '{"service":"orders","status":"ok"}\n' >"$WWW/status.json"
# 100 KB of readable text, so the follow-stream view below shows something meaningful.
python3 -c '
import sys
out = []
i = 0
while sum(map(len, out)) < 102400:
    out.append("line %05d: the quick brown fox jumps over the lazy dog\n" % i)
    i += 1
sys.stdout.write("".join(out)[:102400])' >"$WWW/report.txt"
printf '{"user":"alice","card":"4111-1111-1111-1111","amount":42.50}' >"$E2E_TMP/order.json"
chmod -R a+rX "$WWW"
e2e_nginx server "$WWW" $P12 $P13 $PH2
say "nginx: TLS 1.2 on :$P12, TLS 1.3 on :$P13, HTTP/2 on :$PH2 (self-signed certificate)"

step "2. the tvn in the collector, then one ecv-agent per node (scoped with --netns)"
e2e_tvn $TVN_HTTP
say "tvn: listening on $E2E_TVN_IP:$E2E_TVN_PORT, pcap $E2E_PCAP, http://127.0.0.1:$TVN_HTTP"
# An analyst's live view: /capture streams the deduplicated traffic as a pcap.
e2e_bg_in c capture curl -sN --max-time 60 -o "$E2E_TMP/live.pcap" \
	"http://127.0.0.1:$TVN_HTTP/capture?filter=tcp+port+$PH2&seconds=50"
CAPTURE_PID=$E2E_PID
e2e_agent client 4681
e2e_agent server 4682

step "3. HTTPS traffic (curl -> nginx)"
c() { e2e_in client curl -sS -k --max-time 20 "$@"; }
say "TLS 1.2  HTTP/1.1  GET /index.html"
c --tlsv1.2 --tls-max 1.2 -o /dev/null "https://$SERVER:$P12/index.html" || e2e_fail "curl failed"
say "TLS 1.3  HTTP/1.1  POST /upload (a JSON order), then GET /report.txt (100 KB), one connection"
c --tlsv1.3 --http1.1 -H 'Content-Type: application/json' --data-binary "@$E2E_TMP/order.json" \
	-o /dev/null "https://$SERVER:$P13/upload" --next -k --tlsv1.3 --http1.1 \
	-o "$E2E_TMP/got-report.txt" "https://$SERVER:$P13/report.txt" || e2e_fail "curl failed"
cmp -s "$E2E_TMP/got-report.txt" "$WWW/report.txt" || e2e_fail "curl got a wrong report.txt"
say "TLS 1.3  HTTP/2    GET /status.json, POST /upload, GET /report.txt, one connection"
c --http2 -o /dev/null "https://$SERVER:$PH2/status.json" \
	--next -k --http2 --data-binary "@$E2E_TMP/order.json" -o /dev/null "https://$SERVER:$PH2/upload" \
	--next -k --http2 -o /dev/null "https://$SERVER:$PH2/report.txt" || e2e_fail "curl failed"

step "4. stop the agents (they close their flows and flush), then the tvn"
wrote() { [ "$(ecvx_agent_sum "$1" ecv_agent_bytes_total)" -ge "$2" ] 2>/dev/null; }
# Each node moved > 200 KB (two 100 KB downloads): wait until each agent has it all.
e2e_wait_for 15 wrote client 204800 || say "warning: the client agent captured less than expected"
e2e_wait_for 15 wrote server 204800 || say "warning: the server agent captured less than expected"
declare -A AG=()
for n in client server; do
	for m in ecv_agent_events_total ecv_agent_bytes_total ecv_agent_lost_events_total \
		ecv_agent_tx_packets_total ecv_agent_flows_total; do
		AG[$n.$m]=$(ecvx_agent_sum $n $m)
	done
done
e2e_stop_agent client
SENT=$E2E_SENT
e2e_stop_agent server
SENT=$((SENT + E2E_SENT))
e2e_wait_tvn_rx "$SENT" || say "warning: the tvn received fewer datagrams than the agents sent"
declare -A TV=()
for m in tvn_rx_packets_total tvn_rx_bytes_total tvn_dedup_dropped_total tvn_dedup_trimmed_total \
	tvn_egress_packets_total tvn_overlap_conflicts_total tvn_meta_frames_total; do
	TV[$m]=$(e2e_tvn_metric $m)
done
kill -INT "$CAPTURE_PID" 2>/dev/null
e2e_stop_tvn
say "agents sent $SENT datagrams; the tvn received ${TV[tvn_rx_packets_total]}"

step "5. what a tool sees: the tvn's pcap read by tshark (clear text, no keys)"
TS=(tshark -n -r "$E2E_PCAP" -d "tcp.port==$P12,http" -d "tcp.port==$P13,http"
	-d "tcp.port==$PH2,http2")
say "HTTP/1.1 (tshark -d tcp.port==$P12,http -Y http):"
"${TS[@]}" -Y http -T fields -E separator=' ' -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport \
	-e http.request.method -e http.request.uri -e http.response.code -e http.response.phrase \
	-e http.content_type -e http.content_length 2>/dev/null |
	awk '{ printf "     %s:%s -> %s:%s  ", $1, $2, $3, $4; for (i = 5; i <= NF; i++) printf "%s ", $i; print "" }'
say "HTTP/2 (tshark -d tcp.port==$PH2,http2 -Y http2.type==1, HEADERS frames):"
"${TS[@]}" -Y 'http2.type == 1' -T fields -E separator=' ' -E occurrence=f -e ip.src -e tcp.srcport \
	-e ip.dst -e tcp.dstport -e http2.headers.method -e http2.headers.path \
	-e http2.headers.status -e http2.headers.content_type 2>/dev/null |
	awk '{ printf "     %s:%s -> %s:%s  ", $1, $2, $3, $4; for (i = 5; i <= NF; i++) printf "%s ", $i; print "" }'
say "HTTP/2 DATA the client sent (the POSTed order, decrypted):"
"${TS[@]}" -Y "http2.type == 0 and tcp.dstport == $PH2" -T fields -e http2.data.data 2>/dev/null |
	tr -d ':\n' | xxd -r -p | head -c 300 | sed 's/^/     /'
echo
say "follow the first TCP stream in the pcap (tshark -z follow,tcp,ascii,0), trimmed:"
tshark -n -q -r "$E2E_PCAP" -z follow,tcp,ascii,0 2>/dev/null | sed -n '6,$p' |
	grep -Ev '^[[:space:]]*[0-9]+$' | head -24 | cut -c1-100 | sed 's/^/     | /'

step "5b. what an IDS sees: Suricata (default configuration) on the same pcap"
say "suricata -r \$PCAP -k none --set stats.stream-events=true (eve.json http records):"
e2e_suricata --only --sessions 3 --expect "GET /index.html 200 $(stat -c %s "$WWW/index.html")" \
	--expect "POST /upload 200 9x2" --expect "GET /report.txt 200 102400x2" \
	--expect "GET /status.json 200 $(stat -c %s "$WWW/status.json")" | sed 's/^/     /'
[ "${PIPESTATUS[0]}" = 0 ] || e2e_fail "Suricata does not accept the demo's pcap"
python3 - "$E2E_TMP/suricata-tvn/eve.json" <<'PY'
import json, sys
for e in map(json.loads, open(sys.argv[1])):
    h = e.get("http", {})
    if e.get("event_type") == "http" and h.get("url"):
        print("     %s:%s -> %s:%s  %s %s %s %s bytes" % (e["src_ip"], e["src_port"], e["dest_ip"],
              e["dest_port"], h.get("http_method"), h["url"], h.get("status"), h.get("length")))
PY

step "6. dedup: each connection arrived twice (once per node), was delivered once"
python3 - "$E2E_FLOWS" "$CLIENT=client" "$SERVER=server" <<'PY'
import json, sys
node = dict(a.split("=") for a in sys.argv[2:])
print("     %-28s %-8s %7s %9s %8s %9s %8s" % ("connection", "copies", "pkts in", "bytes in",
                                             "pkts out", "bytes out", "dropped"))
for line in open(sys.argv[1]):
    f = json.loads(line)
    srcs = f.get("sources", [])
    names = ["%s (%s)" % (node.get(s.get("addr"), "?"), s.get("addr")) for s in srcs]
    conn = "%s:%s > :%s" % (f["src"], f["sport"], f["dport"])
    print("     %-28s %-8d %7d %9d %8d %9d %8d" % (conn, len(srcs), f["pkts_in"], f["bytes_in"],
          f["pkts_out"], f["bytes_out"], f["pkts_dropped"]))
    kept = f.get("kept")
    print("       copies from %s; %s" % (", ".join(names),
          "kept " + kept["addr"] if kept else "each byte taken from the first copy to bring it"))
PY
say "tvn /metrics: ${TV[tvn_rx_packets_total]} frames in, ${TV[tvn_dedup_dropped_total]} duplicates removed," \
	"${TV[tvn_dedup_trimmed_total]} trimmed, ${TV[tvn_egress_packets_total]} frames out," \
	"${TV[tvn_overlap_conflicts_total]} conflicts, ${TV[tvn_meta_frames_total]} metadata frames"
for n in client server; do
	say "agent $n: ${AG[$n.ecv_agent_events_total]} events, ${AG[$n.ecv_agent_bytes_total]} plaintext bytes," \
		"${AG[$n.ecv_agent_flows_total]} flows, ${AG[$n.ecv_agent_lost_events_total]} lost events"
done

# The demo also checks itself: the 100 KB HTTP/1.1 download must be in the output once.
e2e_streams >/dev/null
P13C=$(e2e_client_ports "$SERVER" $P13)
[ -n "$P13C" ] || e2e_fail "the TLS 1.3 connection is not in the tvn's output"
n=$(e2e_count_in "$(e2e_dump "$SERVER" $P13 "$CLIENT" "$P13C")" "$WWW/report.txt")
[ "$n" = 1 ] || e2e_fail "report.txt appears $n times in the output (want exactly once)"
say "check: the 100 KB report.txt is in the output exactly once, byte for byte"

step "7. where the output is"
cp "$E2E_PCAP" "$OUT_PCAP" || e2e_fail "cannot copy the pcap to $OUT_PCAP"
[ -n "${SUDO_USER:-}" ] && chown "$SUDO_USER:" "$OUT_PCAP" 2>/dev/null
say "pcap: $OUT_PCAP ($(tshark -r "$OUT_PCAP" 2>/dev/null | wc -l) frames)"
say "      wireshark $OUT_PCAP   (Decode As: TCP port $P12/$P13 -> HTTP, $PH2 -> HTTP2)"
say "      tshark -r $OUT_PCAP -d tcp.port==$P13,http -Y http"
say "live /capture during the demo: $(tshark -r "$E2E_TMP/live.pcap" 2>/dev/null | wc -l) frames of the HTTP/2 connection"
say "      (curl -sN 'http://TVN:PORT/capture?filter=tcp+port+$PH2' | wireshark -k -i -)"
say "namespaces, processes and probes are removed on exit"
echo
echo "demo: done"
