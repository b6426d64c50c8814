#!/usr/bin/env bash
# --out vxlan: the outer UDP source port comes from the inner flow hash (RFC 7348 §5):
# a UDP receiver standing in for the tool records the source port of every datagram and
# decodes the inner frame; each connection (both directions) arrives from exactly one
# source port, and the 60 connections are spread over several ports (ECMP/RSS on the way
# to the tool can balance them). The decoded frames are the ones of tvn's pcap output.
source "$(dirname "$0")/tvn_common.bash"
need python3 capinfos
need_build tvn ecv-flowgen

P=$(free_port 4840) || skip "no free UDP port"
"$BUILD/ecv-flowgen" --dir "$T/g" --flows 60 --max-size 3000 --ipv6 20 --seed 31 --quiet || fail "flowgen"
python3 - "$P" "$T/ports.txt" "$T/ready" <<'EOP' &
import socket, struct, sys
port, out, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE (root)
except OSError:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
s.bind(("127.0.0.1", port))
s.settimeout(20)
open(ready, "w").close()
with open(out, "w") as f:
    while True:
        try:
            data, (_, sport) = s.recvfrom(70000)
        except socket.timeout:
            break
        if data == b"END":
            break
        frame = data[8:]  # VxLAN header
        et = struct.unpack("!H", frame[12:14])[0]
        if et == 0x0800:
            ihl = (frame[14] & 15) * 4
            src, dst = socket.inet_ntop(socket.AF_INET, frame[26:30]), socket.inet_ntop(socket.AF_INET, frame[30:34])
            l4 = 14 + ihl
        elif et == 0x86DD:
            src, dst = socket.inet_ntop(socket.AF_INET6, frame[22:38]), socket.inet_ntop(socket.AF_INET6, frame[38:54])
            l4 = 54
        else:
            continue
        sp, dp = struct.unpack("!HH", frame[l4:l4 + 4])
        a, b = sorted([(src, sp), (dst, dp)])  # one key for both directions
        f.write("%s %s %s %s %d\n" % (a[0], a[1], b[0], b[1], sport))
EOP
RX=$!
tvn_on_exit "kill $RX 2>/dev/null"
wait_for 10 test -e "$T/ready" || fail "receiver did not start"
"$BUILD/tvn" --read "$T/g/a.pcap" --read "$T/g/b.pcap" --out "pcap:$T/ref.pcap" \
	--out "vxlan:127.0.0.1:$P" 2>"$T/tvn.log" || { cat "$T/tvn.log"; fail "tvn failed"; }
python3 -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"END", ("127.0.0.1", int(sys.argv[1])))' "$P"
wait $RX || fail "receiver failed"
want=$(npackets "$T/ref.pcap")
got=$(wc -l <"$T/ports.txt")
echo "tvn sent $want frames, the receiver decoded $got"
[ "$got" -eq "$want" ] || fail "received $got of $want frames"
python3 - "$T/ports.txt" <<'EOP' || fail "source ports do not follow the flows"
import collections, sys
ports = collections.defaultdict(set)
for line in open(sys.argv[1]):
    *key, sport = line.split()
    ports[tuple(key)].add(int(sport))
multi = [k for k, v in ports.items() if len(v) != 1]
distinct = set(p for v in ports.values() for p in v)
print("%d connections, %d distinct source ports, %d connections with more than one" % (
    len(ports), len(distinct), len(multi)))
sys.exit(0 if len(ports) == 60 and not multi and len(distinct) >= 4 else 1)
EOP
echo PASS
