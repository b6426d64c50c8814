#!/usr/bin/env bash
# tvn --rx ring (AF_PACKET TPACKET_V3 ring) as a user runs it on loopback:
#  - bad --rx / --rx-iface use: usage errors (exit 2) or a clear error naming the missing
#    interface or capability (CAP_NET_RAW, checked in a process whose bounding set lacks it);
#  - live end to end: both node copies of 100 flows from 127.0.0.2 and 127.0.0.3, 30 garbage
#    datagrams of six kinds mixed in, sent one datagram per send and as UDP GSO runs (each
#    run is one ring frame that tvn splits by its segment size), with 1 and 3 workers: the
#    output is exact, the malformed counters moved by reason, frames were counted as such,
#    the process stays alive and exits 0 on SIGTERM;
#  - outer IP/UDP headers that only the ring sees (the kernel drops them before any UDP
#    socket): a bad UDP checksum, a UDP length beyond the IP payload, an IP fragment, an
#    IP total length beyond the frame are each counted as reason "outer", exactly, while a
#    flow delivered at the same time stays exact;
#  - the port stays bound while the ring receives: a connected UDP sender gets no
#    ECONNREFUSED (ICMP port unreachable), as it does from a port nobody binds.
source "$(dirname "$0")/tvn_common.bash"
need tshark capinfos python3 curl ss
need_build tvn ecv-flowgen ecv-replay

# A free UDP port for tvn and a TCP port for its HTTP server, distinct.
ports() {
	P=$(free_port 5200) || skip "no free UDP port"
	H=$(free_port 5260) || skip "no free TCP port"
	[ "$P" != "$H" ] || skip "no two free ports"
}

# bad RC PATTERN CMD...: CMD (bounded: a tvn that accepted its flags would run) exits RC
# (nz: any failure but a timeout) with a line matching PATTERN on stderr.
bad() {
	local want=$1 pat=$2 rc
	shift 2
	timeout 10 "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$want" = nz ]; then
		[ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$T/err"; fail "$* exited $rc, expected an error"; }
	else
		[ $rc -eq "$want" ] || { cat "$T/err"; fail "$* exited $rc, expected $want"; }
	fi
	grep -q -- "$pat" "$T/err" || { cat "$T/err"; fail "$* printed no '$pat'"; }
}

echo "== usage and start-up errors"
ports
bad 2 "--rx" "$BUILD/tvn" --rx bogus --listen "127.0.0.1:$P"
grep -q '^Usage: tvn' "$T/err" || fail "--rx bogus printed no usage"
bad 2 "--rx-iface" "$BUILD/tvn" --rx ring --listen "0.0.0.0:$P"
bad nz "nosuchif0" "$BUILD/tvn" --rx ring --rx-iface nosuchif0 --listen "127.0.0.1:$P"
"$BUILD/tvn" --help >"$T/help" || fail "--help exited non-zero"
for f in rx rx-iface; do grep -q -- "--$f\b" "$T/help" || fail "--help does not document --$f"; done
# Out of the bounding set, CAP_NET_RAW (bit 13) is gone from the exec'd tvn even as root.
eff=$(capsh --drop=cap_net_raw -- -c "awk '/^CapEff:/ { print \$2 }' /proc/self/status" 2>/dev/null)
if [ -n "$eff" ] && [ $(((16#$eff >> 13) & 1)) = 0 ]; then
	bad 1 "CAP_NET_RAW" capsh --drop=cap_net_raw -- -c \
		"exec '$BUILD/tvn' --rx ring --rx-iface lo --listen 127.0.0.1:$P"
else
	echo "capsh cannot drop cap_net_raw here: the missing-capability case is not run"
fi

"$BUILD/ecv-flowgen" --dir "$T/g" --flows 100 --loss 5 --vxlan --meta --ipv6 20 --seed 3 ||
	fail "flowgen"
na=$(npackets "$T/g/a.pcap") nb=$(npackets "$T/g/b.pcap")

# live THREADS SEND [REPLAY-ARGS...]: one live round through the ring (see the top).
live() {
	local threads=$1 send=$2 t0 t1 first last
	shift 2
	echo "== live: --threads $threads, $send sends"
	ports
	rm -f "$T/live.pcap"
	t0=$(date +%s)
	tvn_start "$T/tvn.log" --rx ring --rx-iface lo --http "127.0.0.1:$H" \
		--out "pcap:$T/live.pcap" --threads "$threads" --stats-interval 100ms
	"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from 127.0.0.2 --garbage 30 "$@" "$T/g/a.pcap" &
	RA=$!
	"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from 127.0.0.3 "$@" "$T/g/b.pcap" &
	RB=$!
	wait $RA || fail "replay A failed"
	wait $RB || fail "replay B failed"
	want=$((na + nb + 30))
	got() { [ "$(metric "$H" tvn_rx_packets_total)" -ge "$want" ]; }
	wait_for 20 got || fail "tvn received $(metric "$H" tvn_rx_packets_total) of $want datagrams" \
		"(ring drops: $(metric "$H" tvn_rx_dropped_buffers_total))"
	kill -0 "$TVN" 2>/dev/null || fail "tvn died"
	pk=$(metric "$H" tvn_rx_packets_total)
	bu=$(metric "$H" tvn_rx_buffers_total)
	by=$(metric "$H" tvn_rx_bytes_total)
	echo "datagrams $pk in $bu ring frames, $by bytes"
	[ "$pk" -eq "$want" ] || fail "tvn counted $pk datagrams, $want were sent"
	[ "$(metric "$H" tvn_rx_dropped_buffers_total)" -eq 0 ] || fail "the ring dropped frames"
	[ "$by" -gt "$pk" ] || fail "tvn_rx_bytes_total is $by"
	if [ "$send" = gso ]; then
		# GSO runs arrive whole: fewer frames than datagrams.
		[ "$bu" -lt "$pk" ] || fail "GSO sends: $bu ring frames for $pk datagrams"
	else
		[ "$bu" -eq "$pk" ] || fail "plain sends: $bu ring frames for $pk datagrams"
	fi
	garbage_counted "$H" 30
	[ "$(metric "$H" 'tvn_dedup_dropped_total{mode="bytes"}')" -gt 0 ] || fail "no duplicates counted"
	kill -TERM "$TVN"
	wait "$TVN"
	rc=$?
	t1=$(date +%s)
	cat "$T/tvn.log"
	[ $rc -eq 0 ] || fail "tvn exited $rc after SIGTERM"
	python3 "$CHECK" "$T/live.pcap" "$T/g" || fail "live output ($send, --threads $threads) is not exact"
	# Frames carry the ring's receive time (the capture's own times are from 2023).
	read -r first last < <(capinfos -a -e -S -T -r "$T/live.pcap" | awk -F'\t' '{ print int($2), int($3) }')
	[ "$first" -ge $((t0 - 1)) ] && [ "$last" -le $((t1 + 1)) ] ||
		fail "output timestamps $first..$last are outside the run ($t0..$t1)"
}
live 1 plain --rate 20000
live 3 plain --rate 20000
# At 64000 datagrams/s and above ecv-replay groups its sends into GSO runs.
live 1 gso --gso --rate 100000
live 3 gso --gso --rate 100000

# A stalled tvn: the ring must hold what arrives meanwhile, as the socket buffer does.
# At low rates the kernel hands over a block per block timeout however little is in it,
# so the ring's capacity is blocks x timeout, not bytes (1 ms blocks lost 2762 of these
# 3783 datagrams).
echo "== a tvn stopped for a second loses nothing"
ports
tvn_start "$T/tvn-stall.log" --rx ring --rx-iface lo --http "127.0.0.1:$H" --out pcap:/dev/null
kill -STOP "$TVN"
"$BUILD/ecv-replay" -q --to "127.0.0.1:$P" --from 127.0.0.2 --rate 4000 "$T/g/a.pcap" ||
	{ kill -CONT "$TVN"; fail "replay failed"; }
kill -CONT "$TVN"
got() { [ "$(metric "$H" tvn_rx_packets_total)" -ge "$na" ]; }
wait_for 20 got || fail "after a stall tvn received $(metric "$H" tvn_rx_packets_total) of $na" \
	"datagrams (ring drops: $(metric "$H" tvn_rx_dropped_buffers_total))"
[ "$(metric "$H" tvn_rx_dropped_buffers_total)" -eq 0 ] || fail "the ring dropped frames during the stall"
kill -TERM "$TVN"
wait "$TVN" || fail "tvn exited $? after SIGTERM"

# outer PORT KIND N: N IPv4/UDP packets to 127.0.0.1:PORT from 127.0.0.4, each with one
# defect of KIND in its outer headers (everything else valid, checksums included), and a
# VxLAN payload whose inner frame is cut short (were the outer defect missed, it would
# show up as reason eth_short). Raw IP sockets (the kernel fills in the IP total length),
# AF_PACKET on lo for a lying IP total length.
outer() {
	python3 - "$@" <<'PY'
import socket, struct, sys

def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

SRC, DST = socket.inet_aton('127.0.0.4'), socket.inet_aton('127.0.0.1')
port, kind, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
payload = bytes.fromhex('0800000000000100') + bytes(10)

def packet(ident):
    ulen = 8 + len(payload) + (100 if kind == 'udp_len' else 0)
    u = struct.pack('!HHHH', 40000, port, ulen, 0) + payload
    c = csum(SRC + DST + struct.pack('!BBH', 0, 17, ulen) + u) or 0xffff
    if kind == 'udp_csum':
        c ^= 0x5555
    u = u[:6] + struct.pack('!H', c) + u[8:]
    frag = 0x2000 if kind == 'frag' else 0x4000  # MF, offset 0 / DF
    tot = 20 + len(u) + (100 if kind == 'ip_len' else 0)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, tot, ident, frag, 64, 17, 0, SRC, DST)
    return ip[:10] + struct.pack('!H', csum(ip)) + ip[12:] + u

if kind == 'ip_len':
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(('lo', 0))
    for i in range(n):
        s.send(bytes(12) + b'\x08\x00' + packet(4000 + i))
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for i in range(n):
        s.sendto(packet(4000 + i), ('127.0.0.1', 0))
PY
}

# probe PORT: sends twice from a connected UDP socket; prints "refused" if either send
# (or the socket's pending error) reports ECONNREFUSED, "ok" otherwise.
probe() {
	python3 - "$1" <<'PY'
import errno, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(('127.0.0.1', int(sys.argv[1])))
res = 'ok'
try:
    for _ in range(2):
        s.send(b'abc')  # shorter than a VxLAN header
        time.sleep(0.1)
    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED:
        res = 'refused'
except ConnectionRefusedError:
    res = 'refused'
print(res)
PY
}

echo "== outer headers only the ring sees (default --rx-iface: the one holding 127.0.0.1)"
ports
rm -f "$T/outer.pcap"
tvn_start "$T/tvn2.log" --rx ring --http "127.0.0.1:$H" --out "pcap:$T/outer.pcap" --threads 2
"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from 127.0.0.2 --rate 20000 "$T/g/a.pcap" &
RA=$!
"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from 127.0.0.3 --rate 20000 "$T/g/b.pcap" &
RB=$!
n=0
for kind in udp_csum udp_len frag ip_len; do
	outer "$P" "$kind" 5 || fail "cannot send raw packets ($kind)"
	n=$((n + 5))
	seen() { [ "$(metric "$H" 'tvn_malformed_total{reason="outer"}')" -ge "$n" ]; }
	wait_for 10 seen || fail "outer $kind: tvn_malformed_total{reason=\"outer\"} is" \
		"$(metric "$H" 'tvn_malformed_total{reason="outer"}'), expected $n"
done
wait $RA || fail "replay A failed"
wait $RB || fail "replay B failed"
got2() { [ "$(metric "$H" tvn_rx_packets_total)" -ge $((na + nb)) ]; }
wait_for 20 got2 || fail "tvn received $(metric "$H" tvn_rx_packets_total) of $((na + nb)) datagrams"
o=$(metric "$H" 'tvn_malformed_total{reason="outer"}')
mal=$(metric_sum "$H" tvn_malformed_total)
echo "outer: $o of $n sent; malformed in all: $mal"
[ "$o" -eq "$n" ] || fail "tvn_malformed_total{reason=\"outer\"} is $o, $n were sent"
[ "$mal" -eq "$n" ] || fail "malformed counters moved by $mal, only $n outer defects were sent"

echo "== the port stays bound: no ICMP port unreachable"
free=$(free_port 5240) || skip "no free UDP port"
[ "$free" != "$P" ] && [ "$free" != "$H" ] || skip "no free port for the control probe"
# (Retried: the kernel's global ICMP rate limit may be spent by other tests' traffic.)
refused=0
for i in 1 2 3; do [ "$(probe "$free")" = refused ] && { refused=$i; break; }; done
[ "$refused" != 0 ] || fail "the probe cannot see ECONNREFUSED from an unbound port"
[ "$(probe "$P")" = ok ] || fail "a sender to tvn's port got ECONNREFUSED"
ss -Hlnu "sport = :$P" | grep -q . || fail "port $P is not bound"
# The ring still saw the probe's datagrams (the kernel's socket drops them all).
short() { [ "$(metric "$H" 'tvn_malformed_total{reason="short"}')" -ge 2 ]; }
wait_for 10 short || fail "the probe's 2 datagrams were not counted as short"
[ "$(metric "$H" 'tvn_malformed_total{reason="short"}')" -eq 2 ] || fail "more than 2 short datagrams"

kill -0 "$TVN" 2>/dev/null || fail "tvn died"
kill -TERM "$TVN"
wait "$TVN"
rc=$?
cat "$T/tvn2.log"
[ $rc -eq 0 ] || fail "tvn exited $rc after SIGTERM"
python3 "$CHECK" "$T/outer.pcap" "$T/g" || fail "the flow delivered beside the outer garbage is not exact"
echo "== the ring's interface goes down, comes back, goes away"
# On a veth between two namespaces (the sender's datagrams must cross the interface, not
# lo). Down: tvn keeps running without spinning on the socket error and captures again
# once it is up; deleted: nothing can arrive any more, so tvn exits non-zero saying so,
# after flushing what it received into its output.
if [ "$(id -u)" -eq 0 ]; then
	S=ecvu-rgs R=ecvu-rgr
	harness_ns $S
	harness_ns $R
	harness_veth $S ecvu-rg0 10.247.0.2/24 $R ecvu-rg1 10.247.0.1/24
	ip netns exec $R "$BUILD/tvn" --rx ring --listen 10.247.0.1:4789 --http 127.0.0.1:5290 \
		--out "pcap:$T/if.pcap" 2>"$T/tvn-if.log" &
	RT=$!
	tvn_on_exit "kill $RT 2>/dev/null; wait $RT 2>/dev/null"
	rmetric() { ip netns exec $R curl -sf http://127.0.0.1:5290/metrics | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'; }
	wait_for 10 ip netns exec $R curl -sf http://127.0.0.1:5290/healthz -o /dev/null ||
		{ cat "$T/tvn-if.log"; fail "tvn in $R did not come up"; }
	grep -q "capturing on ecvu-rg1" "$T/tvn-if.log" || { cat "$T/tvn-if.log"; fail "not capturing on ecvu-rg1"; }
	ip netns exec $S "$BUILD/ecv-replay" -q --to 10.247.0.1:4789 --from 10.247.0.2 --rate 20000 \
		"$T/g/a.pcap" || fail "replay A"
	rx() { [ "$(rmetric tvn_rx_packets_total)" -ge "$1" ]; }
	wait_for 10 rx "$na" || fail "tvn received $(rmetric tvn_rx_packets_total) of $na datagrams"
	ip -n $R link set ecvu-rg1 down
	wait_for 5 grep -q "ecvu-rg1 is down .*resumes when it is up" "$T/tvn-if.log" ||
		{ cat "$T/tvn-if.log"; fail "no warning for the interface going down"; }
	# A thread spinning on the error would take most of a CPU: 2 s at 100 ticks/s.
	c0=$(awk '{ print $14 + $15 }' /proc/$RT/stat)
	sleep 2
	c1=$(awk '{ print $14 + $15 }' /proc/$RT/stat)
	echo "CPU ticks with the interface down, 2 s: $((c1 - c0))"
	[ $((c1 - c0)) -le 20 ] || fail "tvn used $((c1 - c0)) ticks in 2 s with its interface down"
	kill -0 $RT 2>/dev/null || fail "tvn exited when its interface went down"
	ip -n $R link set ecvu-rg1 up
	linkup() { ip -n $R link show ecvu-rg1 | grep -q 'state UP'; }
	wait_for 10 linkup || fail "the veth did not come back up"
	wait_for 5 grep -q "ecvu-rg1 is up again" "$T/tvn-if.log" ||
		{ cat "$T/tvn-if.log"; fail "no message for the interface coming back"; }
	ip netns exec $S "$BUILD/ecv-replay" -q --to 10.247.0.1:4789 --from 10.247.0.2 --rate 20000 \
		"$T/g/b.pcap" || fail "replay B"
	wait_for 10 rx $((na + nb)) || fail "after the interface came back tvn received" \
		"$(rmetric tvn_rx_packets_total) of $((na + nb)) datagrams"
	ip -n $R link del ecvu-rg1
	wait_for 10 exited $RT || fail "tvn kept running after its interface was deleted"
	wait $RT
	rc=$?
	[ $rc -ne 0 ] || fail "tvn exited 0 after its interface was deleted"
	grep -q "interface ecvu-rg1 is gone" "$T/tvn-if.log" || { cat "$T/tvn-if.log"; fail "no message naming the deleted interface"; }
	echo "tvn exited $rc: $(grep -o 'interface ecvu-rg1 is gone' "$T/tvn-if.log")"
	# What came before is still delivered: flows flushed, the output closed with every
	# frame tvn counts as delivered. (Not compared with the flows: the copies came more
	# than --skew apart, so by design they are not merged.)
	out=$(sed -n 's/.*output pcap:.*: \([0-9]*\) frames, 0 dropped/\1/p' "$T/tvn-if.log")
	[ -n "$out" ] && [ "$out" -gt 0 ] || { cat "$T/tvn-if.log"; fail "no output summary after the exit"; }
	[ "$(npackets "$T/if.pcap")" -eq "$out" ] || fail "the pcap holds $(npackets "$T/if.pcap") frames, tvn delivered $out"
else
	echo "skipped: needs root for network namespaces"
fi
echo PASS
