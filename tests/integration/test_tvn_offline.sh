#!/usr/bin/env bash
# Offline end to end: two node copies of 200 flows (differently segmented, holes in
# copy B, garbage mixed in) -> tvn --read a --read b -> every flow and direction exactly
# once, byte for byte, valid checksums, no TCP analysis warnings; holes in the first
# copy filled from the second. Then the same from
# VxLAN-encapsulated captures with agent metadata, and with 2 worker threads. Also shows
# why tvn exists: editcap -d on the merged copies removes (almost) nothing.
source "$(dirname "$0")/tvn_common.bash"
need tshark capinfos mergecap editcap python3
need_build tvn ecv-flowgen

echo "== inner-frame captures, 20% IPv6, 5% holes in copy B, garbage"
"$BUILD/ecv-flowgen" --dir "$T/g" --flows 200 --loss 5 --garbage 12 --ipv6 20 --seed 7 || fail "flowgen"
"$BUILD/tvn" --read "$T/g/a.pcap" --read "$T/g/b.pcap" --out "pcap:$T/out.pcap" 2>"$T/log" ||
	{ cat "$T/log"; fail "tvn exited $?"; }
cat "$T/log"
python3 "$CHECK" "$T/out.pcap" "$T/g" || fail "inner-frame output is not exact"
grep -q 'malformed 12: ethertype=12' "$T/log" || fail "garbage frames not counted by reason"
flags=$(tshark -n -r "$T/out.pcap" -Y 'tcp.analysis.retransmission || tcp.analysis.spurious_retransmission || tcp.analysis.duplicate_ack || tcp.analysis.lost_segment' 2>/dev/null | wc -l)
[ "$flags" -eq 0 ] || fail "tshark sees $flags retransmissions/duplicate ACKs/lost segments"

echo "== holes in the first copy (10%): filled from the late copy, trimmed where it overlaps"
"$BUILD/ecv-flowgen" --dir "$T/h" --flows 200 --loss 10 --loss-in-a --seed 8 || fail "flowgen"
"$BUILD/tvn" --read "$T/h/a.pcap" --read "$T/h/b.pcap" --out "pcap:$T/hout.pcap" 2>"$T/hlog" ||
	{ cat "$T/hlog"; fail "tvn exited"; }
cat "$T/hlog"
python3 "$CHECK" "$T/hout.pcap" "$T/h" || fail "holes in copy A were not filled exactly"
grep -q 'trimmed [1-9]' "$T/hlog" || fail "no segment was trimmed: the late copy's overlap was not cut"

echo "== VxLAN captures with agent metadata, 2 worker threads"
"$BUILD/ecv-flowgen" --dir "$T/v" --flows 200 --loss 3 --vxlan --meta --seed 9 || fail "flowgen"
"$BUILD/tvn" --threads 2 --read "$T/v/a.pcap" --read "$T/v/b.pcap" --out "pcap:$T/vout.pcap" \
	2>"$T/vlog" || { cat "$T/vlog"; fail "tvn exited"; }
cat "$T/vlog"
python3 "$CHECK" "$T/vout.pcap" "$T/v" || fail "VxLAN output is not exact"
meta=$(tshark -n -r "$T/vout.pcap" -Y 'eth.type == 0x88b5' 2>/dev/null | wc -l)
[ "$meta" -eq 0 ] || fail "$meta metadata frames leaked to the tools"

echo "== control: editcap -d cannot see the second copies"
mergecap -w "$T/merged.pcap" "$T/g/a.pcap" "$T/g/b.pcap"
editcap -d "$T/merged.pcap" "$T/ed.pcap" >/dev/null 2>&1
n_merged=$(npackets "$T/merged.pcap") n_ed=$(npackets "$T/ed.pcap") n_tvn=$(npackets "$T/out.pcap")
echo "merged $n_merged packets, editcap -d keeps $n_ed, tvn keeps $n_tvn"
if python3 "$CHECK" "$T/ed.pcap" "$T/g" >/dev/null; then fail "editcap output unexpectedly exact"; fi
[ "$n_ed" -gt $((n_tvn * 3 / 2)) ] || fail "editcap removed the second copies?"

echo "== capture formats: pcapng (libpcap), microsecond pcap and a cut pcap (read in place)"
# The same VxLAN copies as pcapng and as microsecond pcap: the same exact output.
editcap -F pcapng "$T/v/a.pcap" "$T/v/a.pcapng" && editcap -F pcap "$T/v/b.pcap" "$T/v/b-us.pcap" ||
	fail "editcap conversion"
"$BUILD/tvn" --threads 2 --read "$T/v/a.pcapng" --read "$T/v/b-us.pcap" --out "pcap:$T/fout.pcap" 	2>"$T/flog" || { cat "$T/flog"; fail "tvn exited"; }
python3 "$CHECK" "$T/fout.pcap" "$T/v" || fail "pcapng + microsecond pcap output is not exact"
# A capture cut in the middle of a record: what comes before is read, the cut is reported.
size=$(stat -c %s "$T/g/a.pcap")
head -c $((size / 2 + 7)) "$T/g/a.pcap" >"$T/cut.pcap"
"$BUILD/tvn" --read "$T/cut.pcap" --out "pcap:$T/cout.pcap" 2>"$T/clog" || { cat "$T/clog"; fail "tvn exited on a cut file"; }
grep -q 'failed to read .*cut.pcap: truncated record' "$T/clog" || { cat "$T/clog"; fail "cut not reported"; }
n_cut=$(npackets "$T/cut.pcap") # capinfos counts the whole records only
grep -q "packets in $n_cut," "$T/clog" || { cat "$T/clog"; fail "tvn did not read the $n_cut whole records"; }
echo PASS
