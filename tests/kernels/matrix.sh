#!/usr/bin/env bash
# tests/kernels/matrix.sh - the kernel matrix (make kernels): in each kernel, which
# socket hooks it offers, whether the agent loads with each, and the agent tests with
# each; printed as a table (kernel x hook x result) and kept in $BUILD/kernels/.
#   matrix.sh [--doc] [KERNEL...]     KERNEL: host 5.10 6.1 6.12 (the default: all)
#   --doc   also puts the table into docs/kernels.md and its short version (kernel x
#           hook) into README.md, between their markers
# "host" is this machine's own kernel, run directly under the global test lock
# (/tmp/ecv-itest.lock: the tests use fixed namespaces and ports); the others boot
# under qemu (tests/kernels/vm.sh, one at a time), where the tests have the guest's own
# network stack and need no lock. A hook the kernel does not offer (offers.c says why)
# is "not offered", not a failure; a hook it offers that the agent cannot load, or a
# test that fails with it, is a FAIL.
# Environment: BUILD (default build), ECV_MATRIX_HOOKS (default: kprobe fentry
# tracepoint syscalls auto), ECV_MATRIX_TESTS (see guest.sh), ECV_MATRIX_TIMEOUT
# (seconds for one kernel, default 10800), ECV_TEST_TIME_SCALE in the guests (default 10).
# Exit status: 0 when no cell is a FAIL.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
export BUILD
doc=0
[ "${1:-}" = --doc ] && { doc=1; shift; }
kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(host 5.10 6.1 6.12)
read -ra hooks <<<"${ECV_MATRIX_HOOKS:-kprobe fentry tracepoint syscalls auto}"
timeout_s=${ECV_MATRIX_TIMEOUT:-10800}
out=$BUILD/kernels
mkdir -p "$out"
results=$out/matrix.txt
: >"$results"
case "$BUILD" in /*) build_abs=$BUILD ;; *) build_abs=$PWD/$BUILD ;; esac

for k in "${kernels[@]}"; do
	log=$out/$k.log
	echo "== kernel $k (log: $log)"
	start=$SECONDS
	if [ "$k" = host ]; then
		flock /tmp/ecv-itest.lock env BUILD="$build_abs" \
			timeout -k 10 "$timeout_s" bash tests/kernels/guest.sh "${hooks[@]}" \
			2>"$log" | tee -a "$results"
		rc=${PIPESTATUS[0]}
	else
		ECV_TEST_TIME_SCALE=${ECV_TEST_TIME_SCALE:-10} BUILD=$build_abs \
			bash tests/kernels/vm.sh -t "$timeout_s" "$k" -- \
			bash tests/kernels/guest.sh "${hooks[@]}" 2>"$log" | tee -a "$results"
		rc=${PIPESTATUS[0]}
	fi
	echo "== kernel $k: exit $rc, $((SECONDS - start)) s"
	# guest.sh reports failures as rows and exits 0: anything else is the run's failure.
	if [ "$rc" != 0 ]; then
		echo "ECV-MATRIX $k - run FAIL $((SECONDS - start)) exit $rc: $(tail -n 1 "$log")" |
			tee -a "$results"
	fi
done

python3 - "$results" "$out/matrix.md" "${hooks[*]}" "${ECV_MATRIX_TESTS:-loopback large midstream nginx}" <<'PY'
import sys
results, md, hooks, tests = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
kernels, rows, facts = [], {}, {}
for line in open(results):
    f = line.rstrip("\n").split(" ", 6)
    if f[0] == "ECV-KERNEL":
        facts[f[1]] = " ".join(f[2:])
        continue
    if f[0] != "ECV-MATRIX" or len(f) < 6:
        continue
    rel, hook, what, result, secs = f[1:6]
    detail = f[6] if len(f) > 6 else ""
    if rel not in kernels:
        kernels.append(rel)
    rows.setdefault((rel, hook), {})[what] = (result, secs, detail)
notes = []
def cell(r):
    result, secs, detail = r
    if result == "pass":
        return "pass (%s s)" % secs
    if result == "skip":
        return "skip: " + detail
    notes.append(detail)
    return "**FAIL** [%d]" % len(notes)
head = ["kernel", "hook", "agent loads"] + tests
lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
for rel in kernels:
    if (rel, "-") in rows:
        lines.append("| %s | - | %s |%s" % (rel, cell(rows[(rel, "-")]["run"]), " |" * len(tests)))
    for hook in hooks:
        r = rows.get((rel, hook), {})
        offer = r.get("offer")
        if hook != "auto" and offer and offer[0] != "offered":
            lines.append("| %s | %s | not offered (%s) |%s" % (rel, hook, offer[2], " - |" * len(tests)))
            continue
        load = r.get("load")
        if not load:
            continue
        c = [cell(load) if load[0] != "pass" else "yes, %s s%s" % (load[1],
             (" (" + load[2].replace("socket hook: ", "") + ")") if hook == "auto" else "")]
        for t in tests:
            c.append(cell(r[t]) if t in r else "-" if load[0] == "pass" else "not run")
        lines.append("| %s | %s | %s |" % (rel, hook, " | ".join(c)))
# The short version (README): one cell per kernel and hook.
def short(rel, hook):
    r = rows.get((rel, hook), {})
    offer, load = r.get("offer"), r.get("load")
    if hook != "auto" and offer and offer[0] != "offered":
        return "not offered"
    if not load:
        return "-"
    if load[0] != "pass":
        return "FAIL (does not load)"
    bad = [t for t in tests if t in r and r[t][0] == "FAIL"]
    picked = " (%s)" % load[2].split()[2] if hook == "auto" and len(load[2].split()) > 2 else ""
    if bad:
        return "FAIL (%s)%s" % (", ".join(bad), picked)
    return "pass" + picked
sl = ["| kernel | " + " | ".join(hooks) + " |", "|" + "---|" * (len(hooks) + 1)]
for rel in kernels:
    if (rel, "-") in rows:
        sl.append("| %s | run failed |%s" % (rel, " |" * (len(hooks) - 1)))
        continue
    sl.append("| %s | %s |" % (rel, " | ".join(short(rel, h) for h in hooks)))
open(md.replace(".md", "-short.md"), "w").write("\n".join(sl) + "\n")
text = "\n".join(lines) + "\n"
if facts:
    text += "\n" + "\n".join("- %s: %s" % (k, v) for k, v in facts.items()) + "\n"
if notes:
    text += "\n" + "\n".join("%d. %s" % (i + 1, n) for i, n in enumerate(notes)) + "\n"
open(md, "w").write(text)
print(text)
PY

if [ "$doc" = 1 ]; then
	python3 - "$out/matrix.md" docs/kernels.md "$(date -u +%Y-%m-%d)" <<'PY'
import sys
table, doc, day = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
s = open(doc).read()
a, b = "<!-- matrix begin -->\n", "<!-- matrix end -->"
i, j = s.index(a) + len(a), s.index(b)
open(doc, "w").write(s[:i] + "Run of %s (`make kernels`):\n\n" % day + table + s[j:])
PY
	python3 - "$out/matrix-short.md" README.md "$(date -u +%Y-%m-%d)" <<'PY'
import sys
table, doc, day = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
s = open(doc).read()
a, b = "<!-- kernels short begin -->\n", "<!-- kernels short end -->"
i, j = s.index(a) + len(a), s.index(b)
open(doc, "w").write(s[:i] + "`make kernels` on %s (details and failure reasons in "
                     "[docs/kernels.md](docs/kernels.md)):\n\n" % day + table + s[j:])
PY
	echo "docs/kernels.md and README.md updated"
fi
! grep -q '^ECV-MATRIX .* FAIL ' "$results"
