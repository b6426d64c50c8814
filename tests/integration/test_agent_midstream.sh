#!/usr/bin/env bash
# test_agent_midstream.sh - a TLS connection opened before the agent starts is captured
# from its next SSL call on, announced as mid-stream (flow log), the bytes of the calls
# after the start exactly behind a synthesized handshake, nothing of the calls before.
# Only the client process is captured (--pid): its copy alone defines the flow.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init mid
PEER=$ECVB_ROOT/tests/integration/lib/tls_peer.py

head -c 5000 /dev/urandom >"$TMP/before"
head -c 7000 /dev/urandom >"$TMP/after1"
head -c 300 /dev/urandom >"$TMP/after2"

start_tvn 4430
bg ip netns exec "$NS" python3 "$PEER" server 4431 "$TMP/cert.pem" "$TMP/key.pem"
wait_for 10 tcp_listening 4431 || fail "python server did not listen"
bg ip netns exec "$NS" python3 "$PEER" client 127.0.0.1 4431 --record "$TMP/rec" \
	--progress "$TMP/progress" "$TMP/before" "@wait:$TMP/go" "$TMP/after1" "$TMP/after2"
cpid=$BG_PID
wait_for 20 test -s "$TMP/progress" || fail "client did not complete its first exchange"
# What was sent and received before the agent existed: must not be in the capture.
before_c2s=$(stat -c %s "$TMP/rec.c2s")
before_s2c=$(stat -c %s "$TMP/rec.s2c")
start_agent --pid "$cpid"
touch "$TMP/go"
wait "$cpid" || fail "python client failed"
capture_done

cport=$(client_port_of 4431)
[ -n "$cport" ] || fail "the connection opened before the agent was not captured"
tail -c +$((before_c2s + 1)) "$TMP/rec.c2s" >"$TMP/expect.c2s"
tail -c +$((before_s2c + 1)) "$TMP/rec.s2c" >"$TMP/expect.s2c"
expect_exact "$cport" 4431 "$TMP/expect.c2s"
expect_exact 4431 "$cport" "$TMP/expect.s2c"
# What reaches the tools still starts with a handshake (analysers drop sessions without
# one), synthesized just before the first byte seen; the flow log says mid_stream.
for d in "$cport 4431" "4431 $cport"; do
	l=$(stream_line $d)
	[ "$(field "$l" syn)" = 1 ] || fail "mid-stream flow has no synthesized SYN ($l)"
done
python3 - "$FLOWS" "$cport" <<'PY' || fail "the tvn's flow log does not say mid_stream: $(cat "$FLOWS")"
import json, sys
flows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
port = int(sys.argv[2])
mine = [f for f in flows if port in (f.get("sport"), f.get("dport"))]
sys.exit(0 if mine and all(f.get("mid_stream") for f in mine) else 1)
PY
echo "PASS: connection opened before the agent captured mid-stream from the next call on"
