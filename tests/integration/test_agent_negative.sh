#!/usr/bin/env bash
# test_agent_negative.sh - negative control: Java's own TLS stack (JSSE, no OpenSSL,
# GnuTLS or NSS underneath) is not captured, since only the hooked stacks are seen. A
# python ssl exchange in the same run is the positive control (the agent was working
# meanwhile). The Java peers are one source file run by the JDK (java TlsPeer.java).
. "$(dirname "$0")/lib/agent.bash"
ecvb_init neg
command -v java >/dev/null || skip "no java (default-jdk-headless)"
PEER=$ECVB_ROOT/tests/integration/lib/TlsPeer.java
openssl pkcs12 -export -in "$TMP/cert.pem" -inkey "$TMP/key.pem" -out "$TMP/ks.p12" \
	-passout pass:ecvtest || fail "cannot make a PKCS12 keystore"

start_tvn 4450
start_agent --lib "$LIBSSL"

note "Java TLS echo server on 4451, Java client sends a line and reads the echo"
bg ip netns exec "$NS" java "$PEER" server 4451 "$TMP/ks.p12" ecvtest >"$TMP/jserv.log" 2>&1
jspid=$BG_PID
# The JVM compiles the source first: a bounded wait, not a timing assertion.
wait_for 60 tcp_listening 4451 || { cat "$TMP/jserv.log"; fail "java server did not listen"; }
# The control means something only if no hooked library sits under Java's TLS.
jpid=$jspid # ip netns exec execs java: the same process
if grep -E 'lib(ssl|gnutls|nspr4)' "/proc/$jpid/maps"; then
	fail "the java server maps a TLS library the agent hooks"
fi
msg="java-message-$RANDOM$RANDOM"
ip netns exec "$NS" java "$PEER" client 127.0.0.1 4451 "$msg" >"$TMP/jcli.out" 2>&1 ||
	{ cat "$TMP/jcli.out"; fail "java client failed"; }
grep -qxF "$msg" "$TMP/jcli.out" || fail "java exchange did not happen (no echo)"
wait "$jspid" || fail "java server failed"

note "python ssl on 4452 (positive control)"
python_pair 4452

capture_done
expect_pair 4452 "$TMP/py4452.c2s" "$TMP/py4452.s2c" "positive control: python flow"
if awk '$2 == 4451 || $4 == 4451 { f = 1 } END { exit !f }' "$TMP/streams.txt"; then
	fail "Java TLS traffic on 4451 was captured"
fi
n=$(tshark -n -r "$PCAP" -Y 'tcp.port == 4451' 2>/dev/null | wc -l)
[ "$n" = 0 ] || fail "tshark sees $n frames on the Java port"
echo "PASS: Java (JSSE) TLS traffic not captured, OpenSSL traffic captured in the same run"
