#!/usr/bin/env bash
# tests/bench/uprobe_floor.sh - where the request-rate overhead of capture goes.
#
# Same topology as agent_bench.sh (wrk on node a, nginx TLS 1.3 on node b, keep-alive,
# 1 KiB responses), in namespaces ecva-floor-{a,b,c} on 10.78.25.0/24. Each round runs
# wrk -t1 -c16 in turn with:
#   none   nothing attached;
#   floor  only the uprobe floor: bpf/floor.bpf.c, programs that return at once, on the
#          libssl symbols (entry and return) the agent hooks, all at the exported
#          symbols (tests/bench/uprobe_floor.c): what every tool probing them pays;
#   floor_auto  the same with the data calls at the sites the agent picks
#          (--probe-sites auto: internal callees beginning with an emulated instruction);
#   agent  the server node's agent + a tvn (--out pcap:/dev/null), as agent_bench's "one";
#   base   the same with another agent binary (BENCH_AGENT_BASE, e.g. the HEAD build).
# With BENCH_PERF=1 the first round also runs `perf record -e cpu-clock -a -g` during
# each configuration's wrk and prints the CPU per request split by who spends it
# (uprobe trap handling, BPF programs, perf output, agent user/kernel, tvn, nginx, wrk).
# With BENCH_BPF_STATS=1 (kernel.bpf_stats_enabled for the run) it also prints, for
# agent and base, each BPF program's runs and nanoseconds per request.
# A benchmark reports; it fails only if a run breaks.
# Environment: BUILD, BENCH_SECONDS (10), BENCH_ROUNDS (3), BENCH_PERF (0), BENCH_BPF_STATS (0),
# BENCH_AGENT_BASE (unset: no "base" configuration), BENCH_AGENT_ARGS (extra agent flags).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/bench/bench_lib.bash"
PERF=${BENCH_PERF:-0}
BPF_STATS=${BENCH_BPF_STATS:-0}
BASE=${BENCH_AGENT_BASE:-}
read -r -a AGENT_ARGS <<<"${BENCH_AGENT_ARGS:-}"

[ "$PERF" = 0 ] || command -v perf >/dev/null || e2e_skip "perf not installed"
ecvx_net 10.78.25
ecvx_init ecva-floor bench
if [ "$BPF_STATS" != 0 ]; then
	OLD_BPF_STATS=$(sysctl -n kernel.bpf_stats_enabled)
	trap 'sysctl -qw kernel.bpf_stats_enabled=$OLD_BPF_STATS; ecvx_cleanup' EXIT
	sysctl -qw kernel.bpf_stats_enabled=1
fi
floor_build
e2e_web_nodes "25443 25444" 1k.bin=1K

CONFIGS=(none floor floor_auto agent)
[ -z "$BASE" ] || CONFIGS+=(base)
declare -A RATES=() LOST=() EVENTS=() PERF_REQS=() REQS=() ROLES=()

# wrk: "REQUESTS RATE" (total requests, requests/s).
wrk_run() {
	e2e_in a wrk -t1 -c16 -d"${SECS}s" "https://$B:25444/1k.bin" 2>&1 |
		awk '/requests in/ { n = $1 } /^Requests\/sec/ { r = $2 } END { print n, r }'
}
start() { # CONFIG
	case $1 in
	floor) floor_start exported ;;
	floor_auto) floor_start auto ;;
	agent | base)
		e2e_bg_in c tvn "$E2E_TVN" --listen "$E2E_TVN_IP:$E2E_TVN_PORT" \
			--http 127.0.0.1:25480 --out pcap:/dev/null
		E2E_TVNS_PID[tvn]=$E2E_PID
		E2E_TVNS_HTTP[tvn]=25480
		e2e_wait_for 10 e2e_in c curl -sf http://127.0.0.1:25480/healthz ||
			e2e_fail "tvn did not start"
		if [ "$1" = base ]; then
			E2E_AGENT=$BASE e2e_agent b 25482 "${AGENT_ARGS[@]}" >/dev/null
		else
			e2e_agent b 25482 "${AGENT_ARGS[@]}" >/dev/null
		fi
		;;
	esac
	return 0
}
stop() { # CONFIG
	case $1 in
	floor | floor_auto) floor_stop ;;
	agent | base)
		[ "$BPF_STATS" = 0 ] || bench_bpf_stats "$1" "${E2E_AGENT_PID[b]}"
		LOST[$1]=$((${LOST[$1]:-0} + $(ecvx_agent_sum b ecv_agent_lost_events_total)))
		EVENTS[$1]=$((${EVENTS[$1]:-0} + $(ecvx_agent_sum b ecv_agent_events_total)))
		e2e_stop_agent b
		e2e_stop "${E2E_TVNS_PID[tvn]}" || e2e_fail "tvn did not exit 0"
		;;
	esac
}

# budget CONFIG REQUESTS: CPU microseconds per request by who spends it (see
# uprobe_floor_budget.py for the buckets).
budget() {
	# shellcheck disable=SC2086 # ROLES: one ROLE=PID word each
	perf script -i "$E2E_TMP/perf-$1.data" -F comm,pid,ip,sym,dso 2>/dev/null |
		python3 "$ROOT/tests/bench/uprobe_floor_budget.py" "$1" "$2" "$SECS" "$(nproc)" ${ROLES[$1]}
}

# roles CONFIG: remembers which processes are the benchmark's own (ROLE=PID words): the
# agent by pid, then whatever runs in node b (nginx), node a (wrk), the collector (tvn).
roles() {
	local r="" p
	[ -z "${E2E_AGENT_PID[b]:-}" ] || r="agent=${E2E_AGENT_PID[b]}"
	for p in $(ip netns pids "$E2E_PREFIX-b"); do
		[ "$p" = "${E2E_AGENT_PID[b]:-}" ] || r="$r nginx=$p"
	done
	for p in $(ip netns pids "$E2E_PREFIX-a"); do r="$r wrk=$p"; done
	for p in $(ip netns pids "$E2E_PREFIX-c"); do r="$r tvn=$p"; done
	ROLES[$1]=$r
}

for ((i = 1; i <= ROUNDS; i++)); do
	line="round $i:"
	for c in "${CONFIGS[@]}"; do
		start "$c"
		if [ "$i" = 1 ] && [ "$PERF" != 0 ]; then
			perf record -q -e cpu-clock -a -g -o "$E2E_TMP/perf-$c.data" -- sleep "$SECS" \
				2>"$E2E_TMP/perf-$c.log" &
			perf_pid=$!
		fi
		wrk_run >"$E2E_TMP/wrk.out" &
		wrk_pid=$!
		if [ "$i" = 1 ] && [ "$PERF" != 0 ]; then
			sleep 1
			roles "$c"
		fi
		wait "$wrk_pid"
		out=$(cat "$E2E_TMP/wrk.out")
		if [ "$i" = 1 ] && [ "$PERF" != 0 ]; then
			wait "$perf_pid"
			PERF_REQS[$c]=${out%% *}
		fi
		stop "$c"
		r=${out##* }
		REQS[$c]=$((${REQS[$c]:-0} + ${out%% *}))
		[ -n "$r" ] || e2e_fail "a measurement failed ($c; see $E2E_TMP)"
		RATES[$c]="${RATES[$c]:-} $r"
		line="$line $c $r;"
	done
	e2e_note "$line"
done

median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }
none=$(median "${RATES[none]}")
echo "requests/s, wrk -t1 -c16 -d${SECS}s, 1 KiB, medians of $ROUNDS rounds ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)):"
for c in "${CONFIGS[@]}"; do
	m=$(median "${RATES[$c]}")
	extra=
	[ -z "${LOST[$c]:-}" ] || extra=" events ${EVENTS[$c]} lost ${LOST[$c]}"
	echo "  $c: $m ($(pct "$m" "$none") %) rounds:${RATES[$c]}$extra"
done
if [ "$PERF" != 0 ]; then
	for c in "${CONFIGS[@]}"; do budget "$c" "${PERF_REQS[$c]}"; done
	[ -z "${BENCH_PERF_KEEP:-}" ] || cp "$E2E_TMP"/perf-*.data "$BENCH_PERF_KEEP"/
fi
if [ "$BPF_STATS" != 0 ] && [ -s "$E2E_TMP/bpf-stats" ]; then
	echo "BPF programs (kernel.bpf_stats_enabled; all rounds; the host's other SSL users included):"
	for c in agent base; do
		[ -n "${REQS[$c]:-}" ] || continue
		awk -v c="$c" -v reqs="${REQS[$c]}" '$1 == c { n[$2] += $3; t[$2] += $4 }
			END { for (p in n) { printf "  %s %-18s %6.0f ns/run %5.2f runs/request %6.0f ns/request\n", c, p, n[p] ? t[p] / n[p] : 0, n[p] / reqs, t[p] / reqs; s += t[p] }
				printf "  %s %-18s %6.0f ns/request\n", c, "total", s / reqs }' "$E2E_TMP/bpf-stats"
	done
fi
