#!/usr/bin/env bash
# Interop: the Linux kernel's own vxlan device (a VxLAN peer we did not write), in the
# network namespace ecvu-tool, decapsulates what tvn --out vxlan:ADDR,vni=42 sends. A
# capture on vx0 inside the namespace holds the same frames, byte for byte, as tvn's
# pcap output of the same run, in the same order within each flow (flows leave from
# different UDP source ports, so frames of different flows may interleave differently).
source "$(dirname "$0")/tvn_common.bash"
need ip tshark dumpcap capinfos taskset
need_build tvn ecv-flowgen
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
NS=ecvu-tool
ip netns del $NS 2>/dev/null
ip link del ecvu-h0 2>/dev/null
ip netns add $NS || skip "cannot create network namespaces here"
tvn_on_exit "ip netns del $NS; ip link del ecvu-h0 2>/dev/null"
ip link add ecvu-h0 type veth peer name ecvu-t0 || skip "no veth support"
ip link set ecvu-t0 netns $NS
ip addr add 10.247.0.1/24 dev ecvu-h0
ip link set ecvu-h0 up
ip -n $NS link set lo up
ip -n $NS addr add 10.247.0.2/24 dev ecvu-t0
ip -n $NS link set ecvu-t0 up
ip -n $NS link add vx0 type vxlan id 42 dstport 4789 local 10.247.0.2 dev ecvu-t0 ||
	skip "kernel has no vxlan device support"
ip netns exec $NS sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
ip -n $NS link set vx0 up

"$BUILD/ecv-flowgen" --dir "$T/g" --flows 40 --max-size 4000 --seed 5 || fail "flowgen"
ip netns exec $NS dumpcap -q -B 64 -i vx0 -f tcp -w "$T/vx0.pcap" 2>"$T/dumpcap.log" &
CAP=$!
tvn_on_exit "kill $CAP 2>/dev/null; wait $CAP 2>/dev/null"
wait_for 10 grep -q 'Capturing on' "$T/dumpcap.log" || { cat "$T/dumpcap.log"; fail "dumpcap did not start"; }
# A wrong VNI on a second output must not reach vx0 (the kernel drops it): proves the
# VNI is what we asked for. tvn runs on one CPU: a veth queues what a thread sends on
# the backlog of the CPU it runs on, so a sender moved between CPUs by the scheduler
# can have its frames reordered by the kernel before vx0 sees them.
taskset -c 0 "$BUILD/tvn" --read "$T/g/a.pcap" --read "$T/g/b.pcap" --out "pcap:$T/ref.pcap" \
	--out "vxlan:10.247.0.2,vni=42" --out "vxlan:10.247.0.2:4789,vni=43" 2>"$T/tvn.log" ||
	{ cat "$T/tvn.log"; fail "tvn failed"; }
cat "$T/tvn.log"
want=$(npackets "$T/ref.pcap")
[ "$want" -gt 100 ] || fail "reference output has only $want frames"
have() { [ "$(npackets "$T/vx0.pcap")" -ge "$want" ]; }
wait_for 10 have
sleep 0.5 # anything beyond the expected count (the VNI 43 copies) would show up now
kill -INT $CAP; wait $CAP
got=$(npackets "$T/vx0.pcap")
echo "tvn delivered $want frames; the kernel vxlan device decapsulated $got"
[ "$got" -eq "$want" ] || fail "vx0 saw $got frames, expected $want"
fields="-T fields -e eth.src -e eth.dst -e ip.src -e ip.dst -e tcp.srcport -e tcp.dstport -e tcp.seq_raw -e tcp.ack_raw -e tcp.flags -e tcp.payload"
# A stable sort on the addresses and ports keeps each flow's own order.
tshark -n -r "$T/ref.pcap" $fields 2>/dev/null | sort -s -k3,6 >"$T/ref.txt"
tshark -n -r "$T/vx0.pcap" $fields 2>/dev/null | sort -s -k3,6 >"$T/vx0.txt"
if ! cmp -s "$T/ref.txt" "$T/vx0.txt"; then
	# Show where they part (headers only: payloads are long hex) to tell reordering from
	# altered frames.
	diff <(cut -f1-9 "$T/ref.txt") <(cut -f1-9 "$T/vx0.txt") | head -20
	fail "frames decapsulated by the kernel differ from tvn's pcap output"
fi
python3 "$CHECK" "$T/vx0.pcap" "$T/g" || fail "decapsulated stream not exact"
echo PASS
