#!/usr/bin/env bash
# Hardening (issue 6), what an operator relies on when tvn is reachable by others:
#  1. a datagram from a source outside --allow or with a VNI outside --vni is dropped
#     before it is parsed (garbage from such a source counts as "source", never as a
#     parse error) and counted by reason; the allowed copy is delivered exactly;
#  2. --max-flows-per-source: a hostile agent announcing 300 flows into a table of 300
#     holds at most its quota, the counter says so, and the two honest agents' flows are
#     still deduplicated exactly (without the quota they are not: the control run);
#  3. --http PORT binds loopback only; with --http-token-file, /capture and /flows answer
#     401 + WWW-Authenticate without the token or with a wrong one, 200 with it, while
#     /metrics and /healthz stay open;
#  4. tvn runs as nobody (runuser) on UDP 4789 in a network namespace and delivers.
source "$(dirname "$0")/tvn_common.bash"
need tshark capinfos python3 curl ss
need_build tvn ecv-flowgen ecv-replay

"$BUILD/ecv-flowgen" --dir "$T/g" --flows 100 --vxlan --seed 21 --quiet || fail "flowgen"
"$BUILD/ecv-flowgen" --dir "$T/v7" --flows 10 --vxlan --vni 7 --seed 22 --quiet || fail "flowgen"
# The hostile agent's flows are IPv6, the honest ones IPv4: disjoint 5-tuples, and an
# output filter=ip keeps only the honest ones for the exactness check.
"$BUILD/ecv-flowgen" --dir "$T/x" --flows 300 --vxlan --ipv6 100 --seed 23 --quiet || fail "flowgen"

start_tvn() { # LOG ARGS...: starts tvn on a fresh UDP port $P, HTTP $H; sets TVN
	local log=$1
	shift
	P=$(free_port 4810) || skip "no free UDP port"
	H=$(free_port 4860) || skip "no free TCP port"
	tvn_start "$log" --http "$H" "$@"
}
stop_tvn() {
	kill -TERM "$TVN"
	wait "$TVN" || fail "tvn exited $? after SIGTERM"
}
rx_at_least() { [ "$(metric "$H" tvn_rx_packets_total)" -ge "$1" ]; }
replay() { # FROM FILE [ARGS]
	"$BUILD/ecv-replay" --to "127.0.0.1:$P" --from "$1" --rate 50000 --quiet "${@:2}" ||
		fail "replay of $2 from $1"
}

echo "== 1. sources outside --allow and VNIs outside --vni"
start_tvn "$T/t1.log" --allow 127.0.0.2/32 --vni 1 --out "pcap:$T/o1.pcap"
replay 127.0.0.2 "$T/g/a.pcap"
replay 127.0.0.9 "$T/g/b.pcap" --garbage 40 # the other copy, from a source not allowed
replay 127.0.0.2 "$T/v7/a.pcap"		     # allowed source, VNI not allowed
na=$(npackets "$T/g/a.pcap") nb=$(npackets "$T/g/b.pcap") n7=$(npackets "$T/v7/a.pcap")
wait_for 20 rx_at_least $((na + nb + 40 + n7)) || fail "tvn received $(metric "$H" tvn_rx_packets_total)"
src=$(metric "$H" 'tvn_malformed_total{reason="source"}')
vni=$(metric "$H" 'tvn_malformed_total{reason="vni"}')
all=$(metric_sum "$H" tvn_malformed_total)
echo "rejected: source $src (want $((nb + 40))), vni $vni (want $n7), all reasons $all"
[ "$src" -eq $((nb + 40)) ] || fail "datagrams from 127.0.0.9 not all counted as reason=source"
[ "$vni" -eq "$n7" ] || fail "VNI 7 datagrams not all counted as reason=vni"
[ "$all" -eq $((nb + 40 + n7)) ] || fail "the spoofed garbage was parsed (other reasons moved)"
[ "$(metric "$H" 'tvn_dedup_dropped_total{mode="bytes"}')" -eq 0 ] ||
	fail "a rejected copy reached dedup"
stop_tvn
python3 "$CHECK" "$T/o1.pcap" "$T/g" || fail "the allowed copy was not delivered exactly"

echo "== 2. --max-flows-per-source"
nx=$(npackets "$T/x/a.pcap")
cap_run() { # NAME ARGS...: hostile agent first, then the two honest copies
	start_tvn "$T/$1.log" --allow 127.0.0.0/8 --max-flows 300 --skew 1h \
		--out "pcap:$T/$1.pcap,filter=ip" "${@:2}"
	replay 127.0.0.4 "$T/x/a.pcap"
	wait_for 20 rx_at_least "$nx" || fail "hostile traffic not received"
	replay 127.0.0.2 "$T/g/a.pcap"
	replay 127.0.0.3 "$T/g/b.pcap"
	wait_for 20 rx_at_least $((nx + na + nb)) || fail "honest traffic not received"
	limited=$(metric "$H" tvn_flows_source_limited_total)
	full=$(metric "$H" tvn_flows_table_full_total)
	echo "$1: tvn_flows_source_limited_total $limited, tvn_flows_table_full_total $full"
	stop_tvn
}
cap_run quota --max-flows-per-source 120
[ "$limited" -gt 0 ] || fail "the hostile source was not limited"
[ "$full" -eq 0 ] || fail "the table filled up despite the per-source quota"
python3 "$CHECK" "$T/quota.pcap" "$T/g" || fail "honest flows not deduplicated exactly"
cap_run control
[ "$full" -gt 0 ] && [ "$limited" -eq 0 ] || fail "control: the hostile source did not fill the table"
if python3 "$CHECK" "$T/control.pcap" "$T/g" >/dev/null; then
	fail "control: honest flows exact without the quota: this test proves nothing"
fi
echo "control without the quota: honest flows pass un-deduplicated, as expected"

echo "== 3. HTTP on loopback by default, bearer token on /capture and /flows"
printf 'ecvu-s3cret-%s\n' "$$" >"$T/token"
start_tvn "$T/t3.log" --http-token-file "$T/token"
ss -Hltn "sport = :$H" | awk '{ print $4 }' | grep -qx "127.0.0.1:$H" ||
	fail "--http $H is not bound to 127.0.0.1 only: $(ss -Hltn "sport = :$H")"
code() { curl -s -o "$T/body" -D "$T/hdr" -w '%{http_code}' -m 10 "$@"; }
url="http://127.0.0.1:$H"
[ "$(code "$url/capture?seconds=1")" = 401 ] || fail "/capture without a token: not 401"
grep -qi '^WWW-Authenticate: Bearer' "$T/hdr" || fail "401 without WWW-Authenticate: Bearer"
[ "$(code -H "Authorization: Bearer wrong" "$url/capture?seconds=1")" = 401 ] ||
	fail "/capture with a wrong token: not 401"
[ "$(code -H "Authorization: Bearer $(head -1 "$T/token")x" "$url/capture?seconds=1")" = 401 ] ||
	fail "/capture with the token plus one byte: not 401"
[ "$(code -H "Authorization: Bearer $(head -1 "$T/token")" "$url/capture?seconds=1")" = 200 ] ||
	fail "/capture with the token: not 200"
capinfos "$T/body" >/dev/null 2>&1 || fail "/capture with the token did not stream a pcap"
[ "$(code "$url/flows")" = 401 ] || fail "/flows without a token: not 401"
[ "$(code -H "Authorization: Bearer $(head -1 "$T/token")" "$url/flows")" = 200 ] ||
	fail "/flows with the token: not 200"
[ "$(code "$url/metrics")" = 200 ] && [ "$(code "$url/healthz")" = 200 ] ||
	fail "/metrics or /healthz not open"
stop_tvn
: >"$T/empty"
"$BUILD/tvn" --http-token-file "$T/empty" --http 0.0.0.0:1 >"$T/out" 2>&1
[ $? -eq 2 ] && grep -q 'empty file' "$T/out" || fail "empty token file not refused"

echo "== 4. unprivileged on UDP 4789 in a network namespace"
if [ "$(id -u)" != 0 ] || ! command -v runuser >/dev/null || ! command -v ip >/dev/null; then
	echo "skip part 4: needs root, runuser and ip (netns) to switch to nobody"
	echo PASS
	exit 0
fi
NS=ecvu-hard-$$
ip netns add "$NS" || { echo "skip part 4: cannot create a network namespace"; echo PASS; exit 0; }
tvn_on_exit "ip netns del $NS"
ip -n "$NS" link set lo up
chmod 0755 "$T"
mkdir "$T/nb" && chown nobody "$T/nb"
ip netns exec "$NS" runuser -u nobody -- sh -c 'echo $$ >"$0/pid"; exec "$@"' "$T/nb" \
	"$BUILD/tvn" --listen 0.0.0.0:4789 --http 4880 --out "pcap:$T/nb/out.pcap" 2>"$T/t4.log" &
RU=$!
tvn_on_exit "kill \$(cat $T/nb/pid 2>/dev/null) 2>/dev/null; wait $RU 2>/dev/null"
nsmetric() { ip netns exec "$NS" curl -sf http://127.0.0.1:4880/metrics | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'; }
up() { ip netns exec "$NS" curl -sf http://127.0.0.1:4880/healthz -o /dev/null; }
wait_for 10 up || { cat "$T/t4.log"; fail "unprivileged tvn did not come up"; }
pid=$(cat "$T/nb/pid")
uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
capeff=$(awk '/^CapEff:/ { print $2 }' "/proc/$pid/status")
echo "tvn pid $pid: Uid $uids, CapEff $capeff"
[ "$uids" = "65534 65534 65534 65534" ] || fail "tvn is not running as nobody"
[ "$capeff" = 0000000000000000 ] || fail "tvn holds capabilities"
ip netns exec "$NS" "$BUILD/ecv-replay" --to 127.0.0.1:4789 --from 127.0.0.2 --rate 50000 --quiet "$T/g/a.pcap" || fail "replay A"
ip netns exec "$NS" "$BUILD/ecv-replay" --to 127.0.0.1:4789 --from 127.0.0.3 --rate 50000 --quiet "$T/g/b.pcap" || fail "replay B"
got4() { [ "$(nsmetric tvn_rx_packets_total)" -ge $((na + nb)) ]; }
wait_for 20 got4 || fail "unprivileged tvn received $(nsmetric tvn_rx_packets_total)"
kill -TERM "$pid"
wait $RU || fail "unprivileged tvn exited $? after SIGTERM"
[ "$(stat -c %u "$T/nb/out.pcap")" = 65534 ] || fail "pcap not written by nobody"
python3 "$CHECK" "$T/nb/out.pcap" "$T/g" || fail "unprivileged tvn output not exact"
echo PASS
