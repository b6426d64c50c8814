#!/usr/bin/env bash
# test_agent_negative.sh - negative control: GnuTLS traffic (gnutls-serv/gnutls-cli) is
# not captured, since only OpenSSL-compatible libraries are hooked. A python ssl
# exchange in the same run is the positive control (the agent was working meanwhile).
. "$(dirname "$0")/lib/agent.bash"
ecvb_init neg
command -v gnutls-serv >/dev/null && command -v gnutls-cli >/dev/null ||
	skip "gnutls-bin not installed"

start_tvn 4450
start_agent --lib "$LIBSSL"

note "gnutls-serv --echo on 4451, gnutls-cli sends a message and reads the echo"
bg ip netns exec "$NS" gnutls-serv --echo -p 4451 --x509certfile "$TMP/cert.pem" \
	--x509keyfile "$TMP/key.pem" >"$TMP/gserv.log" 2>&1
wait_for 10 tcp_listening 4451 || fail "gnutls-serv did not listen"
echo "gnutls-message-$RANDOM$RANDOM" >"$TMP/gmsg"
mkfifo "$TMP/gin"
exec {gfd}<>"$TMP/gin"
bg ip netns exec "$NS" gnutls-cli --insecure -p 4451 127.0.0.1 <"$TMP/gin" \
	>"$TMP/gcli.out" 2>&1
gpid=$BG_PID
cat "$TMP/gmsg" >&$gfd
wait_for 20 grep -qF "$(cat "$TMP/gmsg")" "$TMP/gcli.out" ||
	fail "gnutls exchange did not happen (no echo)"
kill -TERM "$gpid"
exec {gfd}>&-

note "python ssl on 4452 (positive control)"
python_pair 4452

capture_done
expect_pair 4452 "$TMP/py4452.c2s" "$TMP/py4452.s2c" "positive control: python flow"
if awk '$2 == 4451 || $4 == 4451 { f = 1 } END { exit !f }' "$TMP/streams.txt"; then
	fail "GnuTLS traffic on 4451 was captured"
fi
n=$(tshark -n -r "$PCAP" -Y 'tcp.port == 4451' 2>/dev/null | wc -l)
[ "$n" = 0 ] || fail "tshark sees $n frames on the GnuTLS port"
echo "PASS: GnuTLS traffic not captured, OpenSSL traffic captured in the same run"
