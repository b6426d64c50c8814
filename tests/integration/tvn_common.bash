# tests/integration/tvn_common.bash - helpers sourced by test_tvn_*.sh (not a test).
# Sets BUILD (absolute), T (a private temp dir removed at exit), and offers skip/fail,
# bounded waits and metric reads. Tests add their own cleanup with tvn_on_exit.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CHECK=$ROOT/tests/integration/tvn_check.py
T=$(mktemp -d /tmp/ecvu-XXXXXX)
_tvn_exit_cmds=()
tvn_on_exit() { _tvn_exit_cmds+=("$*"); }
_tvn_cleanup() {
	local i
	for ((i = ${#_tvn_exit_cmds[@]} - 1; i >= 0; i--)); do eval "${_tvn_exit_cmds[$i]}" || true; done
	rm -rf "$T"
}
trap _tvn_cleanup EXIT

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
need() { local c; for c in "$@"; do command -v "$c" >/dev/null || skip "$c not installed"; done; }
need_build() {
	local b
	for b in "$@"; do [ -x "$BUILD/$b" ] || skip "$BUILD/$b not built (run make BUILD=...)"; done
}

# wait_until SECONDS CMD...: polls CMD every 0.1 s; returns 1 when time runs out.
wait_until() {
	local deadline=$((SECONDS + $1)); shift
	until "$@"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
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
