#!/usr/bin/env bash
# tests/bench/agent_bench.sh - agent overhead on TLS, side by side in one run (make bench).
#
# Two nodes as network namespaces (tests/e2e/lib.sh: ecvx-bench-{a,b,c}, 10.78.8.0/24):
# wrk/curl on a (with their own copy of libssl, as on another machine), nginx (TLS 1.3,
# keep-alive, sendfile off) on b. Each round measures
# five configurations in turn, so drift (noisy neighbours) hits them alike: no ECV; the
# uprobe floor at the exported symbols (tests/bench/uprobe_floor.c: the agent's libssl
# uprobes with BPF programs that return at once: what every tool probing SSL_read/
# SSL_write pays); the floor at the sites the agent picks (--probe-sites auto); the
# server node's agent + the tvn; both agents + the tvn:
#   - request rate: wrk -t1 -c16 -d${BENCH_SECONDS}s on a 1 KiB file;
#   - bulk rate:    curl of a ${BENCH_BULK_MB} MB file to /dev/null (speed_download);
# plus the agents' lost events, their CPU (utime + stime from /proc/PID/stat, summed
# over the configuration's agents) per captured MiB during the bulk download and per 1000
# requests during wrk, and whether the tvn's pcap holds every byte of the bulk body the
# client received (tests/e2e/streamcheck.py --body; BENCH_CHECK=0 writes /dev/null and
# skips it), and every counter of a byte or datagram lost on the way: the agents' lost
# events, hole bytes, send errors and events dropped before their socket was known; the
# datagrams the agents sent that the tvn did not receive; the tvn's dropped socket buffers,
# shard-queue drops and output drops. Reports the medians and the ratios to "no ECV";
# writes docs/bench-agent.md (BENCH_AGENT_DOC).
# Targets (issue 16): both agents + tvn >= 70 % of the request rate and >= 50 % of the
# bulk rate, one agent >= 80 % / >= 70 %, 0 lost events at the default buffer, tvn output
# complete. A benchmark reports; it fails only if a run breaks.
# Environment: BUILD, BENCH_SECONDS (10), BENCH_BULK_MB (200), BENCH_ROUNDS (3),
# BENCH_CHECK (1).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/bench/bench_lib.bash"
BULK_MB=${BENCH_BULK_MB:-200}
CHECK=${BENCH_CHECK:-1}
DOC=${BENCH_AGENT_DOC:-$ROOT/docs/bench-agent.md}

ecvx_net 10.78.8
ecvx_init ecvx-bench agent
e2e_web_nodes "4643 4644 4645" 1k.bin=1K bulk.bin="${BULK_MB}M"
floor_build

# Node a's programs load their own copy of libssl (another file, as on another machine):
# uprobes sit on a file, so on one kernel the server node's probes would otherwise trap
# in the client's calls too (2 of the 5 data calls per request are wrk's), a cost no
# real node pays for another's agent. Node a's agent hooks that copy alone (--no-auto:
# the system libssl its metrics curl maps would put its probes back into nginx).
A_LIBDIR=$E2E_TMP/node-a-lib
mkdir -p "$A_LIBDIR"
cp "$E2E_LIBSSL" "$A_LIBDIR/"
A_LIBSSL=$A_LIBDIR/$(basename "$E2E_LIBSSL")
in_a() { e2e_in a env LD_LIBRARY_PATH="$A_LIBDIR" "$@"; }
in_a ldd "$(command -v wrk)" | grep -q "$A_LIBSSL" || e2e_fail "wrk does not load $A_LIBSSL"
in_a ldd "$(command -v curl)" | grep -q "$A_LIBSSL" || e2e_fail "curl does not load $A_LIBSSL"

rate() { # wrk requests/s
	in_a wrk -t1 -c16 -d"${SECS}s" "https://$B:4644/1k.bin" 2>&1 |
		awk '/^Requests\/sec/ { print $2 }'
}
bulk() { # curl MB/s
	in_a curl -sk --tlsv1.3 -o /dev/null -w '%{speed_download}\n' --max-time 120 \
		"https://$B:4644/bulk.bin" | awk '{ printf "%.1f\n", $1 / 1048576 }'
}
# Configurations: none; "floor"/"floor_auto": the uprobe floor at the exported symbols /
# at the agent's sites; "one": the server node's agent + the tvn (the agent's own cost,
# as on a node whose peers are outside the cluster); "both": both agents + the tvn (every
# ECV process on the same CPUs as the client and the server).
CONFIGS=(none floor floor_auto one both)
declare -A RATES=() BULKS=() LOST=() CAPTURED=() MR=() MB=() CPU_MIB=() CPU_KREQ=() \
	COMPLETE=() CM=() CK=() CC=() GAPB=() TXERR=() BACKLOG=() SENT=() TVNRX=() TVN_SOCK=() \
	TVN_QUEUE=() TVN_OUT=() MISSING=()
# agents_cpu_ms CONFIG: utime + stime of the configuration's agents so far, in ms.
agents_cpu_ms() {
	local n nodes=b t=0 hz
	[ "$1" = both ] && nodes="a b"
	hz=$(getconf CLK_TCK)
	for n in $nodes; do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/${E2E_AGENT_PID[$n]}/stat")))
	done
	echo $((t * 1000 / hz))
}
agents_bytes() { # CONFIG: plaintext bytes the configuration's agents captured so far
	local n nodes=b t=0
	[ "$1" = both ] && nodes="a b"
	for n in $nodes; do t=$((t + $(ecvx_agent_sum $n ecv_agent_bytes_total))); done
	echo $t
}
tvn_start() { # OUT: the tvn writing pcap:OUT
	e2e_bg_in c tvn "$E2E_TVN" --listen "$E2E_TVN_IP:$E2E_TVN_PORT" --http 127.0.0.1:4680 \
		--out pcap:"$1"
	E2E_TVNS_PID[tvn]=$E2E_PID
	E2E_TVNS_HTTP[tvn]=4680
	e2e_wait_for 10 e2e_in c curl -sf http://127.0.0.1:4680/healthz || e2e_fail "tvn did not start"
}
# tvn_count CONFIG: adds the running tvn's receive and drop counters to CONFIG's.
tvn_count() {
	TVNRX[$1]=$((${TVNRX[$1]:-0} + $(e2e_tvn_metric tvn_rx_packets_total)))
	TVN_SOCK[$1]=$((${TVN_SOCK[$1]:-0} + $(e2e_tvn_metric tvn_rx_dropped_buffers_total)))
	TVN_QUEUE[$1]=$((${TVN_QUEUE[$1]:-0} + $(e2e_tvn_metric tvn_rx_dropped_total)))
	TVN_OUT[$1]=$((${TVN_OUT[$1]:-0} + $(e2e_tvn_metric tvn_egress_dropped_total)))
}
tvn_stop() { e2e_stop "${E2E_TVNS_PID[tvn]}" || e2e_fail "tvn did not exit 0"; }
start_ecv() { # CONFIG
	case $1 in
	floor) floor_start exported; return 0 ;;
	floor_auto) floor_start auto; return 0 ;;
	esac
	tvn_start /dev/null
	e2e_agent b 4682 >/dev/null
	[ "$1" = both ] && E2E_AGENT_LIB=$A_LIBSSL e2e_agent a 4681 --no-auto >/dev/null
	return 0
}
# before_bulk CONFIG: with BENCH_CHECK, a fresh tvn writes the bulk download's capture
# (the request-rate run's is not kept: hundreds of MB nobody reads).
before_bulk() {
	case $1 in one | both) ;; *) return 0 ;; esac
	[ "$CHECK" = 0 ] && return 0
	sleep 1 # the last datagrams of the wrk run reach the tvn
	tvn_count "$1"
	tvn_stop
	PCAP_OUT=$E2E_TMP/tvn-$1.pcap
	tvn_start "$PCAP_OUT"
}
stop_ecv() { # CONFIG
	local nodes=b n r
	case $1 in floor | floor_auto) floor_stop; return 0 ;; esac
	[ "$1" = both ] && nodes="a b"
	for n in $nodes; do
		LOST[$1]=$((${LOST[$1]:-0} + $(ecvx_agent_sum $n ecv_agent_lost_events_total)))
		CAPTURED[$1]=$((${CAPTURED[$1]:-0} + $(ecvx_agent_sum $n ecv_agent_bytes_total)))
		GAPB[$1]=$((${GAPB[$1]:-0} + $(ecvx_agent_sum $n ecv_agent_gap_bytes_total)))
		TXERR[$1]=$((${TXERR[$1]:-0} + $(ecvx_agent_sum $n ecv_agent_tx_errors_total)))
		BACKLOG[$1]=$((${BACKLOG[$1]:-0} + $(ecvx_agent_sum $n ecv_agent_backlog_dropped_total)))
		e2e_stop_agent $n
		SENT[$1]=$((${SENT[$1]:-0} + E2E_SENT))
	done
	sleep 1 # the agents' last datagrams reach the tvn
	tvn_count "$1"
	tvn_stop
	[ "$CHECK" = 0 ] && return 0
	# The bulk body, server -> client: the direction with the most bytes from port 4644.
	r=$(python3 "$E2E_ROOT/tests/e2e/streamcheck.py" "$PCAP_OUT" "$B" 4644 "$A" '*' \
		--body "$WWW/bulk.bin" --allow-holes 2>&1 | grep -m1 'body_missing=')
	MISSING[$1]="${MISSING[$1]:-} $(echo "$r" | tr ' ' '\n' | sed -n 's/^body_missing=//p')"
	if [[ " $r " == *" body_missing=0 "* && " $r " == *" body_wrong=0 "* ]]; then
		COMPLETE[$1]="${COMPLETE[$1]:-} yes"
	else
		COMPLETE[$1]="${COMPLETE[$1]:-} no"
		e2e_note "$1: tvn output incomplete: ${r:-no report}"
	fi
	rm -f "$PCAP_OUT"
}

for ((i = 1; i <= ROUNDS; i++)); do
	line="round $i:"
	for c in "${CONFIGS[@]}"; do
		[ "$c" = none ] || start_ecv "$c"
		case $c in one | both) t0=$(agents_cpu_ms "$c") ;; esac
		r=$(rate)
		before_bulk "$c"
		case $c in one | both) t1=$(agents_cpu_ms "$c"); c1=$(agents_bytes "$c") ;; esac
		b=$(bulk)
		case $c in
		one | both)
			t2=$(agents_cpu_ms "$c")
			c2=$(agents_bytes "$c")
			CPU_KREQ[$c]="${CPU_KREQ[$c]:-} $(awk -v t=$((t1 - t0)) -v r="$r" -v s="$SECS" \
				'BEGIN { printf "%.1f", (r > 0 ? t * 1000 / (r * s) : 0) }')"
			CPU_MIB[$c]="${CPU_MIB[$c]:-} $(awk -v t=$((t2 - t1)) -v b=$((c2 - c1)) \
				'BEGIN { printf "%.2f", (b > 0 ? t * 1048576 / b : 0) }')"
			;;
		esac
		[ "$c" = none ] || stop_ecv "$c"
		[ -n "$r" ] && [ -n "$b" ] || e2e_fail "a measurement failed ($c; see $E2E_TMP)"
		RATES[$c]="${RATES[$c]:-} $r"
		BULKS[$c]="${BULKS[$c]:-} $b"
		line="$line $c $r req/s $b MB/s;"
	done
	e2e_note "$line lost events so far: one ${LOST[one]:-0}, both ${LOST[both]:-0};" \
		"tvn output drops so far: one ${TVN_OUT[one]:-0}, both ${TVN_OUT[both]:-0}"
done
[ "${CAPTURED[one]:-0}" -gt $((BULK_MB * 1048576)) ] ||
	e2e_fail "the agent did not capture the traffic (${CAPTURED[one]} bytes)"

median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
median2() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }
for c in "${CONFIGS[@]}"; do
	MR[$c]=$(median "${RATES[$c]}")
	MB[$c]=$(median "${BULKS[$c]}")
done
for c in one both; do
	CM[$c]=$(median2 "${CPU_MIB[$c]}")
	CK[$c]=$(median "${CPU_KREQ[$c]}")
	if [ "$CHECK" = 0 ]; then
		CC[$c]="not checked"
	elif [[ "${COMPLETE[$c]}" == *no* ]]; then
		CC[$c]="**no** in $(echo "${COMPLETE[$c]}" | tr ' ' '\n' | grep -c no) of $ROUNDS rounds"
	else
		CC[$c]="yes, $ROUNDS of $ROUNDS rounds"
	fi
done
HOOK=$(grep -o 'capturing with socket hook [a-z]*' "$E2E_TMP/agent-b.log" | head -1 | awk '{print $5}')
EVENTS=$(grep -o 'events: .*' "$E2E_TMP/agent-b.log" | head -1 | sed 's/^events: //')
NPROBES=$(grep -o '[0-9]* probes on' "$E2E_TMP/floor.log" | head -1 | awk '{print $1}')
SITES=$(grep -o 'SSL_[a-z_]* -> [^(]*\|SSL_[a-z_]* at the exported symbol' "$E2E_TMP/agent-b.log" |
	sort -u | paste -sd ';' | sed 's/;/; /g')
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$(dirname "$DOC")"
cat >"$DOC" <<EOF
# Agent overhead benchmark

Command: \`sudo make bench\` (runs tests/bench/agent_bench.sh; alone:
\`sudo BUILD=build bash tests/bench/agent_bench.sh\`), with BENCH_SECONDS=$SECS,
BENCH_BULK_MB=$BULK_MB, BENCH_ROUNDS=$ROUNDS, BENCH_CHECK=$CHECK. Run $(date -u '+%Y-%m-%d %H:%M UTC') on
$(nproc) CPUs ($(awk -F: '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/^ *//')),
kernel $(uname -r), agent socket hook "$HOOK", default event path (${EVENTS:-unknown}),
probe sites (libssl.so.3, --probe-sites auto): $SITES.

Two network namespaces: wrk / curl on node a, nginx (TLS 1.3, keep-alive, \`sendfile off\`
so the body goes through \`SSL_write\`) on node b, all on the same $(nproc) CPUs as the agents
and the tvn. Node a's programs load their own copy of libssl.so.3 (\`LD_LIBRARY_PATH\`), as
the client of another machine would: uprobes sit on a file, so with one shared file the
server node's probes (and the floors) would trap in wrk's calls too (2 of the 5 data
calls per request); node a's agent hooks that copy (\`--no-auto --lib\`). Each round measures, in turn: no ECV; the uprobe floor at the exported
symbols (the agent's 19 libssl uprobes/uretprobes at the exported symbols, with BPF programs that return at once,
tests/bench/uprobe_floor.c: what any tool probing \`SSL_read\`/\`SSL_write\` — ecapture,
Pixie, Beyla, bcc's sslsniff — pays on this kernel before doing any work: their bound);
the floor at the sites the agent picks (\`--probe-sites auto\`: the internal functions,
one pair per direction, ${NPROBES:-15} probes in all); the server node's agent + the tvn; both agents + the tvn (both
ends captured). Agent CPU is utime + stime of the agents (/proc/PID/stat) during the
wrk run per 1000 requests and during the bulk download per MiB the agents captured
(both agents count their own copy). "tvn output complete": the tvn's pcap of the bulk
download holds every byte of the body at its place (tests/e2e/streamcheck.py --body).
Where the time goes per request: docs/bench-agent-consumer.md (tests/bench/uprobe_floor.sh).

| measure | without ECV | floor, exported sites | ratio | floor, agent's sites | ratio | one agent (server node) + tvn | ratio | both agents + tvn | ratio | target (one / both) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| requests/s, \`wrk -t1 -c16 -d${SECS}s\`, 1 KiB responses | ${MR[none]} | ${MR[floor]} | $(pct "${MR[floor]}" "${MR[none]}") % | ${MR[floor_auto]} | $(pct "${MR[floor_auto]}" "${MR[none]}") % | ${MR[one]} | $(pct "${MR[one]}" "${MR[none]}") % | ${MR[both]} | $(pct "${MR[both]}" "${MR[none]}") % | ≥ 80 % / ≥ 70 % |
| bulk download MB/s, curl of $BULK_MB MB | ${MB[none]} | ${MB[floor]} | $(pct "${MB[floor]}" "${MB[none]}") % | ${MB[floor_auto]} | $(pct "${MB[floor_auto]}" "${MB[none]}") % | ${MB[one]} | $(pct "${MB[one]}" "${MB[none]}") % | ${MB[both]} | $(pct "${MB[both]}" "${MB[none]}") % | ≥ 70 % / ≥ 50 % |
| lost events, ring buffer full (all rounds) | – | – | | – | | ${LOST[one]} | | ${LOST[both]} | | 0 |
| agents' hole bytes, \`ecv_agent_gap_bytes_total\` (all rounds) | – | – | | – | | ${GAPB[one]} | | ${GAPB[both]} | | 0 |
| agents' send errors / events dropped before their socket was known | – | – | | – | | ${TXERR[one]} / ${BACKLOG[one]} | | ${TXERR[both]} / ${BACKLOG[both]} | | 0 |
| datagrams the agents sent that the tvn did not receive | – | – | | – | | $((${SENT[one]:-0} - ${TVNRX[one]:-0})) | | $((${SENT[both]:-0} - ${TVNRX[both]:-0})) | | 0 |
| tvn drops: socket buffers / shard queue / output frames | – | – | | – | | ${TVN_SOCK[one]:-0} / ${TVN_QUEUE[one]:-0} / ${TVN_OUT[one]:-0} | | ${TVN_SOCK[both]:-0} / ${TVN_QUEUE[both]:-0} / ${TVN_OUT[both]:-0} | | 0 |
| agent CPU per 1000 requests (ms) | – | – | | – | | ${CK[one]} | | ${CK[both]} | | |
| agent CPU per captured MiB, bulk (ms) | – | – | | – | | ${CM[one]} | | ${CM[both]} | | ≤ 1 |
| tvn output complete (bulk body) | – | – | | – | | ${CC[one]} | | ${CC[both]} | | yes |

Medians of $ROUNDS rounds. Per round, req/s: none${RATES[none]}; floor${RATES[floor]}; floor_auto${RATES[floor_auto]}; one${RATES[one]}; both${RATES[both]}.
MB/s: none${BULKS[none]}; floor${BULKS[floor]}; floor_auto${BULKS[floor_auto]}; one${BULKS[one]}; both${BULKS[both]}.
Agent CPU ms per 1000 requests: one${CPU_KREQ[one]:-}; both${CPU_KREQ[both]:-}. Per MiB: one${CPU_MIB[one]:-}; both${CPU_MIB[both]:-}.
Bulk body bytes missing from the tvn's output per round: $([ "$CHECK" = 0 ] && echo "not checked (BENCH_CHECK=0)" || echo "one${MISSING[one]:-}; both${MISSING[both]:-}").
Load average on the machine when the run ended (other work shares it): $LOAD.
EOF
cat "$DOC"
