#!/usr/bin/env bash
# tests/bench/soak.sh - `make soak`: sustained TLS load across two nodes with both agents
# and a tvn, watching memory and the flow tables.
#
# Topology of tests/e2e/lib.sh (namespaces ecvx-soak-{a,b,c}, 10.78.9.0/24): wrk on node
# a against nginx on node b, both over TLS 1.3:
#   - keep-alive load: wrk -t1 -c8, 1 KiB responses (few long flows, many requests);
#   - churn load: wrk -t1 -c4 with "Connection: close", 16 KiB responses (a new TLS
#     connection per request: many short flows that must be expired from both tables).
# Every SOAK_SAMPLE seconds (default 10) the RSS of both agents and of the tvn and the
# active-flow gauges go to a CSV. After the load, the flow tables must drain (agents
# --flow-timeout 10s, tvn --flow-timeout 10s) and memory must be flat after warm-up:
# max RSS of the last quarter <= max RSS of the second quarter x 1.2 + 4 MiB (the first
# quarter is warm-up), for each process.
# Writes docs/soak.md (SOAK_DOC) with the command and the numbers.
# Environment: BUILD, SOAK_SECONDS (default 600), SOAK_SAMPLE (default 10), SOAK_DOC.
# Exit 0 pass, 1 fail, 77 skip.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/e2e/lib_extra.sh"
SECS=${SOAK_SECONDS:-600}
SAMPLE=${SOAK_SAMPLE:-10}
DOC=${SOAK_DOC:-$ROOT/docs/soak.md}
CSV_OUT=${SOAK_CSV:-$ROOT/docs/soak-rss.csv}
TIMEOUT=10

command -v wrk >/dev/null || skip "wrk not installed"
ecvx_net 10.78.9
e2e_init ecvx-soak run
e2e_web_nodes "4643 4644 4645" 1k.bin=1K 16k.bin=16K
# The tvn's pcap would grow by GBs: tools get the stream through /dev/null here, the
# dedup and flow table are what is measured.
E2E_TVN_OUT=pcap:/dev/null e2e_tvn 4680 --flow-timeout ${TIMEOUT}s
TVN_PID=${E2E_TVNS_PID[tvn]}
e2e_agent a 4681 --flow-timeout ${TIMEOUT}s
e2e_agent b 4682 --flow-timeout ${TIMEOUT}s

CSV=$E2E_TMP/rss.csv
echo "t_s,agent_a_rss_kib,agent_b_rss_kib,tvn_rss_kib,tvn_flows_active,agent_a_flows_active,agent_b_flows_active,tvn_rx_packets" >"$CSV"
sample() {
	echo "$1,$(ecvx_rss "${E2E_AGENT_PID[a]}"),$(ecvx_rss "${E2E_AGENT_PID[b]}"),$(ecvx_rss "$TVN_PID")," \
		"$(e2e_tvn_metric tvn_flows_active),$(ecvx_agent_sum a ecv_agent_flows_active)," \
		"$(ecvx_agent_sum b ecv_agent_flows_active),$(e2e_tvn_metric tvn_rx_packets_total)" | tr -d ' ' >>"$CSV"
}

note "soak: ${SECS}s of wrk keep-alive (1 KiB) + wrk Connection: close (16 KiB), sampling every ${SAMPLE}s"
e2e_bg_in a wrk-keepalive wrk -t1 -c8 -d"${SECS}s" "https://$B:4644/1k.bin"
W1=$E2E_PID
e2e_bg_in a wrk-churn wrk -t1 -c4 -d"${SECS}s" -H "Connection: close" "https://$B:4644/16k.bin"
W2=$E2E_PID
start=$SECONDS
while kill -0 "$W1" 2>/dev/null || kill -0 "$W2" 2>/dev/null; do
	t=$((SECONDS - start))
	sample "$t"
	for n in a b; do kill -0 "${E2E_AGENT_PID[$n]}" || fail "agent $n died during the soak"; done
	kill -0 "$TVN_PID" || fail "the tvn died during the soak"
	[ "$t" -le $((SECS + 60)) ] || fail "wrk did not stop"
	sleep "$SAMPLE"
done
wait "$W1" "$W2"
LOAD_END=$((SECONDS - start))
note "load ended after ${LOAD_END}s; waiting for the flow tables to drain"
drained() {
	[ "$(e2e_tvn_metric tvn_flows_active)" -le 0 ] &&
		[ "$(ecvx_agent_sum a ecv_agent_flows_active)" -le 0 ] &&
		[ "$(ecvx_agent_sum b ecv_agent_flows_active)" -le 0 ]
}
# Drained once, and still drained a flow timeout later: end records or FINs arriving
# after the tvn expired a flow must not leave entries behind.
wait_for $((3 * TIMEOUT + 15)) drained
DRAINED=$?
DRAIN_S=$((SECONDS - start - LOAD_END))
sample $((SECONDS - start))
sleep $((TIMEOUT + 5))
wait_for $((TIMEOUT + 5)) drained || DRAINED=1
sample $((SECONDS - start))
FLOWS_LEFT="tvn $(e2e_tvn_metric tvn_flows_active), agent a $(ecvx_agent_sum a ecv_agent_flows_active), agent b $(ecvx_agent_sum b ecv_agent_flows_active)"

reqs() { awk '/requests in/ { print $1 }' "$E2E_TMP/$1.log"; }
R1=$(reqs wrk-keepalive)
R2=$(reqs wrk-churn)
ERRS=$(cat "$E2E_TMP"/wrk-*.log | awk '/Socket errors|Non-2xx/' | tr '\n' ' ')
declare -A V=()
for n in a b; do
	for m in ecv_agent_bytes_total ecv_agent_events_total ecv_agent_lost_events_total \
		ecv_agent_flows_total ecv_agent_tx_packets_total ecv_agent_tx_errors_total; do
		V[$n.$m]=$(ecvx_agent_sum $n $m)
	done
done
for m in tvn_rx_packets_total tvn_rx_bytes_total tvn_dedup_dropped_total tvn_egress_packets_total \
	tvn_rx_dropped_total tvn_rx_dropped_buffers_total tvn_overlap_conflicts_total; do
	V[$m]=$(ecvx_tvn_sum $m)
done
e2e_stop_agent a
e2e_stop_agent b
stop_pid "$TVN_PID" || fail "the tvn did not exit 0"
FLOWLOG=$(wc -l <"$E2E_FLOWS")

VERDICT=$(python3 - "$CSV" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
rows = rows[:-2] or rows  # the last two samples are after the load
n = len(rows)
out, ok = [], True
for col in ("agent_a_rss_kib", "agent_b_rss_kib", "tvn_rss_kib"):
    v = [int(r[col]) for r in rows]
    q2 = v[n // 4:max(n // 2, n // 4 + 1)]
    q4 = v[(3 * n) // 4:]
    limit = max(q2) * 1.2 + 4096
    flat = max(q4) <= limit
    ok &= flat
    out.append(f"{col}: first {v[0]} KiB, 2nd-quarter max {max(q2)}, last-quarter max "
               f"{max(q4)} (limit {int(limit)}) {'flat' if flat else 'GROWING'}")
print(("PASS" if ok else "FAIL") + "|" + "; ".join(out))
PY
)
RSS_OK=${VERDICT%%|*}
RSS_TXT=${VERDICT#*|}

cp "$CSV" "$CSV_OUT" 2>/dev/null || true
mkdir -p "$(dirname "$DOC")"
cat >"$DOC" <<EOF
# Soak test

Command: \`sudo make soak SOAK_SECONDS=$SECS\` (tests/bench/soak.sh; BUILD=$(basename "$BUILD")),
run $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, kernel $(uname -r), socket hook
"$(grep -o 'capturing with socket hook [a-z]*' "$E2E_TMP/agent-a.log" | head -1 | awk '{print $5}')".

Two nodes as network namespaces (wrk on a, nginx TLS 1.3 on b), one agent per node
(\`--flow-timeout ${TIMEOUT}s\`), one tvn (\`--dedup bytes --flow-timeout ${TIMEOUT}s
--out pcap:/dev/null\`). Load for ${LOAD_END} s: \`wrk -t1 -c8\` keep-alive on a 1 KiB file
and \`wrk -t1 -c4 -H "Connection: close"\` on a 16 KiB file (one TLS connection per
request). RSS sampled every ${SAMPLE} s: \`$(basename "$CSV_OUT")\`.

| what | value |
| --- | --- |
| requests served (keep-alive + close) | $R1 + $R2 |
| wrk errors | ${ERRS:-none} |
| plaintext bytes captured (agent a + b) | ${V[a.ecv_agent_bytes_total]} + ${V[b.ecv_agent_bytes_total]} |
| flows seen by the agents (a + b) | ${V[a.ecv_agent_flows_total]} + ${V[b.ecv_agent_flows_total]} |
| lost perf events (a + b) | ${V[a.ecv_agent_lost_events_total]} + ${V[b.ecv_agent_lost_events_total]} |
| agent send errors (a + b) | ${V[a.ecv_agent_tx_errors_total]} + ${V[b.ecv_agent_tx_errors_total]} |
| tvn datagrams received | ${V[tvn_rx_packets_total]} (lost before dedup: ${V[tvn_rx_dropped_total]} in shard queues, ${V[tvn_rx_dropped_buffers_total]} socket buffers) |
| tvn duplicates removed | ${V[tvn_dedup_dropped_total]} |
| tvn frames delivered | ${V[tvn_egress_packets_total]} |
| tvn overlap conflicts | ${V[tvn_overlap_conflicts_total]} |
| flows in the tvn flow log (ended) | $FLOWLOG |
| active flows after the load | all 0 after $DRAIN_S s; $((TIMEOUT + 5)) s later: $FLOWS_LEFT |
| memory | $RSS_TXT |

Verdict: memory $RSS_OK; flow tables $([ $DRAINED = 0 ] && echo drained || echo "NOT drained").
EOF
cat "$DOC"
[ $DRAINED = 0 ] || fail "flows were not expired after the load: $FLOWS_LEFT"
[ "$RSS_OK" = PASS ] || fail "memory grew after warm-up: $RSS_TXT"
echo "soak: passed"
