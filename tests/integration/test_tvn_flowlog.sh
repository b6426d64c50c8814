#!/usr/bin/env bash
# Flow log: one JSON line per finished flow with its 5-tuple, both sources (outer address
# + VNI), packet/byte counters that add up, and the agents' metadata (consumed from the
# 0x88B5 frames, never forwarded). In --dedup flow mode the kept source is named and the
# output (that copy alone) is still exact.
source "$(dirname "$0")/tvn_common.bash"
need python3 tshark
need_build tvn ecv-flowgen

"$BUILD/ecv-flowgen" --dir "$T/g" --flows 150 --vxlan --meta --seed 17 || fail "flowgen"
for mode in bytes flow; do
	"$BUILD/tvn" --dedup $mode --read "$T/g/a.pcap" --read "$T/g/b.pcap" \
		--out "pcap:$T/$mode.pcap" --flow-log "$T/$mode.jsonl" 2>"$T/$mode.log" ||
		{ cat "$T/$mode.log"; fail "tvn --dedup $mode failed"; }
	python3 "$CHECK" "$T/$mode.pcap" "$T/g" || fail "--dedup $mode output not exact"
	python3 - "$T/$mode.jsonl" "$T/g/flows.txt" $mode <<'PY' || fail "flow log ($mode) is wrong"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
want = {}
for l in open(sys.argv[2]):
    name, c2s, s2c = l.split()
    want[name] = (int(c2s), int(s2c))
mode = sys.argv[3]
seen = set()
for l in lines:
    f = json.loads(l)
    name = "%s_%d_%s_%d" % (f["src"], f["sport"], f["dst"], f["dport"])
    assert name in want, "unknown flow " + name
    assert name not in seen, "flow logged twice: " + name
    seen.add(name)
    srcs = sorted((s["addr"], s["vni"]) for s in f["sources"])
    assert srcs == [("192.168.0.1", 1), ("192.168.0.2", 1)], srcs
    assert f["pkts_in"] == f["pkts_out"] + f["pkts_dropped"], f
    assert f["pkts_out"] > 0 and f["pkts_dropped"] > 0, f
    assert f["bytes_out"] == sum(want[name]), (f["bytes_out"], want[name])
    assert f["meta"]["bytes"] == list(want[name]), f["meta"]
    assert f["meta"]["node"] in ("node-a", "node-b"), f["meta"]
    if mode == "flow":
        assert f["kept"] == {"addr": "192.168.0.1", "vni": 1}, f["kept"]
missing = set(want) - seen
assert not missing, "flows missing from the log: %d" % len(missing)
print("flow log (%s): %d lines, all consistent" % (mode, len(lines)))
PY
done
echo PASS
