# tests/integration/lib/harness.bash - the one copy of what every integration, e2e and
# bench script needs, whatever it tests: skip/fail/note, a bounded wait, background
# processes remembered and ended at exit, network namespaces, a private temp dir, a
# test certificate and a directory of files to serve. Sourced by lib/agent.bash,
# tvn_common.bash and tests/e2e/lib.sh; not run on its own.
#
# Cleanup (installed by harness_init, the EXIT trap; INT and TERM exit through it):
# every process started with bg gets SIGTERM (newest first), a bounded wait, then
# SIGKILL; then the commands given to on_exit (newest first); then every namespace made
# with harness_ns (with anything still running inside it); then the temp dir, unless
# KEEP=1 (E2E_KEEP=1 and ECVB_KEEP=1 are read too).

# shellcheck shell=bash disable=SC2034 # variables set here are read by the sourcing script
set -u
HARNESS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$HARNESS_ROOT/$BUILD ;; esac

HARNESS_PIDS=()
HARNESS_NS=()
HARNESS_EXIT_CMDS=()
HARNESS_TMP=

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
note() { echo "== $*"; }
# need TOOL...: skips unless every TOOL is installed.
need() { local c; for c in "$@"; do command -v "$c" >/dev/null || skip "$c not installed"; done; }

# wait_for SECONDS CMD...: polls CMD (output discarded) every 0.1 s until it succeeds;
# 1 once SECONDS have passed without success. CMD is tried at least once, and once
# more at the deadline, however long each try takes. ECV_TEST_TIME_SCALE (an integer,
# default 1) multiplies every such bound: an emulated machine (tests/kernels/, qemu
# without acceleration) is many times slower, and bounds are not assertions on speed.
wait_for() {
	local deadline=$((${EPOCHREALTIME//[!0-9]/} + $1 * ${ECV_TEST_TIME_SCALE:-1} * 1000000))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "${EPOCHREALTIME//[!0-9]/}" -lt "$deadline" ] || { "$@" >/dev/null 2>&1; return; }
		sleep 0.1
	done
}

# ours PID: PID is still a child of this shell. A pid remembered from a process that
# has ended and been reaped can belong to someone else's process by now (pid_max is
# small on test hosts and other tests churn processes): never signal those.
ours() {
	local ppid
	ppid=$(awk '{ print $4 }' "/proc/$1/stat" 2>/dev/null) && [ "$ppid" = "$$" ]
}

# exited PID: our child PID has ended (a zombie counts as ended).
exited() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
	[ -z "$st" ] || [ "$st" = Z ] || ! ours "$1"
}

# bg CMD...: runs CMD (a program, not a shell function, so that the pid is the
# program's and signals reach it) in the background, remembered for cleanup; its pid in
# $BG_PID. stdin is passed on explicitly: bash gives an asynchronous command /dev/null
# otherwise. Redirections on the call apply to CMD.
bg() {
	"$@" <&0 &
	BG_PID=$!
	HARNESS_PIDS+=("$BG_PID")
}

# stop_pid PID [SECONDS] [SIGNAL]: SIGNAL (default INT) to our child PID, a bounded wait
# (default 30 s), then its exit status; 124 if it had to be killed. A PID that has
# already ended gives its status.
stop_pid() {
	local pid=$1 t=${2:-30}
	ours "$pid" || { wait "$pid"; return; }
	kill "-${3:-INT}" "$pid" 2>/dev/null
	if ! wait_for "$t" exited "$pid"; then
		ours "$pid" && kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	wait "$pid"
}

# ready_or_gone PID CMD...: CMD succeeds, or PID has ended (nothing left to wait for).
ready_or_gone() {
	local pid=$1
	shift
	"$@" || exited "$pid"
}

# started PID LOG SECONDS WHAT CMD...: waits (bounded) until CMD succeeds (a readiness
# probe: a port listening, a log line, /healthz) with PID still running; otherwise shows
# LOG and fails "WHAT did not start" (at once when PID has ended).
started() {
	local pid=$1 log=$2 t=$3 what=$4
	shift 4
	if ! wait_for "$t" ready_or_gone "$pid" "$@" || exited "$pid"; then
		cat "$log"
		fail "$what did not start"
	fi
}

# stopped PID LOG WHAT [SECONDS]: SIGINT to PID, which must exit 0 within SECONDS
# (default 30); otherwise shows the end of LOG and fails.
stopped() {
	local rc
	stop_pid "$1" "${4:-30}"
	rc=$?
	[ "$rc" = 0 ] && return 0
	tail -20 "$2"
	[ "$rc" != 124 ] || fail "$3 did not stop on SIGINT"
	fail "$3 exited $rc on SIGINT"
}

# on_exit CMD: a shell command for the cleanup to run (after the processes have ended).
on_exit() { HARNESS_EXIT_CMDS+=("$*"); }

# harness_ns NAME: creates network namespace NAME with loopback up, replacing a stale
# one (and whatever a crashed earlier run left running in it); removed at exit. The
# names are fixed, and another run (another build tree, another engineer) may be using
# this one: it is locked until this script exits, so the second run waits for the
# first (up to 300 s) instead of tearing its namespace down under it.
harness_ns() {
	local ns=$1 pid lock
	exec {lock}>"/tmp/ecv-netns-$ns.lock"
	flock -w 300 "$lock" || skip "another run held network namespace $ns for 300 s"
	if ip netns list | grep -q "^$ns\( \|$\)"; then
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$ns"
	fi
	ip netns add "$ns" || skip "cannot create network namespace $ns"
	HARNESS_NS+=("$ns")
	ip -n "$ns" link set lo up
}

# harness_veth NS1 IF1 ADDR1 NS2 IF2 ADDR2: a veth pair joining two namespaces, each end
# up with its address (ADDR/prefix).
harness_veth() {
	ip link add "$2" netns "$1" type veth peer name "$5" netns "$4" ||
		fail "cannot create a veth pair $2/$5"
	ip -n "$1" addr add "$3" dev "$2"
	ip -n "$4" addr add "$6" dev "$5"
	ip -n "$1" link set "$2" up
	ip -n "$4" link set "$5" up
}

harness_cleanup() {
	local pid ns i
	for ((i = ${#HARNESS_PIDS[@]} - 1; i >= 0; i--)); do
		ours "${HARNESS_PIDS[$i]}" && kill -TERM "${HARNESS_PIDS[$i]}" 2>/dev/null
	done
	for pid in "${HARNESS_PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do exited "$pid" && break; sleep 0.1; done
		ours "$pid" && kill -KILL "$pid" 2>/dev/null
		# A killed agent lingers while the kernel unregisters its uprobes: wait
		# (bounded) until it is really gone, so that no process is left on return.
		for ((i = 0; i < 100; i++)); do
			[ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" = Z ] || ! ours "$pid" && break
			sleep 0.1
		done
		wait "$pid" 2>/dev/null
	done
	for ((i = ${#HARNESS_EXIT_CMDS[@]} - 1; i >= 0; i--)); do
		eval "${HARNESS_EXIT_CMDS[$i]}" || true
	done
	for ns in "${HARNESS_NS[@]}"; do
		# Stray processes (a TLS peer that forked, nginx workers) die with their namespace.
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "$HARNESS_TMP" ]; then
		if [ "${KEEP:-${E2E_KEEP:-${ECVB_KEEP:-0}}}" != 0 ]; then
			echo "kept $HARNESS_TMP"
		else
			rm -rf "$HARNESS_TMP"
		fi
	fi
}

# harness_init NAME: the private temp dir /tmp/NAME.XXXXXX in $HARNESS_TMP and the
# cleanup trap.
harness_init() {
	trap harness_cleanup EXIT
	trap 'exit 1' INT TERM
	HARNESS_TMP=$(mktemp -d "/tmp/$1.XXXXXX") || fail "cannot make a temp dir"
}

# harness_cert DIR [CN]: a self-signed certificate DIR/cert.pem with its key DIR/key.pem
# (readable by all: nginx workers run as www-data).
harness_cert() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1/key.pem" -out "$1/cert.pem" \
		-days 2 -subj "/CN=${2:-localhost}" >/dev/null 2>&1 || fail "cannot make a test certificate"
	chmod 644 "$1/key.pem"
}

# harness_www DIR NAME=SIZE...: a directory of random files to serve (SIZE as for head
# -c, e.g. 300K, 16M), readable by all.
harness_www() {
	local dir=$1 f
	shift
	mkdir -p "$dir"
	for f in "$@"; do
		head -c "${f#*=}" /dev/urandom >"$dir/${f%%=*}" || fail "cannot write $dir/${f%%=*}"
	done
	chmod -R a+rX "$dir"
}
