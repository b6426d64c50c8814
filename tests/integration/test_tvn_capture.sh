#!/usr/bin/env bash
# /capture over HTTP: while traffic is replayed into a live tvn, curl receives the
# deduplicated stream as a chunked pcap that tshark reads: count= ends it after N frames,
# filter= (libpcap syntax) selects frames, seconds= ends a quiet capture, a bad filter is
# a 400 with the libpcap message.
source "$(dirname "$0")/tvn_common.bash"
need tshark capinfos curl ss
need_build tvn ecv-flowgen ecv-replay

P=$(free_port 4730) || skip "no free UDP port"
H=$(free_port 18030) || skip "no free TCP port"
"$BUILD/ecv-flowgen" --dir "$T/g" --flows 100 --vxlan --seed 11 || fail "flowgen"
tvn_start "$T/tvn.log" --http "127.0.0.1:$H"

code=$(curl -s -o "$T/bad.txt" -w '%{http_code}' --get --data-urlencode 'filter=tcp port nonsense' \
	"http://127.0.0.1:$H/capture")
[ "$code" = 400 ] && grep -q 'bad filter' "$T/bad.txt" || fail "bad filter answered $code: $(cat "$T/bad.txt")"

curl -sN "http://127.0.0.1:$H/capture?count=50" -o "$T/all.pcap" &
C1=$!
curl -sN --get --data-urlencode 'filter=tcp[tcpflags] & tcp-syn != 0' --data 'count=20' \
	"http://127.0.0.1:$H/capture" -o "$T/syn.pcap" &
C2=$!
tvn_on_exit "kill $C1 $C2 2>/dev/null"
two() { [ "$(metric "$H" tvn_capture_clients)" -eq 2 ]; }
wait_for 10 two || fail "capture clients did not attach"
"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from 127.0.0.2 --rate 20000 "$T/g/a.pcap" &
RA=$!
"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from 127.0.0.3 --rate 20000 "$T/g/b.pcap" || fail "replay B"
wait $RA || fail "replay A"
done_c() { ! kill -0 $C1 2>/dev/null && ! kill -0 $C2 2>/dev/null; }
wait_for 15 done_c || fail "curl did not finish after count= frames"
n=$(tshark -r "$T/all.pcap" 2>/dev/null | wc -l)
[ "$n" -eq 50 ] || fail "count=50 capture holds $n frames"
n=$(tshark -r "$T/syn.pcap" -Y 'tcp.flags.syn == 1' 2>/dev/null | wc -l)
m=$(tshark -r "$T/syn.pcap" 2>/dev/null | wc -l)
[ "$n" -eq 20 ] && [ "$m" -eq 20 ] || fail "filtered capture: $m frames, $n with SYN (want 20/20)"
capinfos -M "$T/all.pcap" | grep -q 'nanoseconds' || fail "capture is not nanosecond pcap"

# seconds= ends a capture that sees no traffic with a valid, empty pcap.
curl -sN -m 10 "http://127.0.0.1:$H/capture?seconds=1" -o "$T/empty.pcap" || fail "seconds= capture failed"
[ "$(tshark -r "$T/empty.pcap" 2>/dev/null | wc -l)" -eq 0 ] || fail "quiet capture not empty"
kill -0 $TVN || fail "tvn died"
echo PASS
