#!/usr/bin/env bash
# Live loopback end to end: a running tvn receives both node copies of 100 flows as
# real VxLAN datagrams, copy A from 127.0.0.2 and copy B from 127.0.0.3 (two agents),
# with 30 garbage datagrams of six kinds mixed in. The output is exact, the malformed
# counters moved by reason, /healthz and /flows answer, the process stays alive until
# SIGTERM and then exits 0 with its outputs closed. Run with 1 and with 3 dedup workers
# (sharding by the inner flow key must bring both copies to one worker).
source "$(dirname "$0")/tvn_common.bash"
need tshark capinfos python3 curl ss
need_build tvn ecv-flowgen ecv-replay

"$BUILD/ecv-flowgen" --dir "$T/g" --flows 100 --loss 5 --vxlan --meta --ipv6 20 --seed 3 || fail "flowgen"
for threads in 1 3; do
echo "== --threads $threads"
P=$(free_port 4710) || skip "no free UDP port"
H=$(free_port 18010) || skip "no free TCP port"
rm -f "$T/live.pcap" "$T/flows.jsonl"
tvn_start "$T/tvn.log" --http "127.0.0.1:$H" --out "pcap:$T/live.pcap" \
	--threads $threads --flow-log "$T/flows.jsonl" --stats-interval 100ms

"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from 127.0.0.2 --rate 20000 --garbage 30 "$T/g/a.pcap" &
RA=$!
"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from 127.0.0.3 --rate 20000 "$T/g/b.pcap" &
RB=$!
wait $RA || fail "replay A failed"
wait $RB || fail "replay B failed"
want=$(( $(npackets "$T/g/a.pcap") + $(npackets "$T/g/b.pcap") + 30 ))
got() { [ "$(metric "$H" tvn_rx_packets_total)" -ge "$want" ]; }
wait_for 20 got || fail "tvn received $(metric "$H" tvn_rx_packets_total) of $want datagrams"

kill -0 $TVN 2>/dev/null || fail "tvn died"
garbage_counted "$H" 30
[ "$(metric "$H" 'tvn_dedup_dropped_total{mode="bytes"}')" -gt 0 ] || fail "no duplicates counted"
curl -sf "http://127.0.0.1:$H/flows" | python3 -c 'import json,sys; json.load(sys.stdin)' ||
	fail "/flows is not JSON"

kill -TERM $TVN
wait $TVN
rc=$?
cat "$T/tvn.log"
[ $rc -eq 0 ] || fail "tvn exited $rc after SIGTERM"
python3 "$CHECK" "$T/live.pcap" "$T/g" || fail "live output is not exact"
n=$(wc -l <"$T/flows.jsonl")
[ "$n" -eq 100 ] || fail "flow log has $n lines, expected 100"
grep -q '^tvn: stats: packets in' "$T/tvn.log" || fail "no --stats-interval line on stderr"
done
echo PASS
