#!/usr/bin/env bash
# tests/e2e/test_fault_perf_small.sh - a perf buffer far too small for the load.
#
# Two nodes; agent a with the default buffer, agent b with --perf-pages 1 --max-chunks 1
# (the agent raises the buffer to the floor of one captured call, 16 KiB: 8 pages per
# CPU, two events' room; without --max-chunks 1 the floor is the default 512 pages).
# curl downloads an 8 MB random file over TLS 1.3 at full speed, then uploads 2 MB.
# Asserts:
#   - agent b counts its lost samples (ecv_agent_lost_events_total > 0) and the holes
#     they leave (ecv_agent_gaps_total > 0), and keeps running;
#   - node b's copy alone (replayed offline through tvn --read): the lost data shows as
#     sequence holes, never as shifted data: every byte present is the file's byte at
#     that position, none twice;
#   - the live tvn, with both copies: b's holes are filled from a's copy: the download
#     and the upload complete, exactly once, at their positions (where a lost nothing).
set -u
. "$(dirname "$0")/lib_extra.sh"

SIZE=$((8 * 1024 * 1024))
ECVX_NET=10.78.4 ecvx_fault_setup ecvx-fp perfsmall $SIZE
e2e_random "$E2E_TMP/up.bin" 2M
ecvx_fault_start --perf-pages 1 --max-chunks 1
note "agent b: $(grep -o 'perf buffer raised.*' "$E2E_TMP/agent-b.log")"

note "download 8 MB and upload 2 MB over TLS 1.3, one connection, full speed"
ecvx_get_and_upload big.bin "$E2E_TMP/up.bin"
# Agent a may itself lose samples at full speed on a small machine; that is reported, and
# only where both copies lost the same bytes may a hole remain.
wait_for 15 ecvx_bytes_at_least a read $SIZE ||
	note "agent a captured $(e2e_agent_metric a 'ecv_agent_bytes_total{dir="read"}') of $SIZE bytes"
LOST_B=$(ecvx_agent_sum b ecv_agent_lost_events_total)
GAPS_B=$(ecvx_agent_sum b ecv_agent_gaps_total)
LOST_A=$(ecvx_agent_sum a ecv_agent_lost_events_total)
note "agent b (small buffer): $LOST_B lost samples, $GAPS_B holes; agent a: $LOST_A lost"
[ "$LOST_B" -gt 0 ] || fail "agent b counted no lost samples with an 8-page perf buffer"
[ "$GAPS_B" -gt 0 ] || fail "agent b lost samples but counted no hole (ecv_agent_gaps_total)"
kill -0 "${E2E_AGENT_PID[b]}" || fail "agent b died"
ecvx_fault_stop a b

note "each node's copy alone: holes where samples were lost, nothing shifted"
for n in a b; do
	ecvx_offline $n-only bytes "ip.src#1 == ${E2E_IP[$n]}"
	r=$(ECVX_PCAP=$E2E_TMP/$n-only.pcap ecvx_check "$B" 4644 "$A" '*' --body "$BIG" \
		--allow-holes --allow-extra --holes "$E2E_TMP/$n.holes")
	rc=$?
	note "$n: $r"
	[ $rc = 0 ] || fail "$n's copy: data shifted or duplicated"
done
# r is b's report (the loop's last): a gap, not just a missing tail, is what proves it.
[ "$(ecvx_field "$r" holes)" -gt 0 ] || fail "b lost samples but its copy shows no sequence hole"

note "live tvn, both copies: holes only where both copies lost the same bytes"
r=$(ecvx_check "$B" 4644 "$A" '*' --body "$BIG" --allow-holes --allow-extra --holes "$E2E_TMP/live.holes")
rc=$?
note "download: $r"
[ $rc = 0 ] || fail "live output of the download is wrong (shifted or duplicated data)"
python3 - "$E2E_TMP/a.holes" "$E2E_TMP/b.holes" "$E2E_TMP/live.holes" <<'PY' || fail "the tvn did not fill a hole from the other copy"
import sys
def load(p):
    return sorted(tuple(map(int, line.split())) for line in open(p))
def intersect(x, y):  # sorted (offset, length) lists -> their common byte ranges
    out, i, j = [], 0, 0
    while i < len(x) and j < len(y):
        lo = max(x[i][0], y[j][0])
        hi = min(x[i][0] + x[i][1], y[j][0] + y[j][1])
        if lo < hi:
            out.append((lo, hi - lo))
        if x[i][0] + x[i][1] < y[j][0] + y[j][1]:
            i += 1
        else:
            j += 1
    return out
def merged(r):  # adjacent ranges as one, so that both sides compare alike
    out = []
    for o, n in r:
        if out and out[-1][0] + out[-1][1] == o:
            out[-1] = (out[-1][0], out[-1][1] + n)
        else:
            out.append((o, n))
    return out
a, b, live = (load(p) for p in sys.argv[1:])
both = merged(intersect(a, b))
live = merged(live)
size = lambda r: sum(n for _, n in r)
print(f"   lost by a: {size(a)} bytes, by b: {size(b)}, by both: {size(both)}, "
      f"missing in the output: {size(live)}")
sys.exit(0 if live == both else 1)
PY
echo "test_fault_perf_small: all passed"
