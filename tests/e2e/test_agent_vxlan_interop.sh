#!/usr/bin/env bash
# tests/e2e/test_agent_vxlan_interop.sh - the agent's tunnel read by a receiver we did
# not write: the Linux kernel's own vxlan device (VNI 1, port 4789) on the collector
# takes the place of the tvn. Two nodes (curl on a, nginx on b), one agent each. The
# kernel must accept every datagram the agents sent (each one appears on the vxlan
# device as its inner frame), tshark must find valid IP and TCP checksums in every
# inner TCP frame, the flow metadata frames (EtherType 0x88B5), and both nodes' copies
# of every byte of the connection.
set -u
E2E_NEED_TVN=0
. "$(dirname "$0")/lib.sh"

e2e_init ecva vxlan-interop
e2e_web_nodes "4543 4544" page.bin=20K

ip -n "$E2E_PREFIX-c" link add vx0 type vxlan id 1 dstport 4789 local "$E2E_TVN_IP" dev br0 ||
	skip "kernel without the vxlan device"
# The device's own IPv6 chatter (neighbour discovery, MLD) is not the agents': off.
e2e_in c sysctl -qw net.ipv6.conf.vx0.disable_ipv6=1
ip -n "$E2E_PREFIX-c" link set vx0 promisc on up
PCAP=$E2E_TMP/vx0.pcap
# (this test's flows are IPv4: any IPv6 frame would be the device's own)
e2e_bg_in c dumpcap dumpcap -q -i vx0 -f "not ip6" -w "$PCAP"
DUMPCAP=$E2E_PID
wait_for 10 test -s "$PCAP" || { cat "$E2E_TMP/dumpcap.log"; fail "dumpcap did not start"; }

# Metrics ports 4587/4588; no tvn: the agents ship to the vxlan device's address.
e2e_agent a 4587
e2e_agent b 4588
e2e_in a curl -sS -k --max-time 10 -o "$E2E_TMP/got.bin" "https://$B:4544/page.bin" ||
	fail "curl failed"
cmp -s "$E2E_TMP/got.bin" "$WWW/page.bin" || fail "curl got wrong bytes"
e2e_stop_agent a
SENT=$E2E_SENT
e2e_stop_agent b
SENT=$((SENT + E2E_SENT))

frames() { tshark -n -r "$PCAP" 2>/dev/null | wc -l; }
has_all() { [ "$(frames)" -ge "$SENT" ]; }
wait_for 15 has_all || fail "vx0 saw $(frames) of the $SENT datagrams the agents sent"
stop_pid "$DUMPCAP" || true
n=$(frames)
[ "$n" = "$SENT" ] || fail "vx0 saw $n frames for $SENT datagrams sent"
note "ok: the kernel's vxlan device decapsulated all $SENT datagrams"

E2E_PCAP=$PCAP
n=$(e2e_tshark_count 'ip.checksum.status == 0 or tcp.checksum.status == 0')
[ "$n" = 0 ] || fail "$n inner frames with a bad checksum"
good=$(e2e_tshark_count 'tcp.checksum.status == 1')
meta=$(e2e_tshark_count 'eth.type == 0x88b5')
[ "$good" -gt 0 ] || fail "no inner TCP frame with a verified checksum"
# start and end records for the connection, from each node
[ "$meta" -ge 4 ] || fail "$meta flow metadata frames (want >= 4)"
note "ok: $good TCP frames with valid checksums, $meta metadata frames"

# Both copies are on vx0 (nothing deduplicates here): reassembled, every byte of each
# direction arrives exactly twice (dup == bytes), none is missing, and the response
# holds the served file.
e2e_streams "$PCAP"
cp=$(e2e_client_ports "$B" 4544)
[ "$(echo "$cp" | wc -l)" = 1 ] || fail "$(echo "$cp" | wc -l) connections on vx0 (want 1)"
for d in "$A $cp $B 4544" "$B 4544 $A $cp"; do
	# shellcheck disable=SC2086
	l=$(e2e_direction $d)
	[ "$(e2e_field "$l" holes)" = 0 ] || fail "holes: $l"
	[ "$(e2e_field "$l" syn)" = 1 ] || fail "no SYN: $l"
	[ "$(e2e_field "$l" dup)" = "$(e2e_field "$l" bytes)" ] ||
		fail "not exactly two copies of every byte: $l"
done
e2e_expect_once "$(e2e_dump "$B" 4544 "$A" "$cp")" "$WWW/page.bin" "response (two copies merged)"
echo "test_agent_vxlan_interop: all passed"
