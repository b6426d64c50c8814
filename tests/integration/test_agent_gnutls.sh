#!/usr/bin/env bash
# test_agent_gnutls.sh - GnuTLS programs are found by discovery (libgnutls.so* in
# /proc/PID/maps) and captured byte-exact in both directions against OpenSSL peers:
# gnutls-cli -> openssl s_server, and openssl s_client -> gnutls-serv --echo.
# Two namespaces joined by a veth pair: the GnuTLS programs in ecvb-gtls, which the
# agent is scoped to, the OpenSSL peers (libssl, hooked too) in ecvb-gtlsc, which it
# does not see, so the capture is GnuTLS's hooks' work alone.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init gtls
command -v gnutls-serv >/dev/null && command -v gnutls-cli >/dev/null ||
	skip "gnutls-bin not installed"
CNS=ecvb-gtlsc
harness_ns $CNS
harness_veth "$NS" ecvb-g0 10.46.46.1/24 $CNS ecvb-g1 10.46.46.2/24
head -c 3000 /dev/urandom | base64 >"$TMP/c"
head -c 5000 /dev/urandom | base64 >"$TMP/s"

start_tvn 4460
METRICS_PORT=4469
AGENT_READY="socket hook:" start_agent

note "gnutls-serv --echo on 10.46.46.1:4462"
bg ip netns exec "$NS" gnutls-serv --echo -p 4462 --x509certfile "$TMP/cert.pem" \
	--x509keyfile "$TMP/key.pem" >"$TMP/gserv.log" 2>&1
wait_for 10 tcp_listening 4462 || fail "gnutls-serv did not listen"
gnutls_hooked() { grep -q "hooked gnutls /proc/[0-9]*/root/.*libgnutls\.so" "$TMP/agent.log"; }
# Discovery rescans every second; bounded wait, not a timing assertion.
wait_for 15 gnutls_hooked || { cat "$TMP/agent.log"; fail "libgnutls never hooked"; }
note "agent: $(grep -o "hooked .*libgnutls.*" "$TMP/agent.log" | head -1)"
grep -o "libgnutls[^:]*: gnutls_.*" "$TMP/agent.log" | sed 's/^/   /'
n=$(metric 'ecv_agent_targets{kind="gnutls"}')
[ "${n:-0}" -ge 1 ] || fail "ecv_agent_targets{kind=\"gnutls\"} is '${n:-}'"

note "openssl s_client (other namespace) -> gnutls-serv: sends c, gets it echoed"
mkfifo "$TMP/oin"
exec {ofd}<>"$TMP/oin"
bg ip netns exec "$CNS" openssl s_client -connect 10.46.46.1:4462 -quiet <"$TMP/oin" \
	>"$TMP/oout" 2>"$TMP/oerr"
opid=$BG_PID
cat "$TMP/c" >&$ofd
wait_for 20 cmp -s "$TMP/c" "$TMP/oout" || fail "s_client did not get the echo"
kill -TERM "$opid"
wait "$opid" 2>/dev/null
exec {ofd}>&-

note "gnutls-cli -> openssl s_server (other namespace) on 4461: c one way, s the other"
client_vs_s_server 4461 gnutls-cli --insecure -p 4461 10.46.46.2

capture_done
expect_pair 4462 "$TMP/c" "$TMP/c" "openssl client -> gnutls-serv"
expect_pair 4461 "$TMP/c" "$TMP/s" "gnutls-cli -> openssl server"
lib=$(python3 "$ECVB_ROOT/tests/integration/lib/flow_lib.py" "$FLOWS" 4461)
[[ "$lib" == */libgnutls.so* ]] || fail "flow metadata lib is '$lib', not libgnutls.so"
echo "PASS: GnuTLS discovered and both directions captured exactly against OpenSSL peers"
