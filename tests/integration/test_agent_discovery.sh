#!/usr/bin/env bash
# test_agent_discovery.sh - a process started after the agent, with its own copy of
# libssl.so.3 in another directory (LD_LIBRARY_PATH), is found in /proc/PID/maps and
# hooked without a restart; its traffic is then captured exactly.
# Two namespaces joined by a veth pair: the server (the new process) in ecvb-disc, which
# the agent is scoped to, the client in ecvb-discc, which it does not see, so the
# capture is the copied library's work alone.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init disc
CNS=ecvb-discc
harness_ns $CNS
harness_veth "$NS" ecvb-d0 10.44.44.1/24 $CNS ecvb-d1 10.44.44.2/24

mkdir "$TMP/lib"
cp "$LIBSSL" "$TMP/lib/"
start_tvn 4440
# Nothing named: discovery alone (default) must find the copy.
AGENT_READY='socket hook:' start_agent

copy_hooked() { grep -q "hooked .*$TMP/lib/libssl.so" "$TMP/agent.log"; }
before_client() {
	grep -q "$TMP/lib/libssl.so" "/proc/$SERVER_PID/maps" ||
		fail "the server does not use the copied libssl"
	# Discovery rescans every second; bounded wait, not a timing assertion.
	wait_for 15 copy_hooked || { cat "$TMP/agent.log"; fail "copied libssl never hooked"; }
	note "agent: $(grep -o "hooked .*$TMP/lib/libssl.so[^ ]*" "$TMP/agent.log")"
}
SERVER_ENV="LD_LIBRARY_PATH=$TMP/lib" CLIENT_NS=$CNS ADDR=10.44.44.1 \
	BEFORE_CLIENT=before_client openssl_pair 4441

capture_done
expect_pair 4441 "$TMP/4441.c" "$TMP/4441.s" "the new process's connection"
l=$(stream_line 4441 "$CPORT")
[ "$(echo "$l" | cut -d' ' -f1,3)" = "10.44.44.1 10.44.44.2" ] ||
	fail "wrong addresses on the captured flow ($l)"
echo "PASS: process started after the agent with its own libssl copy hooked and captured"
