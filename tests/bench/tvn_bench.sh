#!/usr/bin/env bash
# tests/bench/tvn_bench.sh - tvn throughput, instruction counts and memory, in one run.
#  1. offline: ecv-flowgen writes both node copies (VxLAN captures) of enough flows for
#     >= 500k packets; mergecap merges them into one classic (nanosecond) pcap; hyperfine
#     times `tvn --read merged --out pcap:/dev/null` against `editcap -d merged /dev/null`
#     on that same file: packets/s (wall and per CPU-second) and the ratio.
#  2. live loopback: ecv-replay sends copy A from 127.0.0.2 and copy B from 127.0.0.3 at
#     full speed into `tvn --listen`; sent vs tvn_rx_packets_total (the loss), and
#     packets per CPU-second of the tvn process. Then the same at a fixed lower rate.
#     Pinned rows: tvn on CPU 1 only, both senders on CPU 0 (taskset), so "per core" is
#     literally one core's worth of tvn; and the highest of BENCH_MAX_RATES at which the
#     pinned tvn loses nothing (rates tried in order, a losing one once more, up to the
#     first that loses twice).
#     Floor rows: tests/bench/udp_floor.c (built here with gcc against $BUILD/libtvn.a) is
#     tvn's ingest (tvn/ingest.c: sockets, receive loop) with a consumer that only counts
#     datagrams; GRO buffers from ingest_buffers(); no parsing, dedup or output;
#     pinned like tvn, same senders (plain and --gso at BENCH_RATE, --gso at full speed),
#     BENCH_FLOOR_RUNS rounds with the receivers taking turns: datagrams per CPU-second of
#     the floor and of tvn (medians) and tvn's share of the floor.
#  3. instructions per packet (valgrind --tool=callgrind; repeatable on a loaded machine,
#     unlike times): offline on a smaller capture minus a one-packet run (start-up), and
#     live (everything the process executed, start-up and idle polls included, divided by
#     the datagrams received), split into tvn/dedup.c and the rest.
#  4. memory per flow: dedup_flow_bytes() as printed by `tvn --version`.
# Results go to stdout and to docs/bench-tvn.md (BENCH_OUT overrides); what follows the
# line "<!-- kept by tvn_bench.sh -->" in that file (hand-written history) is kept.
# Environment: BUILD, BENCH_FLOWS (default 17000), BENCH_RUNS (default 5), BENCH_RATE
# (fixed live rate, default 100000), BENCH_CG_FLOWS (callgrind capture, default 3000,
# 0 = skip), BENCH_BASELINE (another tvn binary measured alongside: before/after),
# BENCH_MAX_RATES (default "300000 400000 500000 600000 700000 800000 1000000"; "" = skip),
# BENCH_PORT (first of the 4 local ports used, default 4896), BENCH_FLOOR_RUNS (pinned rounds of
# floor vs tvn, default 3; 0 = no floor, the pinned gso row at BENCH_RATE once).
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
OUT=${BENCH_OUT:-$ROOT/docs/bench-tvn.md}
FLOWS=${BENCH_FLOWS:-17000}
RUNS=${BENCH_RUNS:-5}
RATE=${BENCH_RATE:-100000}
CG_FLOWS=${BENCH_CG_FLOWS:-3000}
BASE=${BENCH_BASELINE:-}
MAX_RATES=${BENCH_MAX_RATES-300000 400000 500000 600000 700000 800000 1000000}
PORT0=${BENCH_PORT:-4896}
FLOOR_RUNS=${BENCH_FLOOR_RUNS:-3}
PIN=1
[ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null || PIN=0
for c in hyperfine mergecap editcap capinfos curl python3 bc gcc; do
	command -v $c >/dev/null || { echo "skip: $c not installed"; exit 77; }
done
for b in tvn ecv-flowgen ecv-replay; do
	[ -x "$BUILD/$b" ] || { echo "skip: $BUILD/$b not built"; exit 77; }
done
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null || CG_FLOWS=0
T=$(mktemp -d /tmp/ecvu-bench-XXXXXX)
TVN=
cleanup() { [ -n "$TVN" ] && kill "$TVN" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
FLOOR=$T/udp_floor
[ "$FLOOR_RUNS" -gt 0 ] && [ $PIN = 1 ] || FLOOR_RUNS=0
if [ "$FLOOR_RUNS" -gt 0 ]; then
	# against this build's tvn/ingest.c: the floor runs tvn's receive code, not a copy
	# shellcheck disable=SC2046 # pkg-config prints several words
	gcc -O2 -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Itvn -Icommon -o "$FLOOR" \
		tests/bench/udp_floor.c "$BUILD/libtvn.a" "$BUILD/libecvcommon.a" \
		$(pkg-config --libs jansson) || { echo "cannot build tests/bench/udp_floor.c"; exit 1; }
fi
npk() { capinfos -c -M "$1" | awk '/Number of packets/ { print $NF }'; }
BINS=("$BUILD/tvn")
NAMES=(tvn)
if [ -n "$BASE" ]; then
	[ -x "$BASE" ] || { echo "BENCH_BASELINE $BASE is not executable"; exit 1; }
	BINS+=("$BASE")
	NAMES+=(baseline)
fi

"$BUILD/ecv-flowgen" --dir "$T/g" --flows "$FLOWS" --max-size 6000 --exchanges 2 --vxlan --loss 1 \
	--seed 1 -q || exit 1
mergecap -F nsecpcap -w "$T/merged.pcap" "$T/g/a.pcap" "$T/g/b.pcap" || exit 1
rm -rf "$T/g/expected"
PKTS=$(npk "$T/merged.pcap") NA=$(npk "$T/g/a.pcap") NB=$(npk "$T/g/b.pcap")
echo "capture: $PKTS packets ($NA copy A + $NB copy B), $FLOWS flows"

"$BUILD/tvn" --read "$T/merged.pcap" --out "pcap:$T/tvn.pcap" 2>"$T/tvn.log"
editcap -d "$T/merged.pcap" "$T/ed.pcap" >/dev/null 2>&1
KEPT_TVN=$(npk "$T/tvn.pcap") KEPT_ED=$(npk "$T/ed.pcap")
rm -f "$T/tvn.pcap" "$T/ed.pcap"

# --- offline ---
hf=(hyperfine -N -w 1 -r "$RUNS" --export-json "$T/hf.json")
for i in "${!BINS[@]}"; do
	hf+=(-n "${NAMES[$i]}" "${BINS[$i]} -q --read $T/merged.pcap --out pcap:/dev/null")
done
hf+=(-n editcap "editcap -d $T/merged.pcap /dev/null")
"${hf[@]}" >"$T/hf.txt" 2>&1 || { cat "$T/hf.txt"; exit 1; }

# --- live loopback ---
metric() { # port name -> value ("" if the binary does not have it)
	curl -sf http://127.0.0.1:$1/metrics | awk -v m="$2" '$1 == m { print $2 }'
}
floor_counts() { # -> "received socket_drops buffers" of the running udp_floor ($TVN)
	local n0 n1
	n0=$(wc -l <"$T/floor.out")
	kill -USR1 "$TVN"
	for _ in $(seq 50); do # it prints within one hold or poll() wait
		n1=$(wc -l <"$T/floor.out")
		[ "$n1" -gt "$n0" ] && break
		sleep 0.02
	done
	tail -n 1 "$T/floor.out" | awk '$1 == "datagrams" { print $2, $6, $4 }'
}
live() { # bin rate (0 = full speed) pin (0/1) [ecv-replay flags]; bin $FLOOR = udp_floor
	# -> "sent received socket_drops buffers seconds cpu_seconds send_seconds user_seconds"
	local bin=$1 rate=$2 port=$((PORT0 + 2)) http=$((PORT0 + 3)) start end rx=0 last=-1 drops
	local bufs cpu0 cpu1 user0 user1 ra sent_at tp=() sp=()
	if [ "$3" = 1 ]; then
		tp=(taskset -c 1)
		sp=(taskset -c 0)
	fi
	if [ "$bin" = "$FLOOR" ]; then
		"${tp[@]}" "$FLOOR" 127.0.0.1:$port >"$T/floor.out" 2>&1 &
		TVN=$!
		for _ in $(seq 100); do grep -q '^listening' "$T/floor.out" && break; sleep 0.1; done
	else
		"${tp[@]}" "$bin" -q --listen 127.0.0.1:$port --http 127.0.0.1:$http \
			--out pcap:/dev/null 2>/dev/null &
		TVN=$!
		for _ in $(seq 100); do curl -sf http://127.0.0.1:$http/healthz >/dev/null && break; sleep 0.1; done
	fi
	read -r user0 cpu0 < <(awk '{ print $14, $14 + $15 }' /proc/$TVN/stat)
	start=$(date +%s.%N)
	"${sp[@]}" "$BUILD/ecv-replay" -q --to 127.0.0.1:$port --from 127.0.0.2 --rate $((rate / 2)) \
		"${@:4}" "$T/g/a.pcap" &
	ra=$!
	"${sp[@]}" "$BUILD/ecv-replay" -q --to 127.0.0.1:$port --from 127.0.0.3 --rate $((rate / 2)) \
		"${@:4}" "$T/g/b.pcap"
	wait $ra
	sent_at=$(date +%s.%N)
	for _ in $(seq 100); do # until the counter stops moving (10 s at most)
		if [ "$bin" = "$FLOOR" ]; then
			read -r rx drops bufs < <(floor_counts)
			rx=${rx:-0}
		else
			rx=$(metric $http tvn_rx_packets_total)
		fi
		[ "$rx" -ge $((NA + NB)) ] && break
		[ "$rx" = "$last" ] && break
		last=$rx
		sleep 0.1
	done
	end=$(date +%s.%N)
	if [ "$bin" != "$FLOOR" ]; then
		# Buffers the kernel dropped (before this metric had its own name: reason="socket").
		drops=$(metric $http tvn_rx_dropped_buffers_total)
		[ -n "$drops" ] || drops=$(metric $http 'tvn_rx_dropped_total{reason="socket"}')
		bufs=$(metric $http tvn_rx_buffers_total)
	fi
	read -r user1 cpu1 < <(awk '{ print $14, $14 + $15 }' /proc/$TVN/stat)
	kill $TVN; wait $TVN 2>/dev/null; TVN=
	echo "$((NA + NB)) $rx ${drops:-0} ${bufs:--} $(echo "$end - $start" | bc -l)" \
		"$(echo "($cpu1 - $cpu0) / $(getconf CLK_TCK)" | bc -l) $(echo "$sent_at - $start" | bc -l)" \
		"$(echo "($user1 - $user0) / $(getconf CLK_TCK)" | bc -l)"
}
: >"$T/live.txt"
# plain: one datagram per send; gso: ecv-replay --gso sends runs of equal-sized datagrams
# as one UDP GSO send, as ecv-agent does, which a tvn with UDP_GRO receives coalesced.
# The binaries take turns row by row, so the machine's load drifts over both alike.
for row in "full plain 0" "$RATE plain 0" "full gso 0 --gso" "$RATE gso 0 --gso"; do
	set -- $row
	for i in "${!BINS[@]}"; do
		echo "${NAMES[$i]} $1 $2 $(live "${BINS[$i]}" "${1/full/0}" "${@:3}")" >>"$T/live.txt"
	done
done
# Pinned, the floor beside the binaries: rounds of plain and gso, receivers taking turns.
LBINS=("${BINS[@]}") LNAMES=("${NAMES[@]}")
if [ "$FLOOR_RUNS" -gt 0 ]; then
	LBINS+=("$FLOOR")
	LNAMES+=(floor)
fi
cut -d' ' -f1 /proc/loadavg >"$T/load.txt"
if [ $PIN = 1 ]; then
	for _ in $(seq $((FLOOR_RUNS > 0 ? FLOOR_RUNS : 1))); do
		for row in "$RATE plain-pinned 1" "$RATE gso-pinned 1 --gso" "full gso-pinned 1 --gso"; do
			set -- $row
			# without the floor, only the gso row at BENCH_RATE is measured (as before)
			[ "$FLOOR_RUNS" = 0 ] && [ "$1 $2" != "$RATE gso-pinned" ] && continue
			for i in "${!LBINS[@]}"; do
				echo "${LNAMES[$i]} $1 $2 $(live "${LBINS[$i]}" "${1/full/0}" "${@:3}")" >>"$T/live.txt"
			done
		done
	done
fi
cut -d' ' -f1 /proc/loadavg >>"$T/load.txt"
# Highest lossless rate, pinned: each binary from the lowest rate up; a rate that loses is
# tried once more (other work on the machine can take a pinned CPU away for a moment), and
# the second loss ends the search.
: >"$T/max.txt"
if [ $PIN = 1 ] && [ -n "$MAX_RATES" ]; then
	for i in "${!BINS[@]}"; do
		for r in $MAX_RATES; do
			res=$(live "${BINS[$i]}" "$r" 1 --gso)
			echo "${NAMES[$i]} $r $res" >>"$T/max.txt"
			set -- $res
			[ "$2" -lt "$1" ] || continue
			res=$(live "${BINS[$i]}" "$r" 1 --gso)
			echo "${NAMES[$i]} $r $res" >>"$T/max.txt"
			set -- $res
			[ "$2" -lt "$1" ] && break
		done
	done
fi

# --- instructions per packet ---
cg_split() { # callgrind.out -> "total dedup_self"
	# the per-function self-cost list only: no source annotation, no threshold
	callgrind_annotate --auto=no --threshold=100 "$1" 2>/dev/null | awk '
		/PROGRAM TOTALS/ { gsub(",", "", $1); tot = $1 }
		$1 ~ /^[0-9,]+$/ && /tvn\/dedup\.c:/ { gsub(",", "", $1); d += $1 }
		END { print tot + 0, d + 0 }'
}
: >"$T/cg.txt"
if [ "$CG_FLOWS" -gt 0 ]; then
	"$BUILD/ecv-flowgen" --dir "$T/s" --flows "$CG_FLOWS" --max-size 6000 --exchanges 2 --vxlan \
		--loss 1 --seed 1 -q || exit 1
	mergecap -F nsecpcap -w "$T/small.pcap" "$T/s/a.pcap" "$T/s/b.pcap" || exit 1
	editcap -r "$T/small.pcap" "$T/one.pcap" 1 >/dev/null 2>&1
	CG_PKTS=$(npk "$T/small.pcap")
	for i in "${!BINS[@]}"; do
		b=${BINS[$i]}
		valgrind --tool=callgrind --callgrind-out-file="$T/cg.one" "$b" -q --read "$T/one.pcap" \
			--out pcap:/dev/null >/dev/null 2>&1
		valgrind --tool=callgrind --callgrind-out-file="$T/cg.off" "$b" -q --read "$T/small.pcap" \
			--out pcap:/dev/null >/dev/null 2>&1
		# live: at a rate valgrind keeps up with; the count is per datagram received
		valgrind --tool=callgrind --callgrind-out-file="$T/cg.live" "$b" -q --listen 127.0.0.1:$((PORT0 + 1)) \
			--http 127.0.0.1:$PORT0 --out pcap:/dev/null >/dev/null 2>&1 &
		TVN=$!
		for _ in $(seq 300); do curl -sf http://127.0.0.1:$PORT0/healthz >/dev/null && break; sleep 0.2; done
		"$BUILD/ecv-replay" -q --to 127.0.0.1:$((PORT0 + 1)) --from 127.0.0.2 --rate 10000 "$T/s/a.pcap" &
		ra=$!
		"$BUILD/ecv-replay" -q --to 127.0.0.1:$((PORT0 + 1)) --from 127.0.0.3 --rate 10000 "$T/s/b.pcap"
		wait $ra
		rx=0
		for _ in $(seq 100); do
			rx=$(metric $PORT0 tvn_rx_packets_total)
			[ "${rx:-0}" -ge "$CG_PKTS" ] && break
			sleep 0.2
		done
		kill $TVN; wait $TVN 2>/dev/null; TVN=
		echo "${NAMES[$i]} $CG_PKTS $(cg_split "$T/cg.one") $(cg_split "$T/cg.off") ${rx:-0} $(cg_split "$T/cg.live")" >>"$T/cg.txt"
		# live, per function (self cost, file:function as callgrind names it)
		callgrind_annotate --auto=no --threshold=100 "$T/cg.live" 2>/dev/null |
			sed -n '/file:function/,$p' | awk -v n="${NAMES[$i]}" '
			$1 ~ /^[0-9,]+$/ { x = $1; gsub(",", "", x); f = $0
				sub(/^[ 0-9,]+\([ 0-9.%]+\) +/, "", f); sub(/ \[.*/, "", f)
				k = split(f, a, "/"); print n, x, a[k] }' >>"$T/cgf.txt"
	done
fi
FLOW_BYTES=$("$BUILD/tvn" --version | awk '/dedup flow entry/ { print $4 }')

touch "$T/cgf.txt"
python3 - "$OUT" "$T/hf.json" "$T/live.txt" "$T/cg.txt" "$T/max.txt" "$T/cgf.txt" "$T/load.txt" <<PY
import sys, platform, os, datetime, json, statistics
out, hfj, livef, cgf, maxf, cgff, loadf = sys.argv[1:8]
pk = $PKTS
hf = {x["command"]: x for x in json.load(open(hfj))["results"]}
L = []
L.append("# tvn benchmark")
L.append("")
L.append("Generated by \`make bench\` (tests/bench/tvn_bench.sh) on %s, %s, %d CPUs, load average %s." % (
    datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), platform.machine(), os.cpu_count(),
    open("/proc/loadavg").read().split()[0]))
L.append("Wall times on this shared machine move with its load; CPU time and instruction counts are")
L.append("the figures to compare between runs.")
L.append("")
L.append("Capture: \`ecv-flowgen --flows $FLOWS --max-size 6000 --exchanges 2 --vxlan --loss 1 --seed 1\`, both")
L.append("node copies merged with \`mergecap -F nsecpcap\`: **%d packets** (%d copy A + %d copy B)." % (pk, $NA, $NB))
L.append("")
L.append("## Offline dedup: tvn vs editcap -d, same file")
L.append("")
L.append("| command | packets kept | wall time (mean of $RUNS) | packets/s (wall) | CPU time | packets/s per CPU-second |")
L.append("| --- | --- | --- | --- | --- | --- |")
def row(name, cmd, kept):
    r = hf[name]
    cpu = r["user"] + r["system"]
    L.append("| \`%s\` | %s | %.3f s | %.0f | %.3f s | %.0f |" % (cmd, kept, r["mean"], pk / r["mean"], cpu, pk / cpu))
row("tvn", "tvn --read merged.pcap --out pcap:/dev/null", $KEPT_TVN)
if "baseline" in hf:
    row("baseline", "baseline tvn --read merged.pcap --out pcap:/dev/null", $KEPT_TVN)
row("editcap", "editcap -d merged.pcap /dev/null", $KEPT_ED)
t, e = hf["tvn"], hf["editcap"]
L.append("")
L.append("Ratio tvn / editcap: **%.2fx** (wall), **%.2fx** (CPU). editcap -d keeps %d of %d packets: the" % (
    e["mean"] / t["mean"], (e["user"] + e["system"]) / (t["user"] + t["system"]), $KEPT_ED, pk))
L.append("second copies are segmented differently, so no frame-hash window can see them; tvn keeps")
L.append("one copy of every byte (%d frames)." % $KEPT_TVN)
L.append("")
L.append("## Live loopback ingest")
L.append("")
L.append("\`ecv-replay\` sends copy A from 127.0.0.2 and copy B from 127.0.0.3 into \`tvn --listen 127.0.0.1\`")
L.append("(default --threads 1: the receiving thread runs the dedup, one output thread writes). The senders")
L.append("share the machine's CPUs with tvn, so the per-CPU-second rate (tvn's own user+system time) is the")
L.append("comparable figure. Sends \"plain\": one datagram per send (sendmmsg); \"gso\": \`ecv-replay --gso\`,")
L.append("runs of equal-sized datagrams as one UDP GSO send, as ecv-agent sends them; tvn's socket has UDP_GRO")
L.append("on, so such a run arrives as one buffer that tvn splits and validates datagram by datagram.")
L.append("\"plain-pinned\", \"gso-pinned\": tvn runs on CPU 1 only and both senders on CPU 0 (\`taskset\`), so tvn")
L.append("has exactly one core; the \"floor\" rows beside them are explained below the table.")
L.append("Buffers: \`tvn_rx_buffers_total\`, what the receive calls returned (a datagram or a GRO run).")
L.append("Dropped buffers (\`tvn_rx_dropped_buffers_total\`; \`tvn_rx_dropped_total{reason=\"socket\"}\` in older")
L.append("binaries) count what the kernel dropped for a full socket buffer: with GRO one dropped buffer counts")
L.append("once however many datagrams it held, so \"lost\" (sent - received) is the figure to trust.")
L.append("")
L.append("| binary | send rate | sends | sent | received (tvn_rx_packets_total) | lost | dropped buffers | buffers | packets/s (wall) | packets/s per CPU-second of tvn |")
L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
def live_row(f):  # the 10 fields every table uses; user_seconds (f[10]) only the floor's
    name, rate, mode, sent, rx, drop, bufs, secs, cpu, ssecs = f[:10]
    sent, rx, drop, secs, cpu = int(sent), int(rx), int(float(drop)), float(secs), max(float(cpu), 1e-9)
    return name, rate, mode, sent, rx, drop, bufs, secs, cpu, float(ssecs)
for line in open(livef):
    name, rate, mode, sent, rx, drop, bufs, secs, cpu, ssecs = live_row(line.split())
    L.append("| %s | %s | %s | %d | %d | %d | %d | %s | %.0f | %.0f |" % (name, "full speed" if rate == "full" else rate + "/s",
             mode, sent, rx, sent - rx, drop, bufs, rx / secs, rx / cpu))
floor = [l.split() for l in open(livef) if l.split()[2].endswith("-pinned")]
if any(f[0] == "floor" for f in floor):
    loads = open(loadf).read().split()
    per = {}  # (rate, mode) -> name -> [(per CPU-second, datagrams per buffer, lost, sent/s)]
    for f in floor:
        name, rate, mode, sent, rx, drop, bufs, secs, cpu, ssecs = live_row(f)
        dpb = rx / int(bufs) if bufs not in ("-", "0") else float("nan")
        user = float(f[10])
        per.setdefault((rate, mode), {}).setdefault(name, []).append((rx / cpu, dpb, sent - rx, sent / ssecs,
                                                                      1e9 * user / rx, 1e9 * (cpu - user) / rx))
    med = lambda xs, j: statistics.median(x[j] for x in xs)
    rounds = len(per[(floor[0][1], floor[0][2])]["floor"])
    L.append("")
    L.append("### The floor: tvn's receive path with nothing behind it")
    L.append("")
    L.append("\`floor\` rows: \`tests/bench/udp_floor.c\`, tvn's own ingest code (tvn/ingest.c, linked from this")
    L.append("build: 32 MiB SO_RCVBUFFORCE, UDP_GRO, \`recvmmsg()\` of 64 buffers of 64 KiB, the hold-then-drain")
    L.append("wait, GRO buffers split by their segment size) with a consumer that only counts datagrams: no")
    L.append("validation, no dedup, no output, no HTTP. Same senders, same pinning (receiver on CPU 1, both \`ecv-replay\` on")
    L.append("CPU 0), same rates; rounds: %d, the receivers taking turns; load average %s before, %s after." % (
        rounds, loads[0], loads[-1]))
    L.append("Medians of the rounds; CPU = the receiver's user+system time (\`/proc/PID/stat\`, 10 ms ticks: the")
    L.append("user/system split of the floor is a tick or two, i.e. about 0). On loopback the")
    L.append("senders' CPU runs the kernel's IP/UDP receive and GRO (softirq at send time): what the receiver")
    L.append("pays is the receive system calls, the copy to user space, the wake-ups and its own work. Two")
    L.append("senders on one CPU reach only a few hundred thousand datagrams per second, so the per-CPU-second")
    L.append("rate, not a lossless rate, is what says whether one core could take 1 M per second.")
    L.append("")
    L.append("| receiver | send rate | sends | sent/s (achieved, median) | datagrams per CPU-second (median) | range | datagrams per buffer | lost (max) | ns per datagram: user | system | of the floor |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (rate, mode), by in per.items():
        fl = med(by["floor"], 0)
        for name, xs in by.items():
            v = med(xs, 0)
            L.append("| %s | %s | %s | %.0f | %.0f | %.0f-%.0f | %.2f | %d | %.0f | %.0f | %.0f %% |" % (name,
                     "full speed" if rate == "full" else rate + "/s", mode.replace("-pinned", ""), med(xs, 3), v,
                     min(x[0] for x in xs), max(x[0] for x in xs), med(xs, 1), max(x[2] for x in xs),
                     med(xs, 4), med(xs, 5), 100 * v / fl))
    L.append("")
    for name in ("floor", "tvn"):
        xs = [x for by in per.values() for x in by.get(name, [])]
        lossy = [x for x in xs if x[2] > 0]
        if lossy:
            busy = sorted(set("%.0f" % (100 * x[3] / x[0]) for x in lossy), key=float)
            L.append("%s lost datagrams (socket buffer full) in %d of %d pinned rounds, while busy only %s %%" % (
                name, len(lossy), len(xs), "-".join(busy[::max(len(busy) - 1, 1)])))
            L.append("of its CPU on average: not a lack of capacity on average; it did not drain for tens of")
            L.append("milliseconds (what the 32 MiB buffer holds at these rates), why is not established.")
            L.append("")
    for (rate, mode), by in per.items():
        if not mode.startswith("gso") or "tvn" not in by:
            continue
        gf, gt = med(by["floor"], 0), med(by["tvn"], 0)
        L.append("GSO senders, %s: the kernel's loopback UDP receive with tvn's receive loop alone handles" % (
            "full speed" if rate == "full" else rate + "/s"))
        L.append("**%.2f M datagrams per CPU-second** here (%.2f us each); tvn **%.2f M (%.0f %% of the floor)**, %.2f us each: %.0f ns" % (
            gf / 1e6, 1e6 / gf, gt / 1e6, 100 * gt / gf, 1e6 / gt, 1e9 / gt - 1e9 / gf))
        L.append("above the floor; user time %.0f ns, system time %.0f ns more than the floor's (medians apiece)." % (
            med(by["tvn"], 4), med(by["tvn"], 5) - med(by["floor"], 5)))
        L.append("")
    # the budget at the last (highest) rate: the most datagrams per wake-up and per buffer
    by = list(per.values())[-1]
    if "tvn" in by:
        gf, gt = med(by["floor"], 0), med(by["tvn"], 0)
        L.append("1 M per CPU-second leaves 1 us per datagram; at the highest rate above, the floor takes %.2f us of it," % (
            1e6 / gf))
        if gf < 1e6:
            L.append("so the target is not reachable here with a socket receiver, whatever tvn does in user space.")
        else:
            L.append("so tvn's own work (user space and its system calls beyond the floor's) would have to fit in")
            L.append("%.0f ns per datagram, %.0f %% of the %.0f ns it takes now." % (1e3 - 1e9 / gf,
                     100 * (1e3 - 1e9 / gf) / (1e9 / gt - 1e9 / gf), 1e9 / gt - 1e9 / gf))
mx = [l.split() for l in open(maxf)]
if mx:
    L.append("")
    L.append("Highest lossless rate, one core: tvn pinned to CPU 1, both \`ecv-replay --gso\` senders pinned to CPU 0,")
    L.append("each binary at rising total send rates up to its first loss. The senders fall short of the rate asked")
    L.append("when CPU 0 is busy: \"sent/s\" is what they achieved (datagrams over the time both took), the rate")
    L.append("that counts; \"CPU of tvn\" is its user+system time over the whole run (sending and draining).")
    L.append("")
    L.append("| binary | rate asked | sent/s (achieved) | received | lost | dropped buffers | CPU of tvn | packets/s per CPU-second of tvn |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    best = {}
    for f in mx:
        asked = f[1]
        name, rate, mode, sent, rx, drop, bufs, secs, cpu, ssecs = live_row([f[0], f[1], "gso"] + f[2:])
        L.append("| %s | %s/s | %.0f | %d | %d | %d | %.2f s | %.0f |" % (name, asked, sent / ssecs, rx, sent - rx, drop,
                 cpu, rx / cpu))
        if rx == sent:
            best[name] = max(best.get(name, 0), sent / ssecs)
    L.append("")
    L.append("Highest achieved send rate without loss, one core: " + ", ".join("**%s %.0f/s**" % (n, best.get(n, 0))
             for n in dict.fromkeys(f[0] for f in mx)) + ".")
cg = [l.split() for l in open(cgf)]
if cg:
    L.append("")
    L.append("## Instructions per packet (callgrind)")
    L.append("")
    L.append("\`valgrind --tool=callgrind\` on a capture of $CG_FLOWS flows (%s packets). Offline: \`tvn --read small.pcap" % cg[0][1])
    L.append("--out pcap:/dev/null\` minus the same on its first packet (start-up), divided by the packets.")
    L.append("Live: everything the process executed (start-up and idle polls included) while ecv-replay sent")
    L.append("both copies at 10000/s each, divided by the datagrams received; the kernel's share is not counted.")
    L.append("dedup.c = instructions in tvn/dedup.c's own functions (self cost).")
    L.append("")
    L.append("| binary | offline: all | offline: dedup.c | offline: rest | live: all | live: dedup.c | live: rest |")
    L.append("| --- | --- | --- | --- | --- | --- | --- |")
    for name, n, one_t, one_d, off_t, off_d, rx, live_t, live_d in cg:
        n, rx = int(n), max(int(rx), 1)
        ot = (int(off_t) - int(one_t)) / (n - 1)
        od = (int(off_d) - int(one_d)) / (n - 1)
        lt, ld = int(live_t) / rx, int(live_d) / rx
        L.append("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |" % (name, ot, od, ot - od, lt, ld, lt - ld))
    rxs = {c[0]: max(int(c[6]), 1) for c in cg}
    per = {}
    for l in open(cgff):
        n, x, fn = l.split(None, 2)
        per.setdefault(fn.strip(), {})[n] = int(x) / rxs[n]
    names = [c[0] for c in cg]
    top = sorted(per, key=lambda f: -max(per[f].values()))[:30]
    if top:
        L.append("")
        L.append("Live, per function (self cost, instructions per datagram received; the 30 largest, start-up included):")
        L.append("")
        L.append("| function | " + " | ".join(names) + " |")
        L.append("| --- | " + " | ".join("---" for _ in names) + " |")
        for f in top:
            L.append("| \`%s\` | " % f + " | ".join("%.0f" % per[f][n] if n in per[f] else "-" for n in names) + " |")
L.append("")
L.append("## Memory per flow")
L.append("")
L.append("\`tvn --version\`: one flow entry of the dedup table costs **$FLOW_BYTES bytes** (dedup_flow_bytes(): table")
L.append("slot + per-flow state), so the default --max-flows 1000000 bounds the table at about %.0f MiB." % ($FLOW_BYTES * 1e6 / 2**20))
L.append("")
L.append("Reproduce: \`make bench\` or \`BUILD=build bash tests/bench/tvn_bench.sh\` (BENCH_FLOWS, BENCH_RUNS,")
L.append("BENCH_RATE, BENCH_CG_FLOWS, BENCH_MAX_RATES, BENCH_PORT, BENCH_FLOOR_RUNS, BENCH_BASELINE=/path/to/an/older/tvn for a")
L.append("before/after run). This file: \`BENCH_FLOWS=$FLOWS BENCH_RUNS=$RUNS BENCH_RATE=$RATE BENCH_CG_FLOWS=$CG_FLOWS")
L.append("BENCH_MAX_RATES='$MAX_RATES' BENCH_FLOOR_RUNS=$FLOOR_RUNS bash tests/bench/tvn_bench.sh\`.")
text = "\n".join(L) + "\n"
marker = "<!-- kept by tvn_bench.sh -->"
if os.path.exists(out):
    old = open(out).read()
    if marker in old:
        text += "\n" + marker + old.split(marker, 1)[1]
os.makedirs(os.path.dirname(out), exist_ok=True)
open(out, "w").write(text)
print(text)
PY
