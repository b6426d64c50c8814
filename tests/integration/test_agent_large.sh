#!/usr/bin/env bash
# test_agent_large.sh - one SSL_write of 1 MiB arrives intact; one of 5 MiB is cut at
# the capture limit (1 MiB), flagged truncated and counted, and the stream goes on after
# a visible sequence gap with the right bytes after it (never shifted data).
# Only the writing process is captured (--pid), so the other end's copy cannot fill the
# gap at the tvn: what the pcap shows is exactly what the writer's agent sent.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init large
MiB=1048576
PEER=$ECVB_ROOT/tests/integration/lib/tls_peer.py

# Messages go out as 8-byte length + payload in one SSL_write_ex: sizes chosen so the
# calls are exactly 1 MiB and 5 MiB.
head -c $((MiB - 8)) /dev/urandom >"$TMP/big1"
head -c 1000 /dev/urandom >"$TMP/small1"
head -c $((5 * MiB - 8)) /dev/urandom >"$TMP/big5"
head -c 3333 /dev/urandom >"$TMP/small2"

start_tvn 4420
bg ip netns exec "$NS" python3 "$PEER" server 4421 "$TMP/cert.pem" "$TMP/key.pem"
wait_for 10 tcp_listening 4421 || fail "python server did not listen"
bg ip netns exec "$NS" python3 "$PEER" client 127.0.0.1 4421 --record "$TMP/rec" \
	"@wait:$TMP/go" "$TMP/big1" "$TMP/small1" "$TMP/big5" "$TMP/small2"
cpid=$BG_PID
# The client maps libssl (import ssl) before waiting; discovery must see it.
wait_for 10 grep -q libssl "/proc/$cpid/maps" || fail "client never mapped libssl"
METRICS_PORT=4429
start_agent --pid "$cpid"
touch "$TMP/go"
wait "$cpid" || fail "python client failed"
sleep 0.5 # let the last perf samples reach the agent
truncated=$(metric ecv_agent_truncated_total)
lost=$(metric ecv_agent_lost_events_total)
stop_agent
stop_tvn
streams

cport=$(client_port_of 4421)
[ -n "$cport" ] || fail "no flow to 4421 captured"
c2s=$(stream_line "$cport" 4421)
[ "$(field "$c2s" syn)" = 1 ] || fail "no synthesized SYN ($c2s)"
[ "$(field "$c2s" dup)" = 0 ] || fail "duplicated bytes ($c2s)"
[ "$(field "$c2s" holes)" = 1 ] || fail "expected exactly one hole ($c2s)"
# The hole is the 4 MiB of the 5 MiB call past the capture limit, where they were.
gap_at=$((8 + MiB - 8 + 8 + 1000 + MiB))
read -r off len <"${TMP}/dump/127.0.0.1_${cport}-127.0.0.1_4421.holes"
[ "$off" = "$gap_at" ] && [ "$len" = $((4 * MiB)) ] ||
	fail "hole at $off+$len, expected at $gap_at+$((4 * MiB))"
# Everything but the hole is byte-exact: the 1 MiB call intact, the first MiB of the
# 5 MiB call, and the message after the gap at its true offset.
python3 - "$TMP/rec.c2s" "$TMP/expect.c2s" "$gap_at" $((4 * MiB)) <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
a, n = int(sys.argv[3]), int(sys.argv[4])
open(sys.argv[2], "wb").write(d[:a] + d[a + n:])
PY
cmp -s "$(stream_file "$cport" 4421)" "$TMP/expect.c2s" ||
	fail "client->server bytes around the gap differ from what was sent"
note "ok: 1 MiB call intact, 5 MiB call cut at 1 MiB, gap of 4 MiB at $gap_at, bytes after it right"
# A tool sees the gap as such.
n=$(tshark -n -r "$PCAP" -Y 'tcp.analysis.lost_segment' 2>/dev/null | wc -l)
[ "$n" -ge 1 ] || fail "tshark does not flag the gap (previous segment not captured)"
note "ok: tshark flags 'previous segment not captured' ($n)"
expect_exact 4421 "$cport" "$TMP/rec.s2c" syn
[ "$truncated" = 1 ] || fail "ecv_agent_truncated_total is '$truncated', expected 1"
[ "${lost:-0}" = 0 ] || fail "ecv_agent_lost_events_total is $lost at the default --perf-pages"
echo "PASS: 1 MiB call intact, 5 MiB call truncated (counted: $truncated), gap visible"
