#!/usr/bin/env bash
# Multicast (overlay port mirroring): two agents send to the group 239.1.1.1 and two tvn
# instances in another namespace both join it on their interface (--listen GROUP:PORT
# --join IFACE); each receives every datagram and delivers the exact deduplicated stream.
source "$(dirname "$0")/tvn_common.bash"
need ip tshark capinfos python3 curl
need_build tvn ecv-flowgen ecv-replay
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
S=ecvu-mcs R=ecvu-mcr
harness_ns $S
harness_ns $R
harness_veth $S ecvu-ms0 10.248.0.1/24 $R ecvu-mr0 10.248.0.2/24
ip -n $S addr add 10.248.0.3/24 dev ecvu-ms0
ip -n $S route add 239.0.0.0/8 dev ecvu-ms0

"$BUILD/ecv-flowgen" --dir "$T/g" --flows 60 --max-size 5000 --vxlan --seed 23 || fail "flowgen"
want=$(( $(npackets "$T/g/a.pcap") + $(npackets "$T/g/b.pcap") ))
pids=()
for i in 1 2; do
	ip netns exec $R "$BUILD/tvn" --listen 239.1.1.1:4789 --join ecvu-mr0 ${TVN_RX:+--rx "$TVN_RX"} --http 127.0.0.1:1807$i \
		--out "pcap:$T/mc$i.pcap" 2>"$T/tvn$i.log" &
	pids+=($!)
	tvn_on_exit "kill ${pids[-1]} 2>/dev/null; wait ${pids[-1]} 2>/dev/null"
done
for i in 1 2; do
	wait_for 10 ip netns exec $R curl -sf "http://127.0.0.1:1807$i/healthz" -o /dev/null ||
		{ cat "$T/tvn$i.log"; fail "tvn $i did not come up"; }
done
grep -q 'joined multicast group' "$T/tvn1.log" || fail "no membership logged"
ip netns exec $S "$BUILD/ecv-replay" --to 239.1.1.1:4789 --from 10.248.0.1 --rate 20000 "$T/g/a.pcap" || fail "replay A"
ip netns exec $S "$BUILD/ecv-replay" --to 239.1.1.1:4789 --from 10.248.0.3 --rate 20000 "$T/g/b.pcap" || fail "replay B"
for i in 1 2; do
	got() { [ "$(ip netns exec $R curl -sf "http://127.0.0.1:1807$i/metrics" |
		awk '$1 == "tvn_rx_packets_total" { print $2 }')" -ge "$want" ]; }
	wait_for 20 got || fail "tvn $i did not receive all $want datagrams"
	kill -TERM "${pids[$((i - 1))]}"
	wait "${pids[$((i - 1))]}" || fail "tvn $i exited non-zero"
	python3 "$CHECK" "$T/mc$i.pcap" "$T/g" || fail "tvn $i output not exact"
done
echo PASS
