#!/usr/bin/env bash
# Output options: filter= (libpcap) + snaplen= + origin=vlan on one pcap output, size=
# and time= rotation (tcpdump -C/-G style) losing and duplicating nothing, and iface:
# injecting into a veth whose peer sees every frame it was given (root only).
source "$(dirname "$0")/tvn_common.bash"
need tshark capinfos mergecap python3
need_build tvn ecv-flowgen

"$BUILD/ecv-flowgen" --dir "$T/g" --flows 300 --max-size 8000 --skew 700ms --seed 21 || fail "flowgen"
iface_out=()
if [ "$(id -u)" -eq 0 ] && ip link add ecvu-i0 type veth peer name ecvu-i1 2>/dev/null; then
	tvn_on_exit "ip link del ecvu-i0"
	ip link set ecvu-i0 up && ip link set ecvu-i1 up
	sysctl -qw net.ipv6.conf.ecvu-i0.disable_ipv6=1 net.ipv6.conf.ecvu-i1.disable_ipv6=1
	dumpcap -q -B 64 -i ecvu-i1 -f tcp -w "$T/iface.pcap" 2>"$T/dumpcap.log" &
	CAP=$!
	tvn_on_exit "kill $CAP 2>/dev/null; wait $CAP 2>/dev/null"
	wait_for 10 grep -q 'Capturing on' "$T/dumpcap.log" || fail "dumpcap did not start"
	# Handshakes and FINs only: a few hundred frames, so a busy machine's capture
	# buffer on the peer does not drop any.
	iface_out=(--out "iface:ecvu-i0,filter=tcp[tcpflags] & (tcp-syn|tcp-fin) != 0")
else
	echo "iface: part skipped (needs root and veth)"
fi
"$BUILD/tvn" --read "$T/g/a.pcap" --read "$T/g/b.pcap" --out "pcap:$T/all.pcap" \
	--out "pcap:$T/syn.pcap,snaplen=60,origin=vlan,filter=tcp[tcpflags] & tcp-syn != 0" \
	--out "pcap:$T/rot.pcap,size=200k" --out "pcap:$T/t-%H%M%S.pcap,time=1s" \
	"${iface_out[@]}" 2>"$T/log" || { cat "$T/log"; fail "tvn failed"; }
cat "$T/log"
all=$(npackets "$T/all.pcap")

echo "== filter + snaplen + origin=vlan"
n=$(tshark -r "$T/syn.pcap" 2>/dev/null | wc -l)
[ "$n" -eq 600 ] || fail "SYN filter output has $n frames, expected 600 (SYN + SYN/ACK of 300 flows)"
bad=$(tshark -r "$T/syn.pcap" -Y '!(vlan.id == 1 || vlan.id == 2) || tcp.flags.syn == 0 || frame.cap_len > 60' 2>/dev/null | wc -l)
[ "$bad" -eq 0 ] || fail "$bad frames without the origin tag, without SYN or longer than snaplen"
v1=$(tshark -r "$T/syn.pcap" -Y 'vlan.id == 1' 2>/dev/null | wc -l)
echo "origin vlan 1 (copy A): $v1 frames, vlan 2 (copy B): $((n - v1))"

echo "== size rotation"
files=("$T"/rot.pcap*)
[ ${#files[@]} -ge 3 ] || fail "size=200k made ${#files[@]} files"
for f in "${files[@]}"; do
	sz=$(stat -c %s "$f")
	[ "$sz" -le $((200 * 1024)) ] || fail "$f is $sz bytes, over the 200k limit"
done
mergecap -a -w "$T/rot-joined.pcap" $(ls "$T"/rot.pcap* | sort -V)
python3 "$CHECK" "$T/rot-joined.pcap" "$T/g" || fail "rotated files do not add up to the stream"

echo "== time rotation"
tfiles=("$T"/t-*.pcap)
[ ${#tfiles[@]} -ge 2 ] || fail "time=1s made ${#tfiles[@]} files over a multi-second capture"
total=0
for f in "${tfiles[@]}"; do total=$((total + $(npackets "$f"))); done
[ "$total" -eq "$all" ] || fail "time-rotated files hold $total frames, expected $all"

if [ ${#iface_out[@]} -gt 0 ]; then
	echo "== iface:"
	want=$(tshark -r "$T/all.pcap" -Y 'tcp.flags.syn == 1 || tcp.flags.fin == 1' 2>/dev/null | wc -l)
	have() { [ "$(npackets "$T/iface.pcap")" -ge "$want" ]; }
	wait_for 10 have
	kill -INT $CAP; wait $CAP
	got=$(npackets "$T/iface.pcap")
	[ "$got" -eq "$want" ] || fail "veth peer saw $got frames, expected $want"
	f="-T fields -e eth.src -e ip.src -e tcp.srcport -e tcp.seq_raw -e tcp.flags"
	a=$(tshark -n -r "$T/all.pcap" -Y 'tcp.flags.syn == 1 || tcp.flags.fin == 1' $f 2>/dev/null | sha256sum)
	b=$(tshark -n -r "$T/iface.pcap" $f 2>/dev/null | sha256sum)
	[ "$a" = "$b" ] || fail "frames injected into ecvu-i0 differ from the pcap output"
fi
echo PASS
