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
ip netns del $CNS 2>/dev/null
ip netns add $CNS || fail "cannot create namespace $CNS"
ECVB_NS+=("$CNS")
ip -n $CNS link set lo up
ip link add ecvb-d0 netns "$NS" type veth peer name ecvb-d1 netns $CNS ||
	fail "cannot create a veth pair"
ip -n "$NS" addr add 10.44.44.1/24 dev ecvb-d0
ip -n $CNS addr add 10.44.44.2/24 dev ecvb-d1
ip -n "$NS" link set ecvb-d0 up
ip -n $CNS link set ecvb-d1 up

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

sleep 0.5
stop_agent
stop_tvn
streams
cport=$(client_port_of 4441)
[ -n "$cport" ] || fail "the new process's connection was not captured"
expect_exact "$cport" 4441 "$TMP/4441.c" syn
expect_exact 4441 "$cport" "$TMP/4441.s" syn
l=$(stream_line 4441 "$cport")
[ "$(echo "$l" | cut -d' ' -f1,3)" = "10.44.44.1 10.44.44.2" ] ||
	fail "wrong addresses on the captured flow ($l)"
echo "PASS: process started after the agent with its own libssl copy hooked and captured"
