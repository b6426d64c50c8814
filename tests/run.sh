#!/usr/bin/env bash
# tests/run.sh - runs every test suite and prints one summary line.
#   1. Check unit suites: $BUILD/tests/test_*        (pure modules first, by name)
#   2. fuzz smoke rounds: $BUILD/fuzz/fuzz_*         (FUZZ_SMOKE_SECONDS each, default 10)
#   3. integration, end-to-end and deployment: tests/integration/*.sh,
#      tests/e2e/test_*.sh, tests/deploy/test_*.sh (the images and manifests, run for real)
#      (need root and BPF; exit 0 = pass, 77 = skipped with a printed reason)
# Environment: BUILD (default build), ONLY=<glob> to run a subset, KEEP_GOING=1.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
ONLY=${ONLY:-*}
FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-10}
LOGDIR=$BUILD/test-logs
mkdir -p "$LOGDIR"

passed=0 failed=0 skipped=0
failures=()

run_one() { # name, command...
	local name=$1; shift
	case "$name" in $ONLY) ;; *) return ;; esac
	local log=$LOGDIR/$name.log start=$SECONDS rc
	"$@" >"$log" 2>&1
	rc=$?
	local dt=$((SECONDS - start))
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		printf '  PASS  %-40s %3ss\n' "$name" "$dt"
	elif [ $rc -eq 77 ]; then
		skipped=$((skipped + 1))
		printf '  SKIP  %-40s %s\n' "$name" "$(grep -m1 -i 'skip' "$log" || true)"
	else
		failed=$((failed + 1))
		failures+=("$name")
		printf '  FAIL  %-40s %3ss (log: %s)\n' "$name" "$dt" "$log"
		tail -n 25 "$log" | sed 's/^/        | /'
	fi
}

echo "== unit suites (Check)"
for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	run_one "$(basename "$t")" env CK_FORK=yes "$t"
done

echo "== fuzz smoke rounds (${FUZZ_SMOKE_SECONDS}s each)"
for f in "$BUILD"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	run_one "$(basename "$f")" env FUZZ_SECONDS="$FUZZ_SMOKE_SECONDS" FUZZ_RSS_MB=1024 \
		FUZZ_FULL_LOG=1 bash tests/fuzz/run.sh "$(basename "$f")"
done

echo "== integration, end-to-end and deployment"
for s in tests/integration/*.sh tests/e2e/test_*.sh tests/deploy/test_*.sh; do
	[ -f "$s" ] || continue
	run_one "$(basename "$s" .sh)" bash "$s"
done

echo
if [ ${#failures[@]} -gt 0 ]; then
	echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
