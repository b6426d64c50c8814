#!/usr/bin/env bash
# test_agent_nss.sh - NSS programs are found by discovery (libssl3.so and libnspr4.so in
# /proc/PID/maps) and captured byte-exact in both directions: tstclnt (NSS) against
# openssl s_server. Only the bytes each call returned count.
# Two namespaces joined by a veth pair: tstclnt in ecvb-nss, which the agent is scoped
# to, the OpenSSL server (libssl, hooked too) in ecvb-nssc, which it does not see, so
# the capture is the NSS hooks' work alone.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init nss
command -v tstclnt >/dev/null && command -v certutil >/dev/null ||
	skip "no tstclnt/certutil (libnss3-tools)"
CNS=ecvb-nssc
harness_ns $CNS
harness_veth "$NS" ecvb-n0 10.47.47.1/24 $CNS ecvb-n1 10.47.47.2/24
head -c 3000 /dev/urandom | base64 >"$TMP/c"
head -c 5000 /dev/urandom | base64 >"$TMP/s"
mkdir "$TMP/db"
certutil -N -d "sql:$TMP/db" --empty-password || fail "cannot create an NSS database"

start_tvn 4490
METRICS_PORT=4499
AGENT_READY="socket hook:" start_agent

# tstclnt handshakes as soon as it starts: a first one, stalled by a listener that never
# answers, lets discovery find NSS before the client whose bytes are checked.
bg ip netns exec "$NS" python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 4498)); s.listen(); c, _ = s.accept(); time.sleep(120)'
wait_for 10 tcp_listening 4498 || fail "silent listener did not listen"
bg ip netns exec "$NS" tstclnt -h 127.0.0.1 -p 4498 -o -d "sql:$TMP/db" </dev/null \
	>/dev/null 2>&1
stall=$BG_PID
nss_hooked() {
	grep -q "hooked nss /proc/[0-9]*/root/.*libssl3\.so" "$TMP/agent.log" &&
		grep -q "hooked nss /proc/[0-9]*/root/.*libnspr4\.so" "$TMP/agent.log"
}
# Discovery rescans every second; bounded wait, not a timing assertion.
wait_for 15 nss_hooked || { cat "$TMP/agent.log"; fail "libssl3/libnspr4 never hooked"; }
grep -o "hooked .*lib\(ssl3\|nspr4\).*" "$TMP/agent.log" | sed 's/^/   /'
kill -TERM "$stall"
n=$(metric 'ecv_agent_targets{kind="nss"}')
[ "${n:-0}" -ge 2 ] || fail "ecv_agent_targets{kind=\"nss\"} is '${n:-}'"

note "tstclnt -> openssl s_server (other namespace) on 4491: c one way, s the other"
client_vs_s_server 4491 tstclnt -h 10.47.47.2 -p 4491 -o -d "sql:$TMP/db"
cmp -s "$TMP/s" "$TMP/cout" || fail "tstclnt printed more or less than the server's bytes"

capture_done
expect_pair 4491 "$TMP/c" "$TMP/s" "tstclnt -> openssl server"
lib=$(python3 "$ECVB_ROOT/tests/integration/lib/flow_lib.py" "$FLOWS" 4491)
[[ "$lib" == */libssl3.so* ]] || fail "flow metadata lib is '$lib', not NSS's libssl3.so"
echo "PASS: NSS discovered and both directions captured exactly against an OpenSSL server"
