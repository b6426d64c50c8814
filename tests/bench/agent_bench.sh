#!/usr/bin/env bash
# tests/bench/agent_bench.sh - agent overhead on TLS, side by side in one run (make bench).
#
# Two nodes as network namespaces (tests/e2e/lib.sh: ecvx-bench-{a,b,c}, 10.78.8.0/24):
# wrk/curl on a, nginx (TLS 1.3, keep-alive, sendfile off) on b. Each round measures
# four configurations in turn, so drift (noisy neighbours) hits them alike: no ECV; the
# uprobe floor (tests/bench/uprobe_floor.c: the agent's libssl uprobes with BPF programs
# that return at once, the part of the cost any uprobe capture pays); the server node's
# agent + the tvn (writing to /dev/null); both agents + the tvn:
#   - request rate: wrk -t1 -c16 -d${BENCH_SECONDS}s on a 1 KiB file;
#   - bulk rate:    curl of a ${BENCH_BULK_MB} MB file to /dev/null (speed_download);
# plus the agents' lost perf events. Reports the medians and the ratios to "no ECV";
# writes docs/bench-agent.md (BENCH_AGENT_DOC).
# Targets (issue 4): >= 90 % of the request rate, >= 95 % of the bulk rate, 0 lost
# events at the default buffer. A benchmark reports; it fails only if a run breaks.
# Environment: BUILD, BENCH_SECONDS (10), BENCH_BULK_MB (200), BENCH_ROUNDS (3).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/bench/bench_lib.bash"
BULK_MB=${BENCH_BULK_MB:-200}
DOC=${BENCH_AGENT_DOC:-$ROOT/docs/bench-agent.md}

ecvx_net 10.78.8
ecvx_init ecvx-bench agent
e2e_web_nodes "4643 4644 4645" 1k.bin=1K bulk.bin="${BULK_MB}M"
floor_build

rate() { # wrk requests/s
	e2e_in a wrk -t1 -c16 -d"${SECS}s" "https://$B:4644/1k.bin" 2>&1 |
		awk '/^Requests\/sec/ { print $2 }'
}
bulk() { # curl MB/s
	e2e_in a curl -sk --tlsv1.3 -o /dev/null -w '%{speed_download}\n' --max-time 120 \
		"https://$B:4644/bulk.bin" | awk '{ printf "%.1f\n", $1 / 1048576 }'
}
# Configurations: none; "one": the server node's agent + the tvn (the agent's own cost,
# as on a node whose peers are outside the cluster); "both": both agents + the tvn (every
# ECV process on the same CPUs as the client and the server).
CONFIGS=(none floor one both)
declare -A RATES=() BULKS=() LOST=() CAPTURED=() MR=() MB=()
start_ecv() { # CONFIG
	if [ "$1" = floor ]; then
		floor_start
		return 0
	fi
	e2e_bg_in c tvn "$E2E_TVN" --listen "$E2E_TVN_IP:$E2E_TVN_PORT" --http 127.0.0.1:4680 \
		--out pcap:/dev/null
	E2E_TVNS_PID[tvn]=$E2E_PID
	E2E_TVNS_HTTP[tvn]=4680
	e2e_wait_for 10 e2e_in c curl -sf http://127.0.0.1:4680/healthz || e2e_fail "tvn did not start"
	e2e_agent b 4682 >/dev/null
	[ "$1" = both ] && e2e_agent a 4681 >/dev/null
	return 0
}
stop_ecv() { # CONFIG
	local nodes=b n
	if [ "$1" = floor ]; then
		floor_stop
		return 0
	fi
	[ "$1" = both ] && nodes="a b"
	for n in $nodes; do
		LOST[$1]=$((${LOST[$1]:-0} + $(ecvx_agent_sum $n ecv_agent_lost_events_total)))
		CAPTURED[$1]=$((${CAPTURED[$1]:-0} + $(ecvx_agent_sum $n ecv_agent_bytes_total)))
		e2e_stop_agent $n
	done
	e2e_stop "${E2E_TVNS_PID[tvn]}" || e2e_fail "tvn did not exit 0"
}

for ((i = 1; i <= ROUNDS; i++)); do
	line="round $i:"
	for c in "${CONFIGS[@]}"; do
		[ "$c" = none ] || start_ecv "$c"
		r=$(rate)
		b=$(bulk)
		[ "$c" = none ] || stop_ecv "$c"
		[ -n "$r" ] && [ -n "$b" ] || e2e_fail "a measurement failed ($c; see $E2E_TMP)"
		RATES[$c]="${RATES[$c]:-} $r"
		BULKS[$c]="${BULKS[$c]:-} $b"
		line="$line $c $r req/s $b MB/s;"
	done
	e2e_note "$line lost events so far: one ${LOST[one]:-0}, both ${LOST[both]:-0}"
done
[ "${CAPTURED[one]:-0}" -gt $((BULK_MB * 1048576)) ] ||
	e2e_fail "the agent did not capture the traffic (${CAPTURED[one]} bytes)"

median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }
for c in "${CONFIGS[@]}"; do
	MR[$c]=$(median "${RATES[$c]}")
	MB[$c]=$(median "${BULKS[$c]}")
done
HOOK=$(grep -o 'capturing with socket hook [a-z]*' "$E2E_TMP/agent-b.log" | head -1 | awk '{print $5}')
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$(dirname "$DOC")"
cat >"$DOC" <<EOF
# Agent overhead benchmark

Command: \`sudo make bench\` (runs tests/bench/agent_bench.sh; alone:
\`sudo BUILD=build bash tests/bench/agent_bench.sh\`), with BENCH_SECONDS=$SECS,
BENCH_BULK_MB=$BULK_MB, BENCH_ROUNDS=$ROUNDS. Run $(date -u '+%Y-%m-%d %H:%M UTC') on
$(nproc) CPUs ($(awk -F: '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/^ *//')),
kernel $(uname -r), agent socket hook "$HOOK", default perf buffer (512 pages per CPU),
targets from issue 4.

Two network namespaces: wrk / curl on node a, nginx (TLS 1.3, keep-alive, \`sendfile off\`
so the body goes through \`SSL_write\`) on node b, all on the same $(nproc) CPUs as the agents
and the tvn (\`--out pcap:/dev/null\`). Each round measures, in turn: no ECV; the uprobe
floor (the agent's 19 libssl uprobes/uretprobes with BPF programs that return at once,
tests/bench/uprobe_floor.c: what any uprobe-based capture pays on this kernel before doing
any work); the server node's agent + the tvn; both agents + the tvn (both ends captured).
Where the time goes per request: docs/bench-agent-consumer.md (tests/bench/uprobe_floor.sh).

| measure | without ECV | uprobe floor | ratio | one agent (server node) + tvn | ratio | both agents + tvn | ratio | target |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
| requests/s, \`wrk -t1 -c16 -d${SECS}s\`, 1 KiB responses | ${MR[none]} | ${MR[floor]} | $(pct "${MR[floor]}" "${MR[none]}") % | ${MR[one]} | $(pct "${MR[one]}" "${MR[none]}") % | ${MR[both]} | $(pct "${MR[both]}" "${MR[none]}") % | ≥ 90 % |
| bulk download MB/s, curl of $BULK_MB MB | ${MB[none]} | ${MB[floor]} | $(pct "${MB[floor]}" "${MB[none]}") % | ${MB[one]} | $(pct "${MB[one]}" "${MB[none]}") % | ${MB[both]} | $(pct "${MB[both]}" "${MB[none]}") % | ≥ 95 % |
| lost perf events (all rounds) | – | – | | ${LOST[one]} | | ${LOST[both]} | | 0 |

Medians of $ROUNDS rounds. Per round, req/s: none${RATES[none]}; floor${RATES[floor]}; one${RATES[one]}; both${RATES[both]}.
MB/s: none${BULKS[none]}; floor${BULKS[floor]}; one${BULKS[one]}; both${BULKS[both]}.
Load average on the machine when the run ended (other work shares it): $LOAD.
EOF
cat "$DOC"
