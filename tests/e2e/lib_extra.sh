# tests/e2e/lib_extra.sh - helpers on top of lib.sh for the demo, the fault tests, the
# soak and the agent benchmark: an nginx with HTTP/2, a position-exact stream checker,
# metric readers and RSS sampling. Sources lib.sh unless the caller already did.
#
# Everything keeps lib.sh's conventions (e2e_* names there, ecvx_* names here): the
# namespaces made by e2e_topology carry the caller's prefix, every process started goes
# through e2e_bg so that the harness's cleanup (trap EXIT) ends it.

# shellcheck shell=bash disable=SC2034 # variables set here are read by the sourcing script
set -u
ECVX_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${E2E_ROOT:-}" ] || . "$ECVX_LIB/lib.sh"
ECVX_STREAMCHECK=$ECVX_LIB/streamcheck.py

# ecvx_net NET: puts the topology on NET.0/24 (e.g. 10.78.0) instead of lib.sh's
# default, so that a fault test and a test of another engineer never share addresses.
ecvx_net() {
	E2E_NET=$1
	E2E_TVN_IP=$E2E_NET.254
}

# ecvx_metric_in NODE URL NAME: sum of every sample of NAME (all label sets) served at
# URL inside NODE; 1 when the endpoint does not answer.
ecvx_metric_in() {
	local node=$1 url=$2 name=$3 out
	out=$(e2e_in "$node" curl -sf --max-time 2 "$url") || return 1
	# %.0f, not %d: mawk's %d stops at 2^31 - 1 and byte counters pass it in minutes.
	echo "$out" | awk -v n="$name" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.0f\n", s }'
}

# ecvx_tvn_sum NAME [TVN]: e2e_tvn_metric without its 2^31 limit.
ecvx_tvn_sum() {
	ecvx_metric_in c "http://127.0.0.1:${E2E_TVNS_HTTP[${2:-tvn}]}/metrics" "$1"
}

# ecvx_agent_sum NODE NAME: like e2e_agent_metric but summing every label set.
ecvx_agent_sum() {
	ecvx_metric_in "$1" "http://127.0.0.1:${E2E_AGENT_METRICS[$1]}/metrics" "$2"
}

# ecvx_check SRC SPORT DST DPORT [ARGS...]: runs streamcheck.py on the tvn's pcap for
# that direction (see streamcheck.py for ARGS); its report on stdout, 1 on a failure.
ecvx_check() {
	local pcap=${ECVX_PCAP:-$E2E_PCAP}
	python3 "$ECVX_STREAMCHECK" "$pcap" "$@"
}

# ecvx_rss PID: resident set size of PID in KiB (0 when gone).
ecvx_rss() {
	local v
	v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
	echo "${v:-0}"
}

# ecvx_init PREFIX NAME, ecvx_cleanup: e2e_init and the harness's cleanup (the names
# tests/bench/agent_bench.sh and uprobe_floor.sh still use).
ecvx_init() { e2e_init "$@"; }
ecvx_cleanup() { harness_cleanup; }

# ecvx_fault_setup PREFIX NAME SIZE: the fault tests' common start: e2e_web_nodes on
# 10.78.N.0/24 (N chosen by the caller through ECVX_NET, default 10.78.1): curl on a,
# nginx on b (TLS 1.2 on 4643, TLS 1.3 on 4644, HTTP/2 on 4645) serving big.bin (SIZE
# random bytes). Sets A, B, WWW, BIG.
ecvx_fault_setup() {
	ecvx_net "${ECVX_NET:-10.78.1}"
	e2e_init "$1" "$2"
	need dumpcap
	e2e_web_nodes "4643 4644 4645" big.bin="$3"
	BIG=$WWW/big.bin
}

# ecvx_fault_start [ARGS...]: the live tvn (metrics on 4680), the raw capture of the
# bridge, agent a (4681) and agent b (4682, given ARGS).
ecvx_fault_start() {
	e2e_tvn 4680
	ecvx_rawcap
	e2e_agent a 4681
	e2e_agent b 4682 "$@"
}

# ecvx_fault_stop NODE...: stops the agents on NODEs (each must exit 0), waits until the
# tvn has everything they sent, stops the raw capture and the tvn.
ecvx_fault_stop() {
	local n
	for n in "$@"; do e2e_stop_agent "$n"; done
	ecvx_tvn_settle || fail "the tvn kept receiving after the agents stopped"
	ecvx_rawcap_stop
	e2e_stop_tvn
}

# ecvx_download PATH MB [CURL_ARGS...]: node a downloads https://B:4644/PATH (TLS 1.3,
# HTTP/1.1) to $E2E_TMP/got.bin in the background (pid in $CURL); returns once agent b
# has captured MB MiB of it.
ecvx_download() {
	local path=$1 mb=$2
	shift 2
	e2e_bg_in a curl curl -sS -k --tlsv1.3 --http1.1 --max-time 60 "$@" \
		-o "$E2E_TMP/got.bin" "https://$B:4644/$path"
	CURL=$E2E_PID
	wait_for 30 ecvx_bytes_at_least b write $((mb * 1024 * 1024)) ||
		fail "agent b did not capture $mb MB of the download"
}

# ecvx_download_done: the download of ecvx_download ends (bounded) with $BIG's bytes.
ecvx_download_done() {
	wait_for 60 exited "$CURL" || fail "curl did not finish"
	wait "$CURL" || fail "curl failed: $(cat "$E2E_TMP/curl.log")"
	cmp -s "$E2E_TMP/got.bin" "$BIG" || fail "curl got a wrong file"
}

# ecvx_get_and_upload PATH FILE: one TLS 1.3 connection from a: GET https://B:4644/PATH
# (must be $BIG), then POST FILE to /upload.
ecvx_get_and_upload() {
	e2e_in a curl -sS -k --tlsv1.3 --http1.1 --max-time 60 -o "$E2E_TMP/got.bin" \
		"https://$B:4644/$1" --next -k --tlsv1.3 --http1.1 --max-time 60 \
		--data-binary "@$2" -o /dev/null "https://$B:4644/upload" ||
		fail "curl failed"
	cmp -s "$E2E_TMP/got.bin" "$BIG" || fail "curl got a wrong file"
}

# ecvx_rawcap: records every VxLAN datagram reaching the collector's bridge (both
# agents' copies, before the tvn) in $E2E_TMP/raw.pcap, so that the same run can be
# replayed offline through `tvn --read` in another dedup mode or with one node's copy
# only. Stop it with ecvx_rawcap_stop before reading the file.
ecvx_rawcap() {
	ECVX_RAW=$E2E_TMP/raw.pcap
	e2e_bg_in c dumpcap dumpcap -q -B 64 -i br0 -f "udp port $E2E_TVN_PORT" -w "$ECVX_RAW"
	ECVX_RAWCAP_PID=$E2E_PID
	wait_for 10 grep -q 'Capturing on' "$E2E_TMP/dumpcap.log" ||
		wait_for 5 test -s "$ECVX_RAW" ||
		{ cat "$E2E_TMP/dumpcap.log"; fail "dumpcap did not start"; }
}
ecvx_rawcap_stop() {
	sleep 0.5 # the last datagrams the tvn got are on the bridge too
	stop_pid "$ECVX_RAWCAP_PID" 10 >/dev/null
}

# ecvx_offline NAME MODE [TSHARK_FILTER]: replays the raw capture (only the datagrams
# matching the display filter, e.g. "ip.src#1 == 10.78.1.2": #1, the outer header) through `tvn --read
# --dedup MODE`, writing $E2E_TMP/NAME.pcap and $E2E_TMP/NAME-flows.jsonl.
ecvx_offline() {
	local name=$1 mode=$2 in=$ECVX_RAW
	if [ -n "${3:-}" ]; then
		in=$E2E_TMP/$name-in.pcap
		tshark -r "$ECVX_RAW" -Y "$3" -w "$in" 2>/dev/null || fail "cannot filter the raw capture"
	fi
	"$E2E_TVN" --read "$in" --dedup "$mode" --out "pcap:$E2E_TMP/$name.pcap" \
		--flow-log "$E2E_TMP/$name-flows.jsonl" >"$E2E_TMP/$name.log" 2>&1 ||
		{ cat "$E2E_TMP/$name.log"; fail "tvn --read ($mode) failed"; }
}

# ecvx_bytes_at_least NODE DIR N: the agent on NODE captured >= N bytes in DIR.
ecvx_bytes_at_least() {
	[ "$(e2e_agent_metric "$1" "ecv_agent_bytes_total{dir=\"$2\"}")" -ge "$3" ] 2>/dev/null
}

# ecvx_field LINE KEY: the value of KEY=... in a streamcheck report line.
ecvx_field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

# ecvx_tvn_settle [TVN]: waits (bounded, 15 s) until the tvn's received-datagram count
# has not moved for one second: everything the agents sent before has arrived.
ecvx_tvn_settle() {
	local prev=-1 cur i
	for ((i = 0; i < 15; i++)); do
		cur=$(e2e_tvn_metric tvn_rx_packets_total "${1:-tvn}")
		[ "$cur" = "$prev" ] && return 0
		prev=$cur
		sleep 1
	done
	return 1
}

# ecvx_later MSG: records a failure but lets the test go on checking (so that one run
# reports every defect it can see); ecvx_done NAME exits 1 if any was recorded.
ECVX_LATER=()
ecvx_later() {
	echo "FAIL (continuing): $*"
	ECVX_LATER+=("$*")
}
ecvx_done() {
	if [ ${#ECVX_LATER[@]} -gt 0 ]; then
		printf 'FAIL: %s\n' "${ECVX_LATER[@]}"
		exit 1
	fi
	echo "$1: all passed"
}

# ecvx_small_buffer AGENT_B_ARGS...: the small-buffer fault test (test_fault_*_small.sh)
# after ecvx_fault_setup: agent b runs with AGENT_B_ARGS (an event buffer far too small
# for the load); curl downloads $BIG at full speed, then uploads 2 MB. Asserts that b
# counts its lost events and the holes they leave and keeps running; that each node's
# copy alone shows the lost data as sequence holes, never shifted or duplicated data;
# and that the live tvn fills b's holes from a's copy (holes remain only where both
# copies lost the same bytes); and that Suricata reads the live output as one TCP
# conversation (both transactions whole, or where both copies lost bytes, that gap and
# nothing else).
ecvx_small_buffer() {
	local SIZE LOST_B GAPS_B GAPB_B LOST_A r rc n
	SIZE=$(stat -c %s "$BIG")
	e2e_random "$E2E_TMP/up.bin" 2M
	ecvx_fault_start "$@"
	note "agent b: $(grep -o '\(perf\|ring\) buffer raised.*' "$E2E_TMP/agent-b.log")"

	note "download $((SIZE >> 20)) MB and upload 2 MB over TLS 1.3, one connection, full speed"
	ecvx_get_and_upload big.bin "$E2E_TMP/up.bin"
	# Agent a may itself lose events at full speed on a small machine; that is reported,
	# and only where both copies lost the same bytes may a hole remain.
	wait_for 15 ecvx_bytes_at_least a read $SIZE ||
		note "agent a captured $(e2e_agent_metric a 'ecv_agent_bytes_total{dir="read"}') of $SIZE bytes"
	LOST_B=$(ecvx_agent_sum b ecv_agent_lost_events_total)
	GAPS_B=$(ecvx_agent_sum b ecv_agent_gaps_total)
	GAPB_B=$(ecvx_agent_sum b ecv_agent_gap_bytes_total)
	LOST_A=$(ecvx_agent_sum a ecv_agent_lost_events_total)
	note "agent b (small buffer): $LOST_B lost events, $GAPS_B holes of $GAPB_B bytes; agent a: $LOST_A lost"
	[ "$LOST_B" -gt 0 ] || fail "agent b counted no lost events with a buffer of one captured call"
	[ "$GAPS_B" -gt 0 ] || fail "agent b lost events but counted no hole (ecv_agent_gaps_total)"
	kill -0 "${E2E_AGENT_PID[b]}" || fail "agent b died"
	ecvx_fault_stop a b

	note "each node's copy alone: holes where events were lost, nothing shifted"
	for n in a b; do
		ecvx_offline $n-only bytes "ip.src#1 == ${E2E_IP[$n]}"
		r=$(ECVX_PCAP=$E2E_TMP/$n-only.pcap ecvx_check "$B" 4644 "$A" '*' --body "$BIG" \
			--allow-holes --allow-extra --holes "$E2E_TMP/$n.holes")
		rc=$?
		note "$n: $r"
		[ $rc = 0 ] || fail "$n's copy: data shifted or duplicated"
	done
	# r is b's report (the loop's last): a gap, not just a missing tail, is what proves it.
	[ "$(ecvx_field "$r" holes)" -gt 0 ] || fail "b lost events but its copy shows no sequence hole"
	# Every byte missing inside b's copy of the download is one b counted (the upload's
	# holes and the stream's tail may add to the counter, never the other way round).
	[ "$(ecvx_field "$r" hole_bytes)" -le "$GAPB_B" ] ||
		fail "b's copy lacks $(ecvx_field "$r" hole_bytes) bytes, agent b counted $GAPB_B (ecv_agent_gap_bytes_total)"

	note "live tvn, both copies: holes only where both copies lost the same bytes"
	r=$(ecvx_check "$B" 4644 "$A" '*' --body "$BIG" --allow-holes --allow-extra --holes "$E2E_TMP/live.holes")
	rc=$?
	note "download: $r"
	[ $rc = 0 ] || fail "live output of the download is wrong (shifted or duplicated data)"
	python3 - "$E2E_TMP/a.holes" "$E2E_TMP/b.holes" "$E2E_TMP/live.holes" <<'PY' || fail "the tvn did not fill a hole from the other copy"
import sys
def load(p):
    return sorted(tuple(map(int, line.split())) for line in open(p))
def intersect(x, y):  # sorted (offset, length) lists -> their common byte ranges
    out, i, j = [], 0, 0
    while i < len(x) and j < len(y):
        lo = max(x[i][0], y[j][0])
        hi = min(x[i][0] + x[i][1], y[j][0] + y[j][1])
        if lo < hi:
            out.append((lo, hi - lo))
        if x[i][0] + x[i][1] < y[j][0] + y[j][1]:
            i += 1
        else:
            j += 1
    return out
def merged(r):  # adjacent ranges as one, so that both sides compare alike
    out = []
    for o, n in r:
        if out and out[-1][0] + out[-1][1] == o:
            out[-1] = (out[-1][0], out[-1][1] + n)
        else:
            out.append((o, n))
    return out
a, b, live = (load(p) for p in sys.argv[1:])
both = merged(intersect(a, b))
live = merged(live)
size = lambda r: sum(n for _, n in r)
print(f"   lost by a: {size(a)} bytes, by b: {size(b)}, by both: {size(both)}, "
      f"missing in the output: {size(live)}")
sys.exit(0 if live == both else 1)
PY
	# What an IDS reads: where a copy lost bytes the other brought, one conversation
	# (the ACKs stay below a hole while a copy may still fill it). Bytes both copies lost
	# are a gap no tool reads through: Suricata counts it (tcp.reassembly_gap) and
	# must count nothing else.
	if [ -s "$E2E_TMP/live.holes" ]; then
		note "the live output through Suricata: the gap both copies left, no stream event"
		e2e_suricata --sessions 1 --allow-gaps --set stream.reassembly.depth=0
	else
		note "the live output through Suricata: both transactions whole, no stream event"
		e2e_suricata --only --sessions 1 --set stream.reassembly.depth=0 \
			--expect "GET /big.bin 200 $SIZE" --expect "POST /upload 200 9"
	fi
}
