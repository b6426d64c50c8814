#!/usr/bin/env bash
# tvn --config FILE: the file's keys set flags, the command line overrides single-valued
# ones and adds to repeatable ones, and a bad file (unknown key, wrong type, bad value,
# missing file) is refused with exit 2 and a message naming the key and the reason.
# Also: deploy/k8s/configmap.yaml's tvn.json is accepted as shipped.
source "$(dirname "$0")/tvn_common.bash"
need python3
need_build tvn ecv-flowgen

"$BUILD/ecv-flowgen" --dir "$T/g" --flows 5 --seed 2 --quiet || fail "flowgen"
run() { "$BUILD/tvn" "$@" --read "$T/g/a.pcap" --read "$T/g/b.pcap" 2>"$T/log"; }

echo "== values from the file"
cat >"$T/c.json" <<EOC
{ "dedup": "flow", "skew": "3s", "threads": 2, "out": ["pcap:$T/one.pcap"] }
EOC
run --config "$T/c.json" || { cat "$T/log"; fail "tvn refused a valid config file"; }
cat "$T/log"
grep -q 'dedup mode flow, skew 3000 ms, 2 worker thread' "$T/log" ||
	fail "config values not applied"
[ -s "$T/one.pcap" ] || fail "the file's --out was not opened"

echo "== the command line wins (single-valued) and adds (repeatable)"
rm -f "$T/one.pcap"
run --config "$T/c.json" --dedup bytes --threads 1 --out "pcap:$T/two.pcap" ||
	{ cat "$T/log"; fail "tvn exited $?"; }
grep -q 'dedup mode bytes, skew 3000 ms, 1 worker thread' "$T/log" ||
	{ cat "$T/log"; fail "command-line flags did not override the file"; }
[ -s "$T/one.pcap" ] && [ -s "$T/two.pcap" ] || fail "file and command-line --out not both used"
python3 "$CHECK" "$T/two.pcap" "$T/g" >/dev/null || fail "output with a config file is not exact"
run --config="$T/c.json" --skew 1s || fail "--config=FILE form refused"
grep -q 'skew 1000 ms' "$T/log" || fail "--config=FILE: command line did not win"

echo "== bad files: exit 2, the key and the reason"
bad() { # JSON expected-message
	printf '%s\n' "$1" >"$T/bad.json"
	"$BUILD/tvn" --config "$T/bad.json" --read "$T/g/a.pcap" >"$T/out" 2>&1
	rc=$?
	[ $rc -eq 2 ] || { cat "$T/out"; fail "'$1': exit $rc, expected 2"; }
	grep -qF -- "$2" "$T/out" || { cat "$T/out"; fail "'$1': message lacks '$2'"; }
	echo "ok: $1 -> $(head -1 "$T/out")"
}
bad '{"dedup": "bytes", "no-such-flag": 1}' "$T/bad.json: unknown key 'no-such-flag'"
bad '{"verbose": "yes"}' "key 'verbose'"
bad '{"threads": {"n": 2}}' "key 'threads'"
bad '{"threads": 99}' "invalid --threads '99': expected 1..64"
bad '{"dedup": "maybe"}' "invalid --dedup 'maybe'"
bad '{"config": "other.json"}' "key 'config'"
bad '{"threads": 2,' "$T/bad.json"
"$BUILD/tvn" --config "$T/none.json" >"$T/out" 2>&1
[ $? -eq 2 ] && grep -qF "$T/none.json" "$T/out" || fail "missing config file not refused"

echo "== deploy/k8s/configmap.yaml tvn.json"
python3 - "$T/tvn.json" <<'EOP' || skip "python3 yaml module missing"
import sys, yaml
for d in yaml.safe_load_all(open("deploy/k8s/configmap.yaml")):
    if d and d.get("kind") == "ConfigMap" and "tvn.json" in d.get("data", {}):
        open(sys.argv[1], "w").write(d["data"]["tvn.json"])
EOP
# The shipped file names --threads 2 and the allow ranges: offline, --allow does not apply.
run --config "$T/tvn.json" || { cat "$T/log"; fail "the shipped tvn.json is refused"; }
grep -q 'dedup mode bytes, skew 2000 ms, 2 worker thread' "$T/log" ||
	{ cat "$T/log"; fail "the shipped tvn.json was not applied"; }
echo PASS
