#!/usr/bin/env bash
# tests/e2e/test_fault_tvn_restart.sh - the tvn restarted while the agents keep sending
# (DESIGN §7: "restarting the TVN loses only the packets that arrived while it was
# down").
#
# Two nodes, both agents, a tvn on the collector; the collector's bridge is recorded
# (dumpcap) as the ground truth of what the agents sent. nginx sends a 16 MB file at
# 2 MB/s (limit_rate); after b's agent has captured 3 MB the tvn is stopped (SIGINT),
# stays down for 2 s, and a new tvn starts on the same address, writing a second pcap.
# Asserts:
#   - the agents neither block nor crash while it is away: both stay alive, keep
#     capturing, count the refused sends (ecv_agent_tx_errors_total moves), exit 0;
#   - only datagrams that arrived while no tvn listened are missing: every datagram on
#     the bridge outside the down window reached one of the two tvns;
#   - the flow resumes in the second tvn: the end of the download and the FIN are there;
#   - each pcap alone holds no byte twice; both together hold every byte at its
#     position (nothing shifted), a hole only where the tvn was down, and the tail of
#     the file present.
set -u
. "$(dirname "$0")/lib_extra.sh"

SIZE=$((16 * 1024 * 1024))
RATE=$((2 * 1024 * 1024))
ECVX_NET=10.78.3 ecvx_fault_setup ecvx-ft tvnrestart $SIZE
command -v mergecap >/dev/null || skip "mergecap not installed"
ecvx_fault_start

note "download 16 MB at 2 MB/s; stop the tvn after 3 MB, restart it 2 s later"
ecvx_download slow/big.bin 3
ERR0=$(($(ecvx_agent_sum a ecv_agent_tx_errors_total) + $(ecvx_agent_sum b ecv_agent_tx_errors_total)))
N1_LAST=$(e2e_tvn_metric tvn_rx_packets_total)
T_DOWN=$(date +%s.%N)
stop_pid "${E2E_TVNS_PID[tvn]}" || fail "the tvn did not exit 0 on SIGINT"
sleep 2
e2e_tvn_start tvn2 "$E2E_TVN_PORT" 4685
T_UP=$(date +%s.%N)
note "tvn down from $T_DOWN to $T_UP"
for n in a b; do kill -0 "${E2E_AGENT_PID[$n]}" || fail "agent $n died while the tvn was down"; done
ERR1=$(($(ecvx_agent_sum a ecv_agent_tx_errors_total) + $(ecvx_agent_sum b ecv_agent_tx_errors_total)))
note "agents' send errors while the tvn was down: $((ERR1 - ERR0))"
[ "$ERR1" -gt "$ERR0" ] ||
	ecvx_later "ecv_agent_tx_errors_total did not move while the tvn was down (the refused sends went uncounted)"

kill -0 "$CURL" 2>/dev/null || fail "the download ended while the tvn was down: make it slower"
ecvx_download_done
wait_for 15 ecvx_bytes_at_least a read $SIZE || fail "agent a did not capture the download"
wait_for 15 ecvx_bytes_at_least b write $SIZE || fail "agent b did not capture the download"
e2e_stop_agent a
e2e_stop_agent b
ecvx_tvn_settle tvn2 || fail "tvn2 kept receiving after both agents stopped"
N2=$(e2e_tvn_metric tvn_rx_packets_total tvn2)
ecvx_rawcap_stop
e2e_stop_tvn tvn2
N1=$(sed -n 's/.*summary: packets in \([0-9]*\),.*/\1/p' "$E2E_TMP/tvn.log" | tail -1)
[ -n "$N1" ] || N1=$N1_LAST

# Ground truth: datagrams on the bridge, and those inside the down window. The agent
# sends runs of equal-sized datagrams as one UDP GSO packet, split only at the receiving
# socket, so one captured packet may hold several: its UDP payload divided by the size of
# the first datagram (VxLAN 8 + Ethernet 14 + the inner IP length), rounded up.
read -r NRAW NWIN < <(tshark -r "$ECVX_RAW" -T fields -E separator=' ' -E aggregator=' ' \
	-e frame.time_epoch -e udp.length -e ip.len 2>/dev/null |
	awk -v a="$T_DOWN" -v b="$T_UP" '{ k = 1 }
		NF >= 4 { p = $2 - 8; s = 22 + $4; k = int((p + s - 1) / s) }
		{ n += k } $1 >= a - 0.05 && $1 <= b + 0.05 { w += k } END { print n + 0, w + 0 }')
MISSING=$((NRAW - N1 - N2))
note "datagrams: $NRAW on the bridge, $N1 to the first tvn, $N2 to the second," \
	"$MISSING missing, $NWIN sent in the down window"
[ "$MISSING" -ge 0 ] || fail "the tvns received more datagrams than were sent"
[ "$NWIN" -gt 0 ] || fail "nothing was sent while the tvn was down: the test did not test"
[ "$MISSING" -le "$NWIN" ] ||
	fail "$MISSING datagrams missing, more than the $NWIN sent while the tvn was down"

note "each tvn's pcap alone: no byte twice, nothing shifted"
r=$(ECVX_PCAP=$E2E_TMP/tvn.pcap ecvx_check "$B" 4644 "$A" '*' --body "$BIG" --allow-holes)
rc=$?
note "first tvn:  $r"
[ $rc = 0 ] || fail "the first tvn's output is wrong"
r=$(ECVX_PCAP=$E2E_TMP/tvn2.pcap ecvx_check "$B" 4644 "$A" '*' --allow-holes)
rc=$?
note "second tvn: $r"
[ $rc = 0 ] || fail "the second tvn's output is wrong"
[ "$(ecvx_field "$r" fins)" -ge 1 ] || fail "the second tvn has no FIN: the flow did not resume to its end"

note "both pcaps merged: every byte at its position, a hole only for the down window"
mergecap -w "$E2E_TMP/both.pcap" "$E2E_TMP/tvn.pcap" "$E2E_TMP/tvn2.pcap" || fail "mergecap failed"
r=$(ECVX_PCAP=$E2E_TMP/both.pcap ecvx_check "$B" 4644 "$A" '*' --body "$BIG" --allow-holes --allow-dup)
rc=$?
note "merged:     $r"
[ $rc = 0 ] || fail "the merged output is wrong"
DOWN_S=$(echo "$T_UP - $T_DOWN" | bc 2>/dev/null || python3 -c "print($T_UP - $T_DOWN)")
BOUND=$(python3 -c "print(int(($DOWN_S + 1) * $RATE))")
[ "$(ecvx_field "$r" body_missing)" -le "$BOUND" ] ||
	fail "$(ecvx_field "$r" body_missing) body bytes missing, more than the $BOUND sent while down (+1 s)"
# The flow resumed: the file's last 4 MB (sent after the restart) are all there.
TAIL_FROM=$(($(ecvx_field "$r" body_start) + SIZE - 4 * 1024 * 1024))
[ "$(ecvx_field "$r" last_hole_end)" -le "$TAIL_FROM" ] ||
	fail "a hole in the last 4 MB of the file: the flow did not resume cleanly"
DUP=$(ecvx_field "$r" dup)
[ "$DUP" -le $((256 * 1024)) ] ||
	fail "$DUP bytes in both pcaps: more than the copies in flight across the restart"
ecvx_done test_fault_tvn_restart
