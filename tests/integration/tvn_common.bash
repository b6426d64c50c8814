# tests/integration/tvn_common.bash - helpers sourced by test_tvn_*.sh (not a test).
# Sets BUILD (absolute), T (a private temp dir removed at exit) and, on top of
# lib/harness.bash (skip/fail/need, wait_for, bg, cleanup), offers metric reads. Tests
# add their own cleanup with tvn_on_exit.
. "$(dirname "${BASH_SOURCE[0]}")/lib/harness.bash"
cd "$HARNESS_ROOT"
ROOT=$HARNESS_ROOT
CHECK=$ROOT/tests/integration/tvn_check.py
harness_init ecvu
T=$HARNESS_TMP
# tvn_on_exit CMD: a cleanup command (the harness runs them newest first at exit).
tvn_on_exit() { on_exit "$@"; }
need_build() {
	local b
	for b in "$@"; do [ -x "$BUILD/$b" ] || skip "$BUILD/$b not built (run make BUILD=...)"; done
}

# tvn_start LOG ARGS...: "$BUILD/tvn --listen 127.0.0.1:$P ARGS" (ARGS name --http, on
# port $H), stderr in LOG, ended at exit; its pid in $TVN. Returns once /healthz answers.
# TVN_RX=ring in the environment runs these tvns with --rx ring (the same tests against
# the ring receive path: `TVN_RX=ring make check`).
tvn_start() {
	local log=$1
	shift
	bg "$BUILD/tvn" --listen "127.0.0.1:$P" ${TVN_RX:+--rx "$TVN_RX"} "$@" 2>"$log"
	TVN=$BG_PID
	started "$TVN" "$log" 10 tvn curl -sf "http://127.0.0.1:$H/healthz" -o /dev/null
}

# metric PORT 'name{labels}' -> value (0 when absent)
metric() {
	curl -sf "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { v = $2 } END { print v + 0 }'
}

# Sum of a metric over all label sets.
metric_sum() {
	curl -sf "http://127.0.0.1:$1/metrics" |
		awk -v m="$2" 'index($1, m "{") == 1 || $1 == m { s += $2 } END { print s + 0 }'
}

npackets() { capinfos -c -M "$1" 2>/dev/null | awk '/Number of packets/ { print $NF }'; }

# A free TCP/UDP port in 47xx-style ranges: tries candidates until bind works.
free_port() { # base
	local p
	for p in $(seq "$1" $(($1 + 90))); do
		if ! ss -Hlnut "sport = :$p" | grep -q .; then echo "$p"; return 0; fi
	done
	return 1
}

# garbage_counted PORT N: the N datagrams of `ecv-replay --garbage N` (six kinds, N/6
# each) are the only malformed ones tvn on HTTP port PORT counted, each by its reason.
garbage_counted() {
	local mal v r
	mal=$(metric_sum "$1" tvn_malformed_total)
	echo "malformed total: $mal"
	[ "$mal" -eq "$2" ] || fail "expected $2 malformed datagrams, counted $mal"
	for r in short flags eth_short ip_ihl ethertype meta; do
		v=$(metric "$1" "tvn_malformed_total{reason=\"$r\"}")
		[ "$v" -eq $(($2 / 6)) ] || fail "tvn_malformed_total{reason=\"$r\"} is $v, expected $(($2 / 6))"
	done
}
