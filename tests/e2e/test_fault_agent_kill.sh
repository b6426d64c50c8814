#!/usr/bin/env bash
# tests/e2e/test_fault_agent_kill.sh - one agent killed with SIGKILL in the middle of a
# large transfer (DESIGN §7: "killing one agent mid-transfer loses no bytes in bytes
# mode").
#
# Two nodes (curl on a, nginx on b), both agents, one live tvn (--dedup bytes). curl
# downloads a 16 MB random file over TLS 1.3 at 6 MB/s; once b's agent has captured a
# quarter of it, it is killed with SIGKILL (no FIN, no end record, no flush). Asserts:
#   - bytes mode (live tvn): the download is in the output complete, every byte at its
#     position, none twice, no hole: node a's copy filled in after b's stopped;
#   - flow mode (the same datagrams, recorded on the collector's bridge, replayed through
#     tvn --read --dedup flow): no byte twice, none shifted, and what is missing is at
#     most what b's copy lacked, visible as a sequence hole; the flow log lists both
#     sources and counts the packets of the copy it discarded;
#   - the surviving agent and the tvn are unaffected (agent a exits 0 on SIGINT).
set -u
. "$(dirname "$0")/lib_extra.sh"

SIZE=$((16 * 1024 * 1024))
ECVX_NET=10.78.1 ecvx_fault_setup ecvx-fk kill $SIZE
ecvx_fault_start

note "download 16 MB at 6 MB/s; SIGKILL agent b after it captured 4 MB"
ecvx_download big.bin 4 --limit-rate 6M
kill -KILL "${E2E_AGENT_PID[b]}"
wait "${E2E_AGENT_PID[b]}" 2>/dev/null
ecvx_download_done
kill -0 "${E2E_AGENT_PID[a]}" || fail "agent a died when agent b was killed"
wait_for 15 ecvx_bytes_at_least a read $SIZE || fail "agent a did not capture the download"

ecvx_fault_stop a

# What b's copy brought before the kill: its datagrams in the raw capture, replayed alone.
ecvx_offline b-only bytes "ip.src#1 == $B"
B_HAD=$(ECVX_PCAP=$E2E_TMP/b-only.pcap ecvx_check "$B" 4644 "$A" '*' --body "$BIG" --allow-holes)
note "b's copy alone: $B_HAD"
B_PRESENT=$(ecvx_field "$B_HAD" body_present)
[ -n "$B_PRESENT" ] && [ "$B_PRESENT" -lt "$SIZE" ] ||
	fail "b's copy is complete: the kill did not land mid-transfer"

note "bytes mode (live tvn): the complete download exactly once"
r=$(ecvx_check "$B" 4644 "$A" '*' --body "$BIG") || fail "bytes mode output: $r"
note "$r"
[ "$(ecvx_field "$r" body_present)" = "$SIZE" ] || fail "bytes mode: body incomplete: $r"
PORT=$(echo "$r" | sed -n 's/.*->10\.78\.1\.1:\([0-9]*\) .*/\1/p')
n=$(e2e_flow_sources "$A" "$PORT" "$E2E_FLOWS")
[ "$n" = 2 ] || fail "tvn flow log: $n sources for the download (want a and b)"

note "flow mode (the same datagrams replayed): loss bounded by b's missing part, no shift"
ecvx_offline flow flow
r=$(ECVX_PCAP=$E2E_TMP/flow.pcap ecvx_check "$B" 4644 "$A" '*' --body "$BIG" --allow-holes) ||
	fail "flow mode output: $r"
note "$r"
missing=$(ecvx_field "$r" body_missing)
[ "$missing" -le $((SIZE - B_PRESENT)) ] ||
	fail "flow mode lost $missing bytes, more than the $((SIZE - B_PRESENT)) b's copy lacked"
if [ "$missing" -gt 0 ]; then
	[ "$(ecvx_field "$r" holes)" -gt 0 ] || fail "flow mode: $missing bytes missing without a hole"
fi
python3 - "$E2E_TMP/flow-flows.jsonl" "$PORT" <<'PY' || fail "flow mode: flow log does not account for the discarded copy"
import json, sys
port = int(sys.argv[2])
for line in open(sys.argv[1]):
    f = json.loads(line)
    if port in (f["sport"], f["dport"]):
        print("   flow log:", {k: f[k] for k in ("pkts_in", "pkts_out", "pkts_dropped",
              "bytes_dropped", "mid_stream")}, "kept", f.get("kept"),
              "sources", [s["addr"] for s in f["sources"]])
        assert len(f["sources"]) == 2
        assert f["pkts_dropped"] > 0 and f["pkts_in"] == f["pkts_out"] + f["pkts_dropped"]
        sys.exit(0)
sys.exit(1)
PY
echo "test_fault_agent_kill: all passed"
