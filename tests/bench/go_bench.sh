#!/usr/bin/env bash
# tests/bench/go_bench.sh - agent overhead on a Go HTTPS server, side by side in one run
# (make bench).
#
# Two nodes as network namespaces (tests/e2e/lib.sh: ecvx-gobench-{a,b,c}, 10.78.31.0/24):
# wrk on a, a Go net/http server (tests/integration/lib/gotls https-server, TLS 1.3,
# HTTP/1.1 keep-alive, GET of a 1 KiB file) on b, built here with Debian's Go 1.19 and,
# when bookworm-backports is reachable, Go 1.22 (1.19 is entered at the stack check's
# jbe, 1.21+ at the push after it: both emulated sites). For each server, each round
# measures in turn `wrk -t1 -c16 -d${BENCH_SECONDS}s` with:
#   none         nothing attached;
#   floor_entry  bpf/floor.bpf.c's return-at-once programs at the agent's Go entry sites
#                (Read, Write, the handshakes, Close: tests/bench/uprobe_floor.c
#                --go-entries);
#   floor        the same plus a probe on every RET of Read and Write (--go): all the
#                agent's Go probes, what the uprobe mechanism alone costs;
#   agent        the server node's agent (discovery only: wrk's libssl is not hooked) +
#                a tvn writing to /dev/null.
# Reported: medians and ratios to "none", the agent's CPU (utime + stime) per 1000
# requests, lost events, and where the time goes: with kernel.bpf_stats_enabled for the
# run, the probe hits per request and each BPF program's nanoseconds per request
# (floor: the hits; agent: its programs' work). Writes docs/bench-go.md (BENCH_GO_DOC).
# A benchmark reports; it fails only if a run breaks.
# Environment: BUILD, BENCH_SECONDS (10), BENCH_ROUNDS (3), BENCH_GO_VERSIONS ("1.19
# 1.22"; 1.22 skipped when it cannot be unpacked).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/bench/bench_lib.bash"
DOC=${BENCH_GO_DOC:-$ROOT/docs/bench-go.md}
command -v go >/dev/null || e2e_skip "no Go toolchain (golang-go)"
command -v bpftool >/dev/null || e2e_skip "bpftool not installed"

ecvx_net 10.78.31
ecvx_init ecvx-gobench go
e2e_topology a b
A=${E2E_IP[a]}
B=${E2E_IP[b]}
e2e_cert
harness_www "$E2E_TMP/www" 1k.bin=1K
floor_build
OLD_BPF_STATS=$(sysctl -n kernel.bpf_stats_enabled)
on_exit "sysctl -qw kernel.bpf_stats_enabled=$OLD_BPF_STATS"
sysctl -qw kernel.bpf_stats_enabled=1

# The servers: one executable per Go version, sharing the build tree's GOCACHE.
cp -r "$ROOT/tests/integration/lib/gotls" "$E2E_TMP/src"
VERSIONS=()
for v in ${BENCH_GO_VERSIONS:-1.19 1.22}; do
	if [ "$v" = "$(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')" ]; then
		gobin=$(command -v go)
	elif ! gobin=$(bash "$ROOT/tests/integration/lib/go_bpo.sh" "$BUILD/go-bpo" "$v" \
		2>"$E2E_TMP/bpo.log"); then
		e2e_note "Go $v not benchmarked: $(tail -1 "$E2E_TMP/bpo.log")"
		continue
	fi
	(cd "$E2E_TMP/src" && GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod \
		GOCACHE="$BUILD/go-bpo/cache" GOPATH="$E2E_TMP/gopath" \
		"$gobin" build -o "$E2E_TMP/goserver-$v" .) >"$E2E_TMP/go.log" 2>&1 ||
		{ cat "$E2E_TMP/go.log"; e2e_fail "go $v build failed"; }
	VERSIONS+=("$v")
done
[ ${#VERSIONS[@]} -gt 0 ] || e2e_fail "no Go server built"

CONFIGS=(none floor_entry floor agent)
declare -A RATES=() REQS=() CPU_KREQ=() LOST=() SITES=() M=() WHERE=()
PORT=4743

wrk_run() { # "REQUESTS RATE"
	e2e_in a wrk -t1 -c16 -d"${SECS}s" "https://$B:$PORT/files/1k.bin" 2>&1 |
		awk '/requests in/ { n = $1 } /^Requests\/sec/ { r = $2 } END { print n, r }'
}
agent_cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", ($14 + $15) * 1000 / hz }' \
		"/proc/${E2E_AGENT_PID[b]}/stat"
}
start() { # VERSION CONFIG
	case $2 in
	floor_entry) floor_start_go "$E2E_TMP/goserver-$1" --go-entries ;;
	floor) floor_start_go "$E2E_TMP/goserver-$1" --go ;;
	agent)
		e2e_bg_in c tvn "$E2E_TVN" --listen "$E2E_TVN_IP:$E2E_TVN_PORT" \
			--http 127.0.0.1:4780 --out pcap:/dev/null
		E2E_TVNS_PID[tvn]=$E2E_PID
		e2e_wait_for 10 e2e_in c curl -sf http://127.0.0.1:4780/healthz ||
			e2e_fail "tvn did not start"
		# Not e2e_agent: it names the system libssl, which wrk (node a) maps too.
		e2e_bg_in b agent-b "$E2E_AGENT" --netns "/var/run/netns/$E2E_PREFIX-b" \
			--tvn "$E2E_TVN_IP:$E2E_TVN_PORT" --node b --metrics 127.0.0.1:4782 \
			--stats-interval 1h
		E2E_AGENT_PID[b]=$E2E_PID
		E2E_AGENT_METRICS[b]=4782
		e2e_wait_for 30 grep -q "hooked go .*goserver-$1 " "$E2E_TMP/agent-b.log" ||
			{ cat "$E2E_TMP/agent-b.log"; e2e_fail "the agent did not hook the Go server"; }
		SITES[$1]=$(grep -o "goserver-$1: crypto/tls.*" "$E2E_TMP/agent-b.log" |
			sed 's/^[^:]*: //' | paste -sd ';' | sed 's/;/; /g')
		T0=$(agent_cpu_ms)
		;;
	esac
	return 0
}
stop() { # VERSION CONFIG REQUESTS
	local k="$1 $2"
	case $2 in
	floor_entry | floor)
		bench_bpf_stats "$k" "$FLOOR_PID"
		floor_stop
		;;
	agent)
		CPU_KREQ[$k]="${CPU_KREQ[$k]:-} $(awk -v t=$(($(agent_cpu_ms) - T0)) -v n="$3" \
			'BEGIN { printf "%.1f", (n > 0 ? t * 1000 / n : 0) }')"
		bench_bpf_stats "$k" "${E2E_AGENT_PID[b]}"
		LOST[$k]=$((${LOST[$k]:-0} + $(ecvx_agent_sum b ecv_agent_lost_events_total)))
		e2e_stop_agent b
		e2e_stop "${E2E_TVNS_PID[tvn]}" || e2e_fail "tvn did not exit 0"
		;;
	esac
}

for v in "${VERSIONS[@]}"; do
	e2e_bg_in b "goserver-$v" env GOTLS_ROOT="$E2E_TMP/www" "$E2E_TMP/goserver-$v" \
		https-server "$E2E_TMP/cert.pem" "$E2E_TMP/key.pem" "$B:$PORT"
	server=$E2E_PID
	e2e_wait_for 10 e2e_tcp_listening b $PORT || e2e_fail "Go $v server did not listen"
	for ((i = 1; i <= ROUNDS; i++)); do
		line="Go $v round $i:"
		for c in "${CONFIGS[@]}"; do
			start "$v" "$c"
			out=$(wrk_run)
			stop "$v" "$c" "${out%% *}"
			[ -n "${out##* }" ] || e2e_fail "a measurement failed (Go $v $c; see $E2E_TMP)"
			RATES["$v $c"]="${RATES["$v $c"]:-} ${out##* }"
			REQS["$v $c"]=$((${REQS["$v $c"]:-0} + ${out%% *}))
			line="$line $c ${out##* };"
		done
		e2e_note "$line"
	done
	e2e_stop "$server" 10 TERM || e2e_fail "Go $v server did not exit 0"
done

median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }
# usreq RATE: microseconds of wall time per request at 16 connections (1e6 / rate).
usreq() { awk -v r="$1" 'BEGIN { printf "%.1f", 1e6 / r }'; }
# bpf VERSION CONFIG: "HITS NS": the uprobe hits per request (the Go probes' programs)
# and the nanoseconds per request of all the configuration's BPF programs (the agent's
# socket hooks too, which run for every socket of the host, then filter on the netns);
# then one "NAME RUNS/REQUEST NS/RUN" line per program.
bpf() {
	awk -v k="$1 $2" -v reqs="${REQS["$1 $2"]}" '$1 " " $2 == k { n[$3] += $4; t[$3] += $5 }
		END { for (p in n) { if (p ~ /^(go_|floor_)/) hits += n[p]; ns += t[p] }
			printf "%.2f %.0f\n", hits / reqs, ns / reqs
			for (p in n) printf "%s %.2f %.0f\n", p, n[p] / reqs, n[p] ? t[p] / n[p] : 0 }' \
		"$E2E_TMP/bpf-stats"
}
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
{
	cat <<EOF
# Go HTTPS server: agent overhead benchmark

Command: \`sudo make bench\` (runs every tests/bench/*_bench.sh; this one alone:
\`sudo BUILD=build bash tests/bench/go_bench.sh\`), with BENCH_SECONDS=$SECS,
BENCH_ROUNDS=$ROUNDS. Run $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs
($(awk -F: '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/^ *//')), kernel $(uname -r).
Load average when the run ended (other work shares the machine): $LOAD.

Two network namespaces: \`wrk -t1 -c16\` on node a, on node b a Go \`net/http\` server
(tests/integration/lib/gotls \`https-server\`: TLS 1.3, HTTP/1.1 keep-alive, GET of a
1 KiB file through \`http.FileServer\`), all on the same $(nproc) CPUs as the agent and
the tvn. Per Go version each round measures, in turn: no ECV; the uprobe floor at the
agent's Go entry sites only (return-at-once BPF programs, tests/bench/uprobe_floor.c
\`--go-entries\`: \`(*Conn).Read\`/\`Write\` where the agent enters them, the handshakes,
\`Close\`); the floor at all the agent's Go probes (\`--go\`: the same plus one on every
\`RET\` of Read and Write, since a uretprobe is unusable on Go's moving stacks); the
server node's agent (discovery, which finds the server) + the tvn writing to /dev/null.
kernel.bpf_stats_enabled is on for the whole run (every configuration alike), so the
BPF programs' run counts and times are known.

| Go | measure | without ECV | floor, entry sites | ratio | floor, all probes | ratio | agent + tvn | ratio |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
EOF
	for v in "${VERSIONS[@]}"; do
		for c in "${CONFIGS[@]}"; do M[$c]=$(median "${RATES["$v $c"]}"); done
		echo "| $v | requests/s, \`wrk -t1 -c16 -d${SECS}s\`, 1 KiB | ${M[none]} | ${M[floor_entry]} | $(pct "${M[floor_entry]}" "${M[none]}") % | ${M[floor]} | $(pct "${M[floor]}" "${M[none]}") % | ${M[agent]} | $(pct "${M[agent]}" "${M[none]}") % |"
		echo "| $v | µs per request (1e6 / rate) | $(usreq "${M[none]}") | $(usreq "${M[floor_entry]}") | | $(usreq "${M[floor]}") | | $(usreq "${M[agent]}") | |"
		read -r fe_hits _ < <(bpf "$v" floor_entry)
		read -r fl_hits _ < <(bpf "$v" floor)
		read -r ag_hits ag_ns < <(bpf "$v" agent)
		echo "| $v | probe hits per request | – | $fe_hits | | $fl_hits | | $ag_hits | |"
		echo "| $v | agent BPF ns per request | – | – | | – | | $ag_ns | |"
		echo "| $v | agent CPU per 1000 requests (ms, utime + stime) | – | – | | – | | $(median "${CPU_KREQ["$v agent"]}") | |"
		echo "| $v | lost events (all rounds) | – | – | | – | | ${LOST["$v agent"]} | |"
		WHERE[$v]=$(awk -v n="$(usreq "${M[none]}")" -v e="$(usreq "${M[floor_entry]}")" \
			-v f="$(usreq "${M[floor]}")" -v a="$(usreq "${M[agent]}")" -v he="$fe_hits" \
			-v hf="$fl_hits" 'BEGIN { printf "the entry probes add %.1f µs per request (%.2f hits, %.1f µs each), the RET probes %.1f µs (%.2f hits, %.1f µs each), the agent beyond its probes (BPF work, perf/ring output, user space, tvn) %.1f µs", e - n, he, (he > 0 ? (e - n) / he : 0), f - e, hf - he, (hf > he ? (f - e) / (hf - he) : 0), a - f }')
	done
	cat <<EOF

Reading it: a request costs the server one \`Read\` of the request, one \`Write\` of the
response and one \`Read\` that waits for the next request (3 entries, 3 \`RET\`s). The entry
sites are emulated by the kernel (the 1.19 \`jbe\`, the 1.21+ \`push\`); a \`RET\` is not
(x86 uprobes emulate nop, push and relative jumps/calls only), so each RET probe is
single-stepped out of line, and the RET probes are most of the cost. The agent's other
programs (the socket hook's tracepoints, libssl's probes) run for every process of the
host and filter on the namespace: on a shared machine they count other work too.

EOF
	for v in "${VERSIONS[@]}"; do
		echo "Go $v, the agent's sites: ${SITES[$v]}."
		echo
		echo "Where the time goes (medians, wall µs per request at 16 connections): ${WHERE[$v]}."
		echo
		echo "Per round, req/s: $(for c in "${CONFIGS[@]}"; do printf '%s%s; ' "$c" "${RATES["$v $c"]}"; done)"
		echo "Agent CPU ms per 1000 requests, per round:${CPU_KREQ["$v agent"]}."
		echo "BPF programs of the agent (runs per request, ns per run): $(bpf "$v" agent | tail -n +2 |
			sort | awk '$2 > 0 { printf "%s%s %s × %s ns", (k++ ? "; " : ""), $1, $2, $3 }')."
		echo
	done
} >"$DOC.new"
mv "$DOC.new" "$DOC"
cat "$DOC"
