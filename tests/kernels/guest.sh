#!/usr/bin/env bash
# tests/kernels/guest.sh - the kernel matrix's work inside one kernel (run by matrix.sh
# through vm.sh, or directly on the host's kernel): which socket hooks the kernel
# offers, whether the agent starts with each, and the agent tests with each.
#   guest.sh [HOOK...]          default: kprobe fentry tracepoint syscalls auto
# Environment: BUILD (default build), ECV_MATRIX_TESTS (default "loopback large
# midstream nginx": tests/integration/test_agent_NAME.sh), ECV_AGENT_LOAD_TIMEOUT
# (seconds the agent may take to load, default 900: the verifier is slow under TCG),
# ECV_TEST_TIME_SCALE (passed to the tests, see lib/harness.bash).
# Prints, besides each test's log on stderr, one line per result on stdout:
#   ECV-KERNEL <release> btf=yes|no kprobes=yes|no
#   ECV-MATRIX <release> <hook> <what> <result> <seconds> <detail...>
# what: "offer" (result offered / not-offered, detail the reason), "load" (the agent
# started: pass, detail the hook it reports; or FAIL, detail its error), or a test name
# (pass / FAIL with the test's FAIL line / skip with its reason).
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
export BUILD
hooks=("$@")
[ ${#hooks[@]} -gt 0 ] || hooks=(kprobe fentry tracepoint syscalls auto)
read -ra tests <<<"${ECV_MATRIX_TESTS:-loopback large midstream nginx}"
load_timeout=${ECV_AGENT_LOAD_TIMEOUT:-900}
agent=$BUILD/ecv-agent
offers=$BUILD/kernels/ecv-kernel-offers
libssl=/usr/lib/x86_64-linux-gnu/libssl.so.3
release=$(uname -r)

[ "$(id -u)" = 0 ] || { echo "guest: needs root" >&2; exit 77; }
for f in "$agent" "$offers" "$BUILD/kernels/offers.bpf.o"; do
	[ -x "$f" ] || [ -f "$f" ] || { echo "guest: no $f (make all kernels first)" >&2; exit 1; }
done

row() { # hook what result seconds detail
	local hook=$1 what=$2 result=$3 secs=$4
	shift 4
	printf 'ECV-MATRIX %s %s %s %s %s %s\n' "$release" "$hook" "$what" "$result" "$secs" "$*"
}
yn() { if "$@"; then echo yes; else echo no; fi; }
echo "ECV-KERNEL $release btf=$(yn test -r /sys/kernel/btf/vmlinux)" \
	"kprobes=$(yn test -e /sys/bus/event_source/devices/kprobe)"

declare -A offered=()
while read -r hook verdict reason; do
	offered[$hook]=$verdict
	row "$hook" offer "$verdict" 0 "$reason"
done < <("$offers" "$BUILD/kernels/offers.bpf.o")

tmp=$(mktemp -d /tmp/ecv-guest.XXXXXX)
apid=
cleanup() {
	[ -z "$apid" ] || kill -KILL "$apid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# agent_loads HOOK: the agent (HOOK forced, or auto) hooks libssl within the timeout;
# LOAD_SECS and LOAD_DETAIL (the hook it reports, or its first error) are set.
agent_loads() {
	local hook=$1 log=$tmp/load-$1.log start=$SECONDS args=() i
	[ "$hook" = auto ] || args=(--socket-hook "$hook")
	"$agent" --tvn 127.0.0.1:9 --no-auto --lib "$libssl" "${args[@]}" >"$log" 2>&1 &
	apid=$!
	for ((i = 0; i < load_timeout * 10; i++)); do
		grep -q 'hooked ' "$log" && break
		kill -0 "$apid" 2>/dev/null || break
		sleep 0.1
	done
	LOAD_SECS=$((SECONDS - start))
	if grep -q 'hooked ' "$log" && kill -0 "$apid" 2>/dev/null; then
		kill -INT "$apid"
		wait "$apid"
		apid=
		LOAD_DETAIL=$(grep -o 'socket hook: .*' "$log" | head -1)
		return 0
	fi
	kill -KILL "$apid" 2>/dev/null && LOAD_DETAIL="no 'hooked' line after $load_timeout s"
	wait "$apid" 2>/dev/null
	apid=
	[ -n "${LOAD_DETAIL:-}" ] ||
		LOAD_DETAIL=$( (grep -i 'error' "$log" || tail -n 1 "$log") | head -1 | tr -s ' \t' ' ')
	sed 's/^/    agent| /' "$log" >&2
	return 1
}

for hook in "${hooks[@]}"; do
	if [ "$hook" != auto ] && [ "${offered[$hook]:-}" != offered ]; then
		continue # its "offer" row says why
	fi
	echo "== $release: agent with socket hook $hook" >&2
	LOAD_DETAIL=
	if ! agent_loads "$hook"; then
		row "$hook" load FAIL "$LOAD_SECS" "$LOAD_DETAIL"
		continue
	fi
	row "$hook" load pass "$LOAD_SECS" "$LOAD_DETAIL"
	for t in "${tests[@]}"; do
		echo "== $release: test_agent_$t with socket hook $hook" >&2
		start=$SECONDS
		log=$tmp/$hook-$t.log
		if [ "$hook" = auto ]; then
			bash "tests/integration/test_agent_$t.sh" >"$log" 2>&1
		else
			ECV_SOCKET_HOOK=$hook bash "tests/integration/test_agent_$t.sh" >"$log" 2>&1
		fi
		rc=$?
		secs=$((SECONDS - start))
		sed 's/^/    | /' "$log" >&2
		case $rc in
		0) row "$hook" "$t" pass "$secs" "$(grep -m1 '^PASS' "$log" | cut -c7-)" ;;
		77) row "$hook" "$t" skip "$secs" "$(grep -m1 '^SKIP' "$log" | cut -c7-)" ;;
		*) row "$hook" "$t" FAIL "$secs" "$(grep -m1 '^FAIL' "$log" | cut -c7-) (exit $rc)" ;;
		esac
	done
done
