#!/usr/bin/env bash
# test_agent_static.sh - a program that links OpenSSL statically (no libssl.so mapped,
# SSL_* in its own symbol table), started after the agent, is found by discovery alone
# (no --bin: its /proc/PID/exe defines SSL_read and SSL_write) and hooked; its traffic
# is then captured exactly, and /metrics counts it as an openssl target.
# Two namespaces joined by a veth pair: the static client in ecvb-stat, which the agent
# is scoped to, the python server (libssl.so.3, hooked too) in ecvb-statc, which it
# does not see, so the capture is the static binary's work alone.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init stat
CNS=ecvb-statc
harness_ns $CNS
harness_veth "$NS" ecvb-s0 10.45.45.1/24 $CNS ecvb-s1 10.45.45.2/24

build_static_client

head -c 40000 /dev/urandom >"$TMP/msg"
start_tvn 4480
METRICS_PORT=4489
AGENT_READY="socket hook:" start_agent
bg ip netns exec "$CNS" python3 "$ECVB_ROOT/tests/integration/lib/tls_peer.py" server 4481 \
	"$TMP/cert.pem" "$TMP/key.pem" --bind 10.45.45.2
spid=$BG_PID
wait_for 10 bash -c "ip netns exec $CNS ss -Hltn 'sport = :4481' | grep -q ." ||
	fail "python server did not listen"
# The client waits for $TMP/go before it connects: discovery rescans every second.
bg ip netns exec "$NS" env STATIC_CLIENT_WAIT="$TMP/go" "$TMP/static_client" 10.45.45.2 4481 \
	"$TMP/msg" "$TMP/rec"
cpid=$BG_PID
exe_hooked() { grep -q "hooked openssl /proc/[0-9]*/root$TMP/static_client " "$TMP/agent.log"; }
# Bounded wait, not a timing assertion.
wait_for 15 exe_hooked || { cat "$TMP/agent.log"; fail "static binary never hooked"; }
note "agent: $(grep -o "hooked .*static_client.*" "$TMP/agent.log")"
n=$(metric 'ecv_agent_targets{kind="openssl"}')
[ "${n:-0}" -ge 1 ] || fail "ecv_agent_targets{kind=\"openssl\"} is '${n:-}'"
touch "$TMP/go"
wait "$cpid" || fail "static client failed"
wait "$spid" || fail "python server failed"
capture_done
expect_pair 4481 "$TMP/rec.c2s" "$TMP/rec.s2c" "the static binary's flow"
lib=$(python3 "$ECVB_ROOT/tests/integration/lib/flow_lib.py" "$FLOWS" 4481)
[[ "$lib" == */static_client ]] || fail "flow metadata lib is '$lib', not the static binary"
echo "PASS: statically linked OpenSSL client found without --bin and captured exactly"
