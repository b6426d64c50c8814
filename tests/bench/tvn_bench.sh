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
#     pinned like tvn, same senders (plain and --gso, at BENCH_RATE and at full speed),
#     BENCH_FLOOR_RUNS rounds with the receivers taking turns: datagrams per CPU-second of
#     the floor and of tvn (medians) and tvn's share of the floor.
#     Ring rows (root and a tvn with --rx): `tvn --rx ring --rx-iface lo` and its floor
#     `udp_floor --ring lo` take their turns beside the socket receivers, and the ring tvn
#     gets its own highest-lossless-rate rows. On loopback the kernel's receive (and in ring
#     mode its copy into the ring) runs in softirq on the senders' CPU, so every live row
#     also counts the CPU of the senders plus ksoftirqd (tick accounting charges softirq to
#     the task it interrupts) and of the whole machine (/proc/stat, all CPUs: user + nice +
#     system + irq + softirq + steal, from the senders' start to the last datagram counted;
#     other work on the machine lands in it too), each per datagram received: whether the
#     ring removes work or moves it off the receiver's core.
#  3. instructions per packet (valgrind --tool=callgrind; repeatable on a loaded machine,
#     unlike times): offline on a smaller capture minus a one-packet run (start-up), and
#     live (everything the process executed, start-up and idle polls included, divided by
#     the datagrams received), split into the dedup engine (tvn/dedup*.[ch]) and the rest.
#  4. memory per flow: dedup_flow_bytes() as printed by `tvn --version`.
# Results go to stdout and to docs/bench-tvn.md (BENCH_OUT overrides); what follows the
# line "<!-- kept by tvn_bench.sh -->" in that file (hand-written history) is kept.
# Environment: BUILD, BENCH_FLOWS (default 17000), BENCH_RUNS (default 5), BENCH_RATE
# (fixed live rate, default 100000), BENCH_CG_FLOWS (callgrind capture, default 3000,
# 0 = skip), BENCH_BASELINE (another tvn binary measured alongside: before/after),
# BENCH_MAX_RATES (default "300000 400000 500000 600000 700000 800000 1000000"; "" = skip),
# BENCH_PORT (first of the 4 local ports used, default 4896), BENCH_FLOOR_RUNS (pinned rounds of
# floor vs tvn, default 3; 0 = no floor, the pinned gso row at BENCH_RATE once), BENCH_RING
# (1 = ring rows when possible, default; 0 = none).
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
OUT=${BENCH_OUT:-$ROOT/docs/bench-tvn.md}
FLOWS=${BENCH_FLOWS:-17000}
RUNS=${BENCH_RUNS:-5}
RATE=${BENCH_RATE:-300000}
CG_FLOWS=${BENCH_CG_FLOWS:-3000}
BASE=${BENCH_BASELINE:-}
MAX_RATES=${BENCH_MAX_RATES-300000 400000 500000 600000 700000 800000 1000000}
PORT0=${BENCH_PORT:-4896}
FLOOR_RUNS=${BENCH_FLOOR_RUNS:-3}
RING=${BENCH_RING:-1}
PIN=1
[ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null || PIN=0
for c in hyperfine mergecap editcap capinfos curl python3 bc gcc; do
	command -v $c >/dev/null || { echo "skip: $c not installed"; exit 77; }
done
for b in tvn ecv-flowgen ecv-replay; do
	[ -x "$BUILD/$b" ] || { echo "skip: $BUILD/$b not built"; exit 77; }
done
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null || CG_FLOWS=0
T=$(mktemp -d /tmp/ecvb-bench-XXXXXX)
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
		$(pkg-config --libs jansson libpcap) || { echo "cannot build tests/bench/udp_floor.c"; exit 1; }
fi
# --rx ring needs CAP_NET_RAW (root here, as in the e2e tests) and a tvn that has it.
if [ "$RING" = 1 ] && { [ "$(id -u)" != 0 ] || ! "$BUILD/tvn" --help 2>&1 | grep -q -- '--rx '; }; then
	echo "no ring rows: needs root and a tvn with --rx"
	RING=0
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
busy_ticks() { # the whole machine's busy time so far: user nice system irq softirq steal
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}
KSOFTIRQD=$(pgrep -x 'ksoftirqd/[0-9]+' | tr '\n' ' ')
ksoftirqd_ticks() { # user+system of every ksoftirqd: loopback receive work deferred to them
	local p t=0
	for p in $KSOFTIRQD; do
		t=$((t + $(awk '{ print $14 + $15 }' /proc/$p/stat 2>/dev/null || echo 0)))
	done
	echo $t
}
run_ns() { # pid -> the time all its threads have been on a CPU, in ns (exact, unlike ticks)
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ t += $1 } END { printf "%.0f\n", t }'
}
live() { # receiver rate (0 = full speed) pin (0/1) [ecv-replay flags]
	# receiver: tvn, baseline, tvn-ring (tvn --rx ring --rx-iface lo), floor (udp_floor),
	# floor-ring (udp_floor --ring lo)
	# -> "sent received drops buffers seconds cpu_seconds send_seconds user_seconds
	#     senders_cpu_seconds machine_cpu_seconds run_seconds" (drops, buffers: ring frames
	#     for a ring; cpu and user: ticks of /proc/PID/stat; run: the receiver's schedstat)
	local name=$1 rate=$2 port=$((PORT0 + 2)) http=$((PORT0 + 3)) start end rx=0 last=-1 drops
	local bufs cpu0 cpu1 user0 user1 ra sent_at tp=() sp=() cmd=() me=$BASHPID hz
	local kids0 kids1 soft0 soft1 m0 m1 run0 run1
	hz=$(getconf CLK_TCK)
	if [ "$3" = 1 ]; then
		tp=(taskset -c 1)
		sp=(taskset -c 0)
	fi
	case $name in
	tvn) cmd=("$BUILD/tvn") ;;
	baseline) cmd=("$BASE") ;;
	tvn-ring) cmd=("$BUILD/tvn" --rx ring --rx-iface lo) ;;
	floor) cmd=("$FLOOR" "127.0.0.1:$port") ;;
	floor-ring) cmd=("$FLOOR" --ring lo "127.0.0.1:$port") ;;
	esac
	case $name in
	floor*)
		"${tp[@]}" "${cmd[@]}" >"$T/floor.out" 2>&1 &
		TVN=$!
		for _ in $(seq 100); do grep -q '^listening' "$T/floor.out" && break; sleep 0.1; done
		;;
	*)
		"${tp[@]}" "${cmd[@]}" -q --listen 127.0.0.1:$port --http 127.0.0.1:$http \
			--out pcap:/dev/null 2>"$T/rx.err" &
		TVN=$!
		for _ in $(seq 100); do curl -sf http://127.0.0.1:$http/healthz >/dev/null && break; sleep 0.1; done
		;;
	esac
	read -r user0 cpu0 < <(awk '{ print $14, $14 + $15 }' /proc/$TVN/stat)
	run0=$(run_ns $TVN)
	# The senders' CPU: the children this shell has reaped (cutime + cstime), i.e. the two
	# ecv-replay, taken around them; under tick accounting it holds the softirq that ran
	# while they were on the CPU (loopback receive, GRO, the copy into a ring).
	read -r kids0 < <(awk '{ print $16 + $17 }' /proc/$me/stat)
	soft0=$(ksoftirqd_ticks)
	m0=$(busy_ticks)
	start=$(date +%s.%N)
	"${sp[@]}" "$BUILD/ecv-replay" -q --to 127.0.0.1:$port --from 127.0.0.2 --rate $((rate / 2)) \
		"${@:4}" "$T/g/a.pcap" &
	ra=$!
	"${sp[@]}" "$BUILD/ecv-replay" -q --to 127.0.0.1:$port --from 127.0.0.3 --rate $((rate / 2)) \
		"${@:4}" "$T/g/b.pcap"
	wait $ra
	sent_at=$(date +%s.%N)
	read -r kids1 < <(awk '{ print $16 + $17 }' /proc/$me/stat)
	for _ in $(seq 100); do # until the counter stops moving (10 s at most)
		case $name in
		floor*)
			read -r rx drops bufs < <(floor_counts)
			rx=${rx:-0}
			;;
		*) rx=$(metric $http tvn_rx_packets_total) ;;
		esac
		[ "${rx:-0}" -ge $((NA + NB)) ] && break
		[ "$rx" = "$last" ] && break
		last=$rx
		sleep 0.1
	done
	m1=$(busy_ticks)
	soft1=$(ksoftirqd_ticks)
	end=$(date +%s.%N)
	case $name in
	floor*) ;;
	*)
		# Buffers the kernel dropped (before this metric had its own name: reason="socket").
		drops=$(metric $http tvn_rx_dropped_buffers_total)
		[ -n "$drops" ] || drops=$(metric $http 'tvn_rx_dropped_total{reason="socket"}')
		bufs=$(metric $http tvn_rx_buffers_total)
		;;
	esac
	read -r user1 cpu1 < <(awk '{ print $14, $14 + $15 }' /proc/$TVN/stat 2>/dev/null)
	run1=$(run_ns $TVN)
	if ! kill $TVN 2>/dev/null || [ -z "$rx" ] || [ -z "$cpu0" ]; then
		# a receiver that died or never counted is a finding, not a row of zeros
		wait $TVN 2>/dev/null
		echo "$name ($*): the receiver failed (exit status $?); its output:" >&2
		case $name in floor*) cat "$T/floor.out" >&2 ;; *) cat "$T/rx.err" >&2 ;; esac
		TVN=
		return 1
	fi
	wait $TVN 2>/dev/null; TVN=
	echo "$((NA + NB)) ${rx:-0} ${drops:-0} ${bufs:--} $(echo "$end - $start" | bc -l)" \
		"$(echo "($cpu1 - $cpu0) / $hz" | bc -l) $(echo "$sent_at - $start" | bc -l)" \
		"$(echo "($user1 - $user0) / $hz" | bc -l)" \
		"$(echo "($kids1 - $kids0 + $soft1 - $soft0) / $hz" | bc -l) $(echo "($m1 - $m0) / $hz" | bc -l)" \
		"$(echo "($run1 - $run0) / 10^9" | bc -l)"
}
: >"$T/live.txt"
row_of() { # receiver rate mode pin [flags] -> the line of live.txt (or the bench ends: a finding)
	local res
	res=$(live "$1" "${2/full/0}" "${@:4}") || { echo "live $*: the receiver failed (above)" >&2; exit 1; }
	echo "$1 $2 $3 $res"
}
# plain: one datagram per send; gso: ecv-replay --gso sends runs of equal-sized datagrams
# as one UDP GSO send, as ecv-agent does, which a tvn with UDP_GRO receives coalesced.
# The binaries take turns row by row, so the machine's load drifts over both alike.
for row in "full plain 0" "$RATE plain 0" "full gso 0 --gso" "$RATE gso 0 --gso"; do
	set -- $row
	for n in "${NAMES[@]}"; do
		row_of "$n" "$1" "$2" "${@:3}" >>"$T/live.txt" || exit 1
	done
done
# Pinned, the floors and the ring beside the binaries: rounds of plain and gso, at RATE and
# at full speed, the receivers taking turns.
LNAMES=("${NAMES[@]}")
[ "$FLOOR_RUNS" -gt 0 ] && LNAMES+=(floor)
[ "$RING" = 1 ] && LNAMES+=(tvn-ring)
[ "$FLOOR_RUNS" -gt 0 ] && [ "$RING" = 1 ] && LNAMES+=(floor-ring)
background() { # loadavg and the machine's busy share over 2 s with nothing of the bench running
	local m0 m1
	m0=$(busy_ticks)
	sleep 2
	m1=$(busy_ticks)
	echo "$(cut -d' ' -f1 /proc/loadavg) $(echo "($m1 - $m0) / (2 * $(getconf CLK_TCK) * $(nproc))" | bc -l)"
}
background >"$T/load.txt"
if [ $PIN = 1 ]; then
	for _ in $(seq $((FLOOR_RUNS > 0 ? FLOOR_RUNS : 1))); do
		for row in "$RATE plain-pinned 1" "full plain-pinned 1" "$RATE gso-pinned 1 --gso" \
			"full gso-pinned 1 --gso"; do
			set -- $row
			# without the floor, only the gso row at BENCH_RATE is measured (as before)
			[ "$FLOOR_RUNS" = 0 ] && [ "$1 $2" != "$RATE gso-pinned" ] && continue
			for n in "${LNAMES[@]}"; do
				row_of "$n" "$1" "$2" "${@:3}" >>"$T/live.txt" || exit 1
			done
		done
	done
fi
background >>"$T/load.txt"
# Highest lossless rate, pinned: each binary (and tvn --rx ring) from the lowest rate up; a
# rate that loses is tried once more (other work on the machine can take a pinned CPU away
# for a moment), and the second loss ends the search.
: >"$T/max.txt"
MNAMES=("${NAMES[@]}")
[ "$RING" = 1 ] && MNAMES+=(tvn-ring)
if [ $PIN = 1 ] && [ -n "$MAX_RATES" ]; then
	for n in "${MNAMES[@]}"; do
		for r in $MAX_RATES; do
			for try in 1 2; do
				res=$(row_of "$n" "$r" gso 1 --gso) || exit 1
				echo "$res" >>"$T/max.txt"
				set -- $res
				[ "$5" -lt "$4" ] || break
			done
			[ "$try" = 2 ] && [ "$5" -lt "$4" ] && break
		done
	done
fi

# --- instructions per packet ---
cg_split() { # callgrind.out -> "total dedup_self"
	# the per-function self-cost list only: no source annotation, no threshold
	callgrind_annotate --auto=no --threshold=100 "$1" 2>/dev/null | awk '
		/PROGRAM TOTALS/ { gsub(",", "", $1); tot = $1 }
		$1 ~ /^[0-9,]+$/ && /tvn\/dedup[a-z_]*\.[ch]:/ { gsub(",", "", $1); d += $1 }
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
CMDLINE = ("BUILD=${BUILD#"$ROOT"/} BENCH_FLOWS=$FLOWS BENCH_RUNS=$RUNS BENCH_RATE=$RATE BENCH_CG_FLOWS=$CG_FLOWS "
           "BENCH_MAX_RATES='$MAX_RATES' BENCH_FLOOR_RUNS=$FLOOR_RUNS BENCH_RING=$RING bash tests/bench/tvn_bench.sh")
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
L.append("share the machine's CPUs with tvn, so the per-CPU-second rate (tvn's own CPU time: the run time of")
L.append("all its threads, \`/proc/PID/task/*/schedstat\`) is the comparable figure. Sends \"plain\": one datagram per send (sendmmsg); \"gso\": \`ecv-replay --gso\`,")
L.append("runs of equal-sized datagrams as one UDP GSO send, as ecv-agent sends them; tvn's socket has UDP_GRO")
L.append("on, so such a run arrives as one buffer that tvn splits and validates datagram by datagram.")
L.append("\"plain-pinned\", \"gso-pinned\": the receiver runs on CPU 1 only and both senders on CPU 0 (\`taskset\`), so")
L.append("it has exactly one core; the \"floor\" and \"-ring\" rows beside them are explained below the table.")
L.append("Buffers: \`tvn_rx_buffers_total\`, what the receive calls returned (a datagram or a GRO run; for")
L.append("\`--rx ring\` a ring frame: a datagram or a GSO run). Dropped buffers (\`tvn_rx_dropped_buffers_total\`;")
L.append("\`tvn_rx_dropped_total{reason=\"socket\"}\` in older binaries) count what the kernel dropped for a full")
L.append("socket buffer (ring): one dropped buffer counts once however many datagrams it held, so \"lost\"")
L.append("(sent - received) is the figure to trust.")
L.append("CPU per datagram, each divided by the datagrams received: \"senders+ksoftirqd\" = both \`ecv-replay\`")
L.append("processes' user+system time plus that of the ksoftirqd threads; the kernel counts CPU time by ticks")
L.append("(no IRQ time accounting in this kernel), so the loopback receive that runs in softirq while a sender")
L.append("is on the CPU (IP/UDP receive, GRO, the copy into a socket or a ring) is in the senders' time.")
L.append("\"machine\" = busy time of all CPUs (\`/proc/stat\`: user+nice+system+irq+softirq+steal) from the")
L.append("senders' start until the receiver has counted the last datagram: everything, including other work on")
L.append("this shared machine and the bench's own metric polls.")
L.append("")
L.append("| receiver | send rate | sends | sent | received | lost | dropped buffers | buffers | packets/s (wall) | packets/s per CPU-second of the receiver | CPU per datagram: senders+ksoftirqd | machine |")
L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
nan = float("nan")
class Run:  # one line of live.txt or max.txt: receiver rate mode, then live()'s fields
    def __init__(s, f):
        s.name, s.rate, s.mode = f[0], f[1], f[2].replace("-pinned", "")
        s.pinned = f[2].endswith("-pinned")
        s.sent, s.rx, s.drop, s.bufs = int(f[3]), int(f[4]), int(float(f[5])), f[6]
        s.secs, s.ticks, s.ssecs, s.user = float(f[7]), float(f[8]), float(f[9]), float(f[10])
        s.kern, s.machine, s.cpu = float(f[11]), float(f[12]), float(f[13])
        n = max(s.rx, 1)
        s.per_cpu = s.rx / s.cpu if s.cpu > 0 else nan
        # user from ticks, system = the exact run time minus it
        s.ns_user, s.ns_sys = 1e9 * s.user / n, max(1e9 * (s.cpu - s.user) / n, 0)
        s.ns_kern, s.ns_machine = 1e9 * s.kern / n, 1e9 * s.machine / n
        s.ns_all = 1e9 * s.cpu / n + s.ns_kern
        s.dpb = s.rx / int(s.bufs) if s.bufs not in ("-", "0") else nan
        s.sent_per_s = s.sent / s.ssecs
        s.lost = s.sent - s.rx
def rate_s(rate):
    return "full speed" if rate == "full" else rate + "/s"
runs = [Run(l.split()) for l in open(livef)]
for r in runs:
    L.append("| %s | %s | %s | %d | %d | %d | %d | %s | %.0f | %.0f | %.0f ns | %.0f ns |" % (r.name, rate_s(r.rate),
             r.mode + ("-pinned" if r.pinned else ""), r.sent, r.rx, r.lost, r.drop, r.bufs, r.rx / r.secs,
             r.per_cpu, r.ns_kern, r.ns_machine))
pinned = [r for r in runs if r.pinned]
loads = [l.split() for l in open(loadf)]
per = {}  # (rate, mode) -> receiver -> [Run], one per round in order
for r in pinned:
    per.setdefault((r.rate, r.mode), {}).setdefault(r.name, []).append(r)
med = lambda xs, a: statistics.median(getattr(x, a) for x in xs)
floor_of = lambda name: "floor-ring" if name.endswith("-ring") else "floor"
def M(x):
    return "%.2f M" % (x / 1e6)
if any(r.name == "floor" for r in pinned):
    rounds = len(per[(pinned[0].rate, pinned[0].mode)]["floor"])
    L.append("")
    L.append("### The floor: tvn's receive path with nothing behind it")
    L.append("")
    L.append("\`floor\` rows: \`tests/bench/udp_floor.c\`, tvn's own ingest code (tvn/ingest.c, linked from this")
    L.append("build: 32 MiB SO_RCVBUFFORCE, UDP_GRO, \`recvmmsg()\` of 64 buffers of 64 KiB, the hold-then-drain")
    L.append("wait, GRO buffers split by their segment size) with a consumer that only counts datagrams: no")
    L.append("validation, no dedup, no output, no HTTP.")
    if any(r.name == "floor-ring" for r in pinned):
        L.append("\`floor-ring\` rows: the same program and ingest code with")
        L.append("\`ingest_sock_cfg.ring\` (\`udp_floor --ring lo\`: what \`tvn --rx ring --rx-iface lo\` receives with, a")
        L.append("TPACKET_V3 ring of 32 MiB read in place, the outer IP/UDP parse, the port held by a UDP socket that")
        L.append("drops everything).")
    L.append("Same senders, same pinning (receiver on CPU 1, both \`ecv-replay\` on")
    L.append("CPU 0), same rates; rounds: %d, the receivers taking turns in the order %s." % (
        rounds, ", ".join(dict.fromkeys(r.name for r in pinned))))
    L.append("Before the rounds: load average %s, the machine %.0f %% busy over 2 s with nothing of the bench" % (
        loads[0][0], 100 * float(loads[0][1])))
    L.append("running; after: %s, %.0f %%." % (loads[-1][0], 100 * float(loads[-1][1])))
    L.append("Medians of the rounds; CPU = the receiver's run time (all threads, \`/proc/PID/task/*/schedstat\`, ns);")
    L.append("its user part from \`/proc/PID/stat\` (10 ms ticks: a floor's user time is a tick or two, i.e.")
    L.append("about 0), system = the rest. \"all\" = the receiver's CPU plus the senders' and ksoftirqd's, per")
    L.append("datagram: the work of the run wherever it ran. On loopback the")
    L.append("senders' CPU runs the kernel's IP/UDP receive and GRO (softirq at send time): what a socket receiver")
    L.append("pays is the receive system calls, the copy to user space, the wake-ups and its own work; a ring")
    L.append("receiver reads what the softirq already copied into the ring. Two")
    L.append("senders on one CPU reach only a few hundred thousand datagrams per second, so the per-CPU-second")
    L.append("rate, not a lossless rate, is what says whether one core could take 1 M per second.")
    L.append("")
    L.append("| receiver | send rate | sends | sent/s (achieved, median) | datagrams per CPU-second (median) | range | datagrams per buffer | lost (max) | ns per datagram: user | system | of its floor | senders+ksoftirqd | all | machine |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (rate, mode), by in per.items():
        for name, xs in by.items():
            v = med(xs, "per_cpu")
            fl = med(by[floor_of(name)], "per_cpu") if floor_of(name) in by else nan
            L.append("| %s | %s | %s | %.0f | %.0f | %.0f-%.0f | %.2f | %d | %.0f | %.0f | %.0f %% | %.0f | %.0f | %.0f |" % (
                name, rate_s(rate), mode, med(xs, "sent_per_s"), v, min(x.per_cpu for x in xs),
                max(x.per_cpu for x in xs), med(xs, "dpb"), max(x.lost for x in xs), med(xs, "ns_user"),
                med(xs, "ns_sys"), 100 * v / fl, med(xs, "ns_kern"), med(xs, "ns_all"), med(xs, "ns_machine")))
    L.append("")
    lossy = []
    for name in dict.fromkeys(r.name for r in pinned):
        xs = [x for x in pinned if x.name == name]
        ls = [x for x in xs if x.lost > 0]
        if ls:
            busy = sorted(set("%.0f" % (100 * x.sent_per_s / x.per_cpu) for x in ls), key=float)
            lossy.append("%s in %d of %d runs (%s %%)" % (name, len(ls), len(xs), "-".join(busy[::max(len(busy) - 1, 1)])))
    if lossy:
        L.append("Runs that lost datagrams (the socket buffer or the ring full), with the receiver's busy share of its")
        L.append("CPU in them, on average: " + ", ".join(lossy) + ". Not a lack of capacity on average: the")
        L.append("receiver did not drain for tens of milliseconds (what 32 MiB hold at these rates); other work on")
        L.append("the machine runs on CPU 1 too; why exactly is not established.")
        L.append("")
    for (rate, mode), by in per.items():
        if mode != "gso" or "tvn" not in by or "floor" not in by:
            continue
        gf, gt = med(by["floor"], "per_cpu"), med(by["tvn"], "per_cpu")
        L.append("GSO senders, %s: the kernel's loopback UDP receive with tvn's receive loop alone handles" % rate_s(rate))
        L.append("**%.2f M datagrams per CPU-second** here (%.2f us each); tvn **%.2f M (%.0f %% of the floor)**, %.2f us each: %.0f ns" % (
            gf / 1e6, 1e6 / gf, gt / 1e6, 100 * gt / gf, 1e6 / gt, 1e9 / gt - 1e9 / gf))
        L.append("above the floor; user time %.0f ns, system time %.0f ns more than the floor's (medians apiece)." % (
            med(by["tvn"], "ns_user"), med(by["tvn"], "ns_sys") - med(by["floor"], "ns_sys")))
        L.append("")
    # the budget at the highest GSO rate: the most datagrams per wake-up and per buffer
    by = per.get(("full", "gso"), list(per.values())[-1])
    if "tvn" in by:
        gf, gt = med(by["floor"], "per_cpu"), med(by["tvn"], "per_cpu")
        L.append("1 M per CPU-second leaves 1 us per datagram; with GSO senders at full speed, the socket floor takes %.2f us of it," % (
            1e6 / gf))
        if gf < 1e6:
            L.append("so the target is not reachable here with a socket receiver, whatever tvn does in user space.")
        elif gt >= 1e6:
            L.append("and tvn's own work (user space and its system calls beyond the floor's) takes %.0f ns of the %.0f ns" % (
                1e9 / gt - 1e9 / gf, 1e3 - 1e9 / gf))
            L.append("left: tvn with the socket reaches **%.2f M** per CPU-second here." % (gt / 1e6))
        else:
            L.append("so tvn's own work (user space and its system calls beyond the floor's) would have to fit in")
            L.append("%.0f ns per datagram, %.0f %% of the %.0f ns it takes now." % (1e3 - 1e9 / gf,
                     100 * (1e3 - 1e9 / gf) / (1e9 / gt - 1e9 / gf), 1e9 / gt - 1e9 / gf))
        if "floor-ring" in by and "tvn-ring" in by:
            rf, rt = med(by["floor-ring"], "per_cpu"), med(by["tvn-ring"], "per_cpu")
            L.append("With \`--rx ring\` the receive floor takes %.2f us per datagram on tvn's core, and tvn with the ring" % (1e6 / rf))
            L.append("handles **%.2f M datagrams per CPU-second** (%.2f us each): the target is %s on one core here." % (
                rt / 1e6, 1e6 / rt, "met" if rt >= 1e6 else "not met"))
        L.append("")
if any(r.name == "tvn-ring" for r in pinned) and any(r.name == "tvn" for r in pinned):
    L.append("### Socket vs ring: \`tvn --rx socket\` (default) and \`tvn --rx ring --rx-iface lo\`")
    L.append("")
    L.append("The pinned rounds above, tvn's two receive paths (and their floors) side by side, medians of the")
    L.append("rounds. \"per CPU-second\" = datagrams per CPU-second of the receiver process (all its threads);")
    L.append("\"all\" = CPU per datagram of the receiver + both senders + ksoftirqd (the work of the run wherever")
    L.append("it ran; see above); \"machine\" = all CPUs' busy time per datagram (\`/proc/stat\`), which also holds")
    L.append("whatever else ran on this shared machine. If the ring only moved the receive work to the senders'")
    L.append("CPU, \"all\" and \"machine\" would not drop with the receiver's CPU. \"paired\" = the median over rounds")
    L.append("of ring minus socket within the same round (the receivers took turns, so the machine's drifting")
    L.append("load touches both alike), with the rounds in which the ring was lower.")
    L.append("")
    L.append("| receivers | sends | send rate | per CPU-second: socket | ring | ring / socket | all, ns per datagram: socket | ring | paired (lower in) | machine, ns per datagram: socket | ring | paired (lower in) | lost (max): socket | ring |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    def paired(a, b, attr):  # median of b - a within rounds, rounds where b < a, rounds
        d = [getattr(y, attr) - getattr(x, attr) for x, y in zip(a, b)]
        return statistics.median(d), sum(1 for x in d if x < 0), len(d)
    summary = []
    diffs = {"ns_all": [], "ns_machine": [], "ns_kern": []}  # tvn, ring - socket, every round
    for (rate, mode), by in per.items():
        for s_name, r_name in (("tvn", "tvn-ring"), ("floor", "floor-ring")):
            if s_name not in by or r_name not in by:
                continue
            a, b = by[s_name], by[r_name]
            ts, tr = med(a, "per_cpu"), med(b, "per_cpu")
            As, Ar, Ap = med(a, "ns_all"), med(b, "ns_all"), paired(a, b, "ns_all")
            ms, mr, mp = med(a, "ns_machine"), med(b, "ns_machine"), paired(a, b, "ns_machine")
            ls, lr = max(x.lost for x in a), max(x.lost for x in b)
            L.append("| %s / %s | %s | %s | %s | %s | %.2fx | %.0f | %.0f | %+.0f (%d of %d) | %.0f | %.0f | %+.0f (%d of %d) | %d | %d |" % (
                s_name, r_name, mode, rate_s(rate), M(ts), M(tr), tr / ts, As, Ar, Ap[0], Ap[1], Ap[2],
                ms, mr, mp[0], mp[1], mp[2], ls, lr))
            if s_name == "tvn":
                for k in diffs:
                    diffs[k] += [getattr(y, k) - getattr(x, k) for x, y in zip(a, b)]
                summary.append("- %s sends, %s: **tvn %s datagrams per CPU-second of tvn with the ring vs %s with the socket** (%.2fx);" % (
                    mode, rate_s(rate), M(tr), M(ts), tr / ts))
                # what the other work measured around the rounds adds to a machine figure
                bg = statistics.mean(float(l[1]) for l in loads) * os.cpu_count() * 1e9 * med(a + b, "secs") / a[0].sent
                summary.append("  **machine CPU per datagram %.0f ns with the ring vs %.0f ns with the socket** (paired %+.0f ns, lower in %d of %d rounds;" % (
                    mr, ms, mp[0], mp[1], mp[2]))
                summary.append("  the other work on the machine, at the busy share measured around the rounds, is ~%.0f ns of each);" % bg)
                summary.append("  receiver + senders + ksoftirqd %.0f vs %.0f ns (paired %+.0f ns, lower in %d of %d); lost at most %d vs %d." % (
                    Ar, As, Ap[0], Ap[1], Ap[2], lr, ls))
    L.append("")
    L.append("Summary, medians of %d rounds (load average %s before, %s after; the machine %.0f %% / %.0f %% busy over 2 s" % (
        len(per[(pinned[0].rate, pinned[0].mode)]["tvn"]), loads[0][0], loads[-1][0], 100 * float(loads[0][1]),
        100 * float(loads[-1][1])))
    L.append("without the bench, before / after, which the machine figures include; the machine is shared with")
    L.append("other engineers' builds and tests, so where that share is large \"all\" is the figure to go by):")
    L.append("")
    L += summary
    L.append("")
    if diffs["ns_all"]:
        def over(k):
            d = diffs[k]
            return "%d of %d rounds, median %+.0f ns" % (sum(1 for x in d if x < 0), len(d), statistics.median(d))
        L.append("Moved or removed: over all rows, tvn with the ring against the socket in the same round, the")
        L.append("receiver + senders + ksoftirqd CPU per datagram was lower in %s; the senders + ksoftirqd" % over("ns_all"))
        L.append("part alone (where the ring's copy runs) was lower in %s; the whole machine's was lower in" % over("ns_kern"))
        L.append("%s." % over("ns_machine"))
        L.append("")
    L.append("Produced by \`%s\`; each row runs (P = BENCH_PORT + 2, H = P + 1; R = the send rate, 0 = full speed):" % CMDLINE)
    L.append("")
    L.append("\`\`\`")
    L.append("taskset -c 1 tvn -q --listen 127.0.0.1:P --http 127.0.0.1:H --out pcap:/dev/null &                       # socket")
    L.append("taskset -c 1 tvn -q --rx ring --rx-iface lo --listen 127.0.0.1:P --http 127.0.0.1:H --out pcap:/dev/null &  # ring")
    L.append("taskset -c 0 ecv-replay -q --to 127.0.0.1:P --from 127.0.0.2 --rate R/2 [--gso] a.pcap &")
    L.append("taskset -c 0 ecv-replay -q --to 127.0.0.1:P --from 127.0.0.3 --rate R/2 [--gso] b.pcap")
    L.append("\`\`\`")
    L.append("")
    L.append("then polls \`tvn_rx_packets_total\` until every datagram is counted or the count stops moving; tvn's CPU")
    L.append("from \`/proc/PID/task/*/schedstat\`, the machine's from \`/proc/stat\`, both taken before the senders start")
    L.append("and after that poll; the senders' from this shell's reaped children (\`/proc/self/stat\` cutime + cstime)")
    L.append("and ksoftirqd's from \`/proc/PID/stat\`.")
mx = [Run(l.split()) for l in open(maxf)]
if mx:
    L.append("")
    L.append("Highest lossless rate, one core: the receiver pinned to CPU 1, both \`ecv-replay --gso\` senders pinned to CPU 0,")
    L.append("each receiver at rising total send rates up to its first loss (a loss is tried once more). The senders fall short of the rate asked")
    L.append("when CPU 0 is busy: \"sent/s\" is what they achieved (datagrams over the time both took), the rate")
    L.append("that counts; \"CPU of the receiver\" is its run time over the whole run (sending and draining).")
    L.append("")
    L.append("| receiver | rate asked | sent/s (achieved) | received | lost | dropped buffers | CPU of the receiver | packets/s per CPU-second of the receiver | machine CPU per datagram |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    best = {}
    for r in mx:
        L.append("| %s | %s/s | %.0f | %d | %d | %d | %.2f s | %.0f | %.0f ns |" % (r.name, r.rate, r.sent_per_s, r.rx, r.lost,
                 r.drop, r.cpu, r.per_cpu, r.ns_machine))
        if r.lost == 0:
            best[r.name] = max(best.get(r.name, 0), r.sent_per_s)
    L.append("")
    def limit(n):  # a receiver that lost nothing at any rate was not pushed to its limit
        return "" if any(r.lost for r in mx if r.name == n) else " (no loss at any rate: the senders' best, not its limit)"
    L.append("Highest achieved send rate without loss, one core: " + ", ".join("**%s %.0f/s**%s" % (n, best.get(n, 0), limit(n))
             for n in dict.fromkeys(r.name for r in mx)) + ".")
cg = [l.split() for l in open(cgf)]
if cg:
    L.append("")
    L.append("## Instructions per packet (callgrind)")
    L.append("")
    L.append("\`valgrind --tool=callgrind\` on a capture of $CG_FLOWS flows (%s packets). Offline: \`tvn --read small.pcap" % cg[0][1])
    L.append("--out pcap:/dev/null\` minus the same on its first packet (start-up), divided by the packets.")
    L.append("Live: everything the process executed (start-up and idle polls included) while ecv-replay sent")
    L.append("both copies at 10000/s each, divided by the datagrams received; the kernel's share is not counted.")
    L.append("dedup.c = instructions in the dedup engine's own functions, tvn/dedup*.c and what they inline from tvn/dedup*.h (self cost).")
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
L.append("BENCH_RATE, BENCH_CG_FLOWS, BENCH_MAX_RATES, BENCH_PORT, BENCH_FLOOR_RUNS, BENCH_RING,")
L.append("BENCH_BASELINE=/path/to/an/older/tvn for a before/after run). This file (%.0f s; the ring rows need root):" % ($SECONDS))
L.append("\`%s\`." % CMDLINE)
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
