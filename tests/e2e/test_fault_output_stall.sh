#!/usr/bin/env bash
# tests/e2e/test_fault_output_stall.sh - tool outputs that stop reading, with live agents.
#
# The tvn engineer's tests/integration/test_tvn_badinput.sh covers a stalled pcap:- fed by
# replayed datagrams on loopback; this is the two-node variant with real nginx/curl
# traffic and adds an unreachable VxLAN tool. Two nodes, both agents; the tvn has three
# outputs: pcap:- into a pipe nobody reads (stalled), vxlan: to a port where no tool
# listens (every send refused), and a pcap file (healthy, with the default queue); the two
# stalled outputs get queue=1m so that they overflow quickly. nginx sends a 16 MB file (6 MB/s) and
# takes a 4 MB upload. Asserts:
#   - ingest continues: the tvn receives every datagram the agents sent;
#   - the drops are counted per output (tvn_egress_dropped_total{out=...} > 0 for the
#     stalled pipe and for the refused VxLAN tool), and the healthy output drops none;
#   - the healthy pcap holds the download and the upload exactly once, at their positions;
#   - the tvn still exits 0 on SIGINT with its stdout blocked.
set -u
. "$(dirname "$0")/lib_extra.sh"

SIZE=$((16 * 1024 * 1024))
export ECVX_SLOW_RATE=6m
ECVX_NET=10.78.5 ecvx_fault_setup ecvx-fo stall $SIZE
e2e_random "$E2E_TMP/up.bin" 4M
mkfifo "$E2E_TMP/stall"
# Holds the pipe open and never reads it: once its 64 KiB fill, writes block.
e2e_bg_in c hold bash -c 'exec sleep 600 <>"$0"' "$E2E_TMP/stall"
E2E_PCAP=$E2E_TMP/tvn.pcap
E2E_FLOWS=$E2E_TMP/tvn-flows.jsonl
VX=vxlan:127.0.0.1:4699
e2e_bg_in c tvn bash -c 'exec "$@" >"$0"' "$E2E_TMP/stall" "$E2E_TVN" \
	--listen "$E2E_TVN_IP:$E2E_TVN_PORT" --http 127.0.0.1:4680 \
	--out pcap:-,queue=1m --out "$VX,queue=1m" --out "pcap:$E2E_PCAP" --flow-log "$E2E_FLOWS"
E2E_TVNS_PID[tvn]=$E2E_PID
E2E_TVNS_HTTP[tvn]=4680
started "$E2E_PID" "$E2E_TMP/tvn.log" 10 tvn e2e_in c curl -sf http://127.0.0.1:4680/healthz
e2e_agent a 4681
e2e_agent b 4682

note "download 16 MB at 6 MB/s, then upload 4 MB, one TLS 1.3 connection"
ecvx_get_and_upload slow/big.bin "$E2E_TMP/up.bin"
wait_for 15 ecvx_bytes_at_least a read $SIZE || fail "agent a did not capture the download"
wait_for 15 ecvx_bytes_at_least b write $SIZE || fail "agent b did not capture the download"
LOST=$(($(ecvx_agent_sum a ecv_agent_lost_events_total) + $(ecvx_agent_sum b ecv_agent_lost_events_total)))
e2e_stop_agent a
SENT=$E2E_SENT
e2e_stop_agent b
SENT=$((SENT + E2E_SENT))
e2e_wait_tvn_rx "$SENT" ||
	fail "ingest stalled behind the blocked outputs: $(e2e_tvn_metric tvn_rx_packets_total) of $SENT datagrams"
note "tvn received all $SENT datagrams the agents sent"
m() { e2e_in c curl -s --max-time 2 http://127.0.0.1:4680/metrics | awk -v n="$1" '$1 == n { print $2 }'; }
D_PIPE=$(m 'tvn_egress_dropped_total{out="pcap:-"}')
D_VX=$(m "tvn_egress_dropped_total{out=\"$VX\"}")
D_FILE=$(m "tvn_egress_dropped_total{out=\"pcap:$E2E_PCAP\"}")
note "dropped per output: pcap:- ${D_PIPE:-?}, $VX ${D_VX:-?}, pcap file ${D_FILE:-?}"
[ "${D_PIPE:-0}" -gt 0 ] || fail "the stalled pcap:- output counted no drop"
[ "${D_VX:-0}" -gt 0 ] || fail "the refused VxLAN output counted no drop"
[ "${D_FILE:-x}" = 0 ] || fail "the healthy pcap output dropped ${D_FILE:-?} frames"
e2e_stop_tvn

note "the healthy output: download and upload once, at their positions"
opt=()
[ "$LOST" = 0 ] || opt=(--allow-holes) # both agents lost samples: see test_fault_perf_small
r=$(ecvx_check "$B" 4644 "$A" '*' --body "$BIG" --allow-extra "${opt[@]}")
rc=$?
note "$r"
[ $rc = 0 ] || fail "the healthy output is wrong"
PORT=$(echo "$r" | sed -n 's/.*->10\.78\.5\.1:\([0-9]*\) .*/\1/p')
if [ "$LOST" = 0 ]; then
	e2e_streams >/dev/null
	e2e_expect_once "$(e2e_dump "$A" "$PORT" "$B" 4644)" "$E2E_TMP/up.bin" "4 MB upload"
fi
echo "test_fault_output_stall: all passed"
