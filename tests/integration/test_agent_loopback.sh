#!/usr/bin/env bash
# test_agent_loopback.sh - ecv-agent captures real TLS programs on loopback, exactly.
# openssl s_server/s_client with TLS 1.3 and TLS 1.2 (SSL_write/SSL_read), python ssl
# client and server over IPv4 and IPv6 (SSL_write_ex/SSL_read_ex); one agent (auto hook, libssl.so.3 named
# with --lib) ships to a tvn whose pcap, reassembled by tshark, must hold each side's
# plaintext exactly once, on the right 5-tuple, after a synthesized SYN.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init loop

start_tvn 4400
start_agent --lib "$LIBSSL"

note "openssl TLS 1.3 on 4411, TLS 1.2 on 4412"
openssl_pair 4411
openssl_pair 4412 -tls1_2

note "python ssl (SSL_write_ex/SSL_read_ex) on 4413"
python_pair 4413
note "python ssl over IPv6 (::1) on 4414"
python_pair 4414 ::1

capture_done
for port in 4411 4412; do
	expect_pair $port "$TMP/$port.c" "$TMP/$port.s"
done
expect_pair 4413 "$TMP/py4413.c2s" "$TMP/py4413.s2c"
expect_pair 4414 "$TMP/py4414.c2s" "$TMP/py4414.s2c" IPv6
# Right 5-tuple: the addresses the programs really used.
awk '($2 == 4414 || $4 == 4414) != ($1 == "::1" && $3 == "::1") { bad = 1 }
     $2 != 4414 && $4 != 4414 && ($1 != "127.0.0.1" || $3 != "127.0.0.1") { bad = 1 }
     END { exit bad }' "$TMP/streams.txt" || fail "a stream has unexpected addresses"
echo "PASS: loopback openssl (TLS 1.3, 1.2) and python ssl captured exactly, hook: $(
	grep -o 'socket hook: [a-z]*' "$TMP/agent.log" | head -1 | cut -d' ' -f3)"
