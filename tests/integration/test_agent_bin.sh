#!/usr/bin/env bash
# test_agent_bin.sh - --bin hooks a program that links OpenSSL statically (its SSL_*
# symbols are in the binary's own symbol table, no libssl.so is mapped), with
# discovery off: only that program's copy of the flow reaches the tvn, exactly.
# Its data calls stay at the exported symbols (the chooser finds more than one callee).
. "$(dirname "$0")/lib/agent.bash"
ecvb_init bin
build_static_client

head -c 40000 /dev/urandom >"$TMP/msg"
start_tvn 4470
start_agent --no-auto --bin "$TMP/static_client"
# Its SSL_read also calls ERR_* inside the binary's own code (no PLT between them):
# more than one candidate callee, so the exported symbols, said per function.
for f in SSL_read SSL_write; do
	l=$(grep -E "static_client: $f( ->| at the exported)" "$TMP/agent.log" | head -1)
	note "$l"
	case "${ECVB_PROBE_SITES:-auto}:$l" in
	auto:*"$f at the exported symbol ("*"single-stepped; more than one candidate"*) ;;
	exported:*"$f at the exported symbol (exported sites forced)") ;;
	*) fail "static $f: site not as expected: ${l:-no log line}" ;;
	esac
done
bg ip netns exec "$NS" python3 "$ECVB_ROOT/tests/integration/lib/tls_peer.py" server 4471 \
	"$TMP/cert.pem" "$TMP/key.pem"
spid=$BG_PID
wait_for 10 tcp_listening 4471 || fail "python server did not listen"
ip netns exec "$NS" "$TMP/static_client" 127.0.0.1 4471 "$TMP/msg" "$TMP/rec" ||
	fail "static client failed"
wait "$spid" || fail "python server failed"
capture_done
expect_pair 4471 "$TMP/rec.c2s" "$TMP/rec.s2c" "the static binary's flow"
echo "PASS: statically linked OpenSSL client hooked with --bin and captured exactly"
