#!/usr/bin/env bash
# Bad input and slow tools: bad flags exit 2 with usage, --help documents every flag;
# --allow and --vni reject other sources/VNIs (counted by reason) while the accepted
# copy is delivered exactly; a stalled pcap:- output (a pipe nobody reads) never blocks
# ingest: its drops are counted while a second pcap output is complete, and SIGTERM
# still ends tvn with exit 0.
source "$(dirname "$0")/tvn_common.bash"
need tshark capinfos python3 curl ss
need_build tvn ecv-flowgen ecv-replay

echo "== bad flags"
for args in "--threads 0" "--threads abc" "--bogus" "--out foo:bar" "--out pcap:x,snaplen=1" \
	"--out pcap:x,filter=tcp[0" \
	"--skew 5x" "--dedup nope" "--allow 10.0.0.0/99" "--vni 99999999" "--max-flows -1" \
	"--listen" "--listen 127.0.0.1:47x" "--http 70000" "--http 127.0.0.1:" "extra-arg" "--read a --listen 127.0.0.1:1"; do
	timeout 10 "$BUILD/tvn" $args >"$T/out" 2>"$T/err" # bounded: an accepted flag would start tvn
	rc=$?
	[ $rc -eq 2 ] || fail "tvn $args exited $rc, expected 2"
	grep -q '^Usage: tvn' "$T/err" || fail "tvn $args printed no usage on stderr"
done
# A filter typo is a usage error before anything starts, with libpcap's reason.
timeout 10 "$BUILD/tvn" --read "$T/none.pcap" --out "pcap:$T/f.pcap,filter=tcp porrt 80" \
	>"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 2 ] || fail "a bad filter= exited $rc, expected 2"
grep -q "invalid --out .*: bad filter expression" "$T/err" || fail "no bad filter message"
grep -q "failed to compile filter 'tcp porrt 80': .*syntax error" "$T/err" ||
	fail "no libpcap reason for the bad filter"
grep -q '^Usage: tvn' "$T/err" || fail "a bad filter= printed no usage"
"$BUILD/tvn" --help >"$T/help" || fail "--help exited non-zero"
for f in listen join read threads vni allow dedup skew dedup-window max-flows \
	max-flows-per-source flow-timeout out http http-token-file config flow-log stats-interval verbose quiet \
	version help; do
	grep -q -- "--$f\b" "$T/help" || fail "--help does not document --$f"
done
"$BUILD/tvn" --version | grep -q 'dedup flow entry: [0-9]* bytes' || fail "--version lacks flow size"

"$BUILD/ecv-flowgen" --dir "$T/g" --flows 100 --max-size 60000 --seed 13 || fail "flowgen"
na=$(npackets "$T/g/a.pcap") nb=$(npackets "$T/g/b.pcap")

echo "== --allow and --vni"
P=$(free_port 4750) || skip "no free UDP port"
H=$(free_port 18050) || skip "no free TCP port"
tvn_start "$T/tvn1.log" --http "127.0.0.1:$H" --allow 127.0.0.2 --allow 10.0.0.0/8 \
	--vni 7,9 --out "pcap:$T/allow.pcap"
"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from 127.0.0.2 --vni 7 --rate 20000 "$T/g/a.pcap" || fail "replay"
"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from 127.0.0.3 --vni 7 --rate 20000 "$T/g/b.pcap" || fail "replay"
"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from 127.0.0.2 --vni 8 --rate 20000 "$T/g/b.pcap" || fail "replay"
all() { [ "$(metric "$H" tvn_rx_packets_total)" -ge $((na + nb + nb)) ]; }
wait_for 20 all || fail "tvn received $(metric "$H" tvn_rx_packets_total) of $((na + 2 * nb))"
src=$(metric "$H" 'tvn_malformed_total{reason="source"}')
vni=$(metric "$H" 'tvn_malformed_total{reason="vni"}')
echo "rejected: source=$src vni=$vni"
[ "$src" -eq "$nb" ] || fail "source rejections $src, expected $nb"
[ "$vni" -eq "$nb" ] || fail "vni rejections $vni, expected $nb"
kill -TERM $TVN; wait $TVN || fail "tvn exited non-zero"
python3 "$CHECK" "$T/allow.pcap" "$T/g" || fail "the allowed copy was not delivered exactly"

echo "== stalled pcap:- output"
P=$(free_port 4760) || skip "no free UDP port"
H=$(free_port 18060) || skip "no free TCP port"
mkfifo "$T/stall"
# Holds the read end open and never reads: the pipe fills and writes block.
sleep 600 <>"$T/stall" &
HOLD=$!
tvn_on_exit "kill $HOLD 2>/dev/null"
"$BUILD/tvn" --listen "127.0.0.1:$P" --http "127.0.0.1:$H" --out pcap:-,queue=1m \
	--out "pcap:$T/full.pcap" >"$T/stall" 2>"$T/tvn2.log" &
TVN=$!
tvn_on_exit "kill -9 $TVN 2>/dev/null"
wait_for 10 curl -sf "http://127.0.0.1:$H/healthz" -o /dev/null || fail "tvn did not come up"
"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from 127.0.0.2 --rate 30000 "$T/g/a.pcap" &
RA=$!
"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from 127.0.0.3 --rate 30000 "$T/g/b.pcap" || fail "replay"
wait $RA
all2() { [ "$(metric "$H" tvn_rx_packets_total)" -ge $((na + nb)) ]; }
wait_for 20 all2 || fail "ingest stalled behind the blocked output: $(metric "$H" tvn_rx_packets_total) of $((na + nb))"
drops=$(metric "$H" 'tvn_egress_dropped_total{out="pcap:-"}')
full=$(metric "$H" 'tvn_egress_dropped_total{out="pcap:'"$T"'/full.pcap"}')
echo "stalled output dropped $drops frames; the other output dropped $full"
[ "$drops" -gt 0 ] || fail "stalled output counted no drops"
[ "$full" -eq 0 ] || fail "healthy output dropped $full frames"
kill -TERM $TVN
wait_for 15 eval '! kill -0 $TVN 2>/dev/null' || fail "tvn did not exit on SIGTERM with a stalled output"
wait $TVN; rc=$?
cat "$T/tvn2.log"
[ $rc -eq 0 ] || fail "tvn exited $rc"
python3 "$CHECK" "$T/full.pcap" "$T/g" || fail "the healthy output is not exact"
echo PASS
