#!/usr/bin/env bash
# test_agent_filters.sh - the in-kernel cgroup filter: with --cgroup DIR only processes
# in that cgroup v2 directory are captured. Two python exchanges run in the same network
# namespace, one inside the cgroup (captured exactly) and one outside (absent).
# (--pid and --netns are exercised by the other test_agent_* scripts.)
. "$(dirname "$0")/lib/agent.bash"
ecvb_init filt
CG2=$(findmnt -n -t cgroup2 -o TARGET | head -1)
[ -n "$CG2" ] || skip "no cgroup2 file system mounted"
CG=$CG2/ecvb-filt.$$
mkdir "$CG" || skip "cannot create a cgroup under $CG2"
on_exit "rmdir '$CG' 2>/dev/null"

# in_cg CMD...: runs CMD inside the test cgroup.
in_cg() { bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$@"; }

start_tvn 4480
start_agent --lib "$LIBSSL" --cgroup "$CG"
PEER=$ECVB_ROOT/tests/integration/lib/tls_peer.py
head -c 9000 /dev/urandom >"$TMP/m"
for port in 4481 4482; do
	run=
	[ $port = 4481 ] && run=in_cg
	bg $run ip netns exec "$NS" python3 "$PEER" server $port "$TMP/cert.pem" "$TMP/key.pem"
	spid=$BG_PID
	wait_for 10 tcp_listening $port || fail "python server did not listen on $port"
	$run ip netns exec "$NS" python3 "$PEER" client 127.0.0.1 $port --record "$TMP/r$port" \
		"$TMP/m" || fail "python client to $port failed"
	wait "$spid" || fail "python server on $port failed"
done
capture_done
expect_pair 4481 "$TMP/r4481.c2s" "$TMP/r4481.s2c" "the exchange inside the cgroup"
if awk '$2 == 4482 || $4 == 4482 { f = 1 } END { exit !f }' "$TMP/streams.txt"; then
	fail "the exchange outside the cgroup was captured"
fi
echo "PASS: --cgroup captures the cgroup's processes only"
