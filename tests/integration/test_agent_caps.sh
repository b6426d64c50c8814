#!/usr/bin/env bash
# test_agent_caps.sh - after attaching, ecv-agent keeps only the capabilities it still
# needs (issue 6), read from /proc/<agent pid>/status while it runs, and captures as
# before:
#   --no-auto: CAP_SYS_PTRACE only (process metadata of other users' processes; the perf
#              buffers and detaching need none);
#   discovery: CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH,
#              and a library that appears after the drop (an s_server with its own copy
#              of libssl) is still hooked and captured.
# Effective, permitted and bounding sets must equal exactly that (intersected with what
# this shell has), inheritable and ambient must be empty. With -v, the agent's log must
# not hold any of the captured plaintext.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init ecvq-caps

# Capability numbers (linux/capability.h).
CAP_DAC_READ_SEARCH=2 CAP_SETPCAP=8 CAP_SYS_PTRACE=19 CAP_SYS_ADMIN=21
CAP_PERFMON=38 CAP_BPF=39

capfield() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
hexset() { printf '%016x' "$1"; }

# expect_caps PID MASK: the process holds exactly MASK of what this shell holds.
expect_caps() {
	local pid=$1 want=$2 prm bnd eff_want bnd_want
	prm=$((0x$(capfield $$ CapPrm)))
	bnd=$((0x$(capfield $$ CapBnd)))
	eff_want=$(hexset $((want & prm)))
	# The bounding set can only shrink with CAP_SETPCAP (the agent skips it otherwise).
	if ((prm >> CAP_SETPCAP & 1)); then
		bnd_want=$(hexset $((want & bnd)))
	else
		bnd_want=$(hexset "$bnd")
	fi
	[ "$(capfield "$pid" CapEff)" = "$eff_want" ] ||
		fail "CapEff $(capfield "$pid" CapEff), expected $eff_want"
	[ "$(capfield "$pid" CapPrm)" = "$eff_want" ] ||
		fail "CapPrm $(capfield "$pid" CapPrm), expected $eff_want"
	[ "$(capfield "$pid" CapBnd)" = "$bnd_want" ] ||
		fail "CapBnd $(capfield "$pid" CapBnd), expected $bnd_want"
	[ "$(capfield "$pid" CapInh)" = 0000000000000000 ] || fail "CapInh not empty"
	[ "$(capfield "$pid" CapAmb)" = 0000000000000000 ] || fail "CapAmb not empty"
	note "ok: agent CapEff=CapPrm=$eff_want CapBnd=$bnd_want"
}

# The threads too: capabilities are per thread (the metrics server runs in one).
expect_threads_caps() {
	local pid=$1 t eff
	eff=$(capfield "$pid" CapEff)
	for t in /proc/"$pid"/task/*; do
		[ "$(awk '$1 == "CapEff:" { print $2 }' "$t/status")" = "$eff" ] ||
			fail "thread ${t##*/} keeps capabilities $(awk '$1 == "CapEff:" { print $2 }' "$t/status")"
	done
}

[ "$(capfield $$ CapEff)" != 0000000000000000 ] || skip "this shell has no capabilities"
start_tvn 4300

note "--no-auto --lib: only CAP_SYS_PTRACE stays"
METRICS_PORT=4309
start_agent --no-auto --lib "$LIBSSL" -v
grep -q 'capabilities dropped; kept: cap_sys_ptrace$' "$TMP/agent.log" ||
	{ grep capabilities "$TMP/agent.log"; fail "agent did not log the kept capabilities"; }
expect_caps "$AGENT_PID" $((1 << CAP_SYS_PTRACE))
expect_threads_caps "$AGENT_PID"
openssl_pair 4301
[ -n "$(metric ecv_agent_events_total)" ] || fail "metrics not served after the drop"
sleep 0.5 # let the last perf samples reach the agent before it stops
stop_agent
cp "$TMP/agent.log" "$TMP/agent-noauto.log"

note "discovery: BPF, PERFMON, SYS_ADMIN, SYS_PTRACE, DAC_READ_SEARCH stay"
AGENT_READY='capturing with' start_agent
expect_caps "$AGENT_PID" $((1 << CAP_BPF | 1 << CAP_PERFMON | 1 << CAP_SYS_ADMIN |
	1 << CAP_SYS_PTRACE | 1 << CAP_DAC_READ_SEARCH))
mkdir "$TMP/lib"
cp "$LIBSSL" "$TMP/lib/"
copy_hooked() { grep -q "hooked .*$TMP/lib/libssl.so" "$TMP/agent.log"; }
before_client() {
	grep -q "$TMP/lib/libssl.so" "/proc/$SERVER_PID/maps" ||
		fail "the server does not use the copied libssl"
	# Discovery rescans every second; bounded wait, not a timing assertion.
	wait_for 15 copy_hooked ||
		{ cat "$TMP/agent.log"; fail "libssl copy not hooked after the drop"; }
}
SERVER_ENV="LD_LIBRARY_PATH=$TMP/lib" BEFORE_CLIENT=before_client openssl_pair 4302
capture_done
for port in 4301 4302; do
	expect_pair $port "$TMP/$port.c" "$TMP/$port.s" "after the drop"
done

# Plaintext goes to the tunnel only: not one line of it in the -v log, nor its hex.
for f in "$TMP/4301.c" "$TMP/4301.s"; do
	needle=$(head -1 "$f" | cut -c1-24)
	hex=$(head -c 12 "$f" | od -An -tx1 | tr -d ' \n')
	grep -qF "$needle" "$TMP/agent-noauto.log" && fail "captured plaintext in the -v log"
	grep -qiF "$hex" "$TMP/agent-noauto.log" && fail "captured plaintext (hex) in the -v log"
done
grep -q 'debug' "$TMP/agent-noauto.log" || fail "the -v log has no debug lines (test is void)"
echo "PASS: capabilities dropped to the needed sets in both modes; capture works after it"
