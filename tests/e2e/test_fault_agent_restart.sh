#!/usr/bin/env bash
# tests/e2e/test_fault_agent_restart.sh - the agent restarted in the middle of a
# connection (an upgrade, a DaemonSet rollout: SIGTERM, then a new agent).
#
# Two nodes, both agents, one live tvn (--dedup bytes). curl downloads a 16 MB random
# file over TLS 1.3 at 1 MB/s (nginx limit_rate); after b's agent has captured 3 MB it is stopped with
# SIGTERM and a new agent b is started while the connection goes on. Asserts:
#   - the restarted agent picks the open connection up (it captures the rest of the
#     download, announced as mid-stream) and the old one exited 0;
#   - the live tvn's output holds the whole download exactly once, every byte at its
#     position, and no FIN before the end of the stream (a tool would stop there);
#   - Suricata (default configuration) logs the download once, whole, with no stream
#     event, and tshark's expert analysis is clean (the stopped agent's close, FINs and
#     last ACK, never reaches the output);
#   - node b's datagrams alone (before and after the restart, replayed offline through
#     tvn --read): no byte emitted twice and none shifted: every byte present is the
#     file's byte at that position (the restarted copy, whose offsets are relative, must
#     not be laid over the absolute ones).
set -u
. "$(dirname "$0")/lib_extra.sh"

SIZE=$((16 * 1024 * 1024))
# 1 MB/s leaves the new agent ~13 s of download to attach to, even on a loaded machine
export ECVX_SLOW_RATE=1m
ECVX_NET=10.78.2 ecvx_fault_setup ecvx-fr restart $SIZE
ecvx_fault_start

note "download 16 MB at 1 MB/s (nginx limit_rate); restart agent b (SIGTERM + new agent) after 3 MB"
ecvx_download slow/big.bin 3
stop_pid "${E2E_AGENT_PID[b]}" 15 TERM
rc=$?
[ "$rc" != 124 ] || fail "agent b did not exit on SIGTERM"
[ "$rc" = 0 ] || fail "agent b exited $rc on SIGTERM"
mv "$E2E_TMP/agent-b.log" "$E2E_TMP/agent-b-old.log"
kill -0 "$CURL" 2>/dev/null || fail "the download ended before the restart: make it slower"
e2e_agent b 4683
ecvx_download_done
NEW_B=$(e2e_agent_metric b 'ecv_agent_bytes_total{dir="write"}')
note "the restarted agent b captured $NEW_B bytes of the rest of the download"
[ "$NEW_B" -gt $((1024 * 1024)) ] 2>/dev/null ||
	fail "the restarted agent did not pick the open connection up ($NEW_B bytes)"

ecvx_fault_stop a b

note "live tvn (both copies): the complete download once, at its positions"
r=$(ecvx_check "$B" 4644 "$A" '*' --body "$BIG")
rc=$?
note "$r"
[ $rc = 0 ] || fail "live output wrong"
[ "$(ecvx_field "$r" body_present)" = "$SIZE" ] || fail "body incomplete"

note "node b's copy alone, across its restart: nothing twice, nothing shifted"
ecvx_offline b-only bytes "ip.src#1 == $B"
r=$(ECVX_PCAP=$E2E_TMP/b-only.pcap ecvx_check "$B" 4644 "$A" '*' --body "$BIG" --allow-holes)
rc=$?
note "$r"
[ $rc = 0 ] || fail "b's copy across the restart is delivered wrong (see above)"
note "the live output through Suricata: the download logged once, whole, no stream event"
e2e_suricata --only --sessions 1 --set stream.reassembly.depth=0 \
	--expect "GET /slow/big.bin 200 $SIZE"
echo "test_fault_agent_restart: all passed"
