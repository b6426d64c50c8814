#!/usr/bin/env bash
# tests/fuzz/run.sh - longer libFuzzer rounds (make fuzz): FUZZ_SECONDS per harness.
# The growing corpus is kept in $BUILD/fuzz-corpus/NAME; crashes land in $BUILD/fuzz-crash/.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
rc=0
mkdir -p "$BUILD/fuzz-crash"
for f in "$BUILD"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	n=$(basename "$f")
	corpus=$BUILD/fuzz-corpus/$n
	mkdir -p "$corpus"
	seeds=tests/fuzz/corpus/${n#fuzz_}
	[ -d "$seeds" ] || seeds=
	echo "== $n (${FUZZ_SECONDS}s)"
	"$f" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -rss_limit_mb=2048 \
		-artifact_prefix="$BUILD/fuzz-crash/$n-" "$corpus" $seeds 2>&1 |
		grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==ERROR|SUMMARY)' ||
		true
	[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "$n: FAILED (see $BUILD/fuzz-crash/)"; rc=1; }
done
exit $rc
