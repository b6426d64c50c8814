#!/usr/bin/env bash
# tests/fuzz/run.sh [NAME...] - libFuzzer rounds of FUZZ_SECONDS (default 60) for every
# $BUILD/fuzz/fuzz_* harness, or only the NAMEs given (make fuzz; tests/run.sh runs its
# short smoke rounds through here too, one NAME at a time).
# The growing corpus is kept in $BUILD/fuzz-corpus/NAME, seeded from tests/fuzz/corpus/;
# crashes land in $BUILD/fuzz-crash/. libFuzzer's output is cut to its summary lines
# unless FUZZ_FULL_LOG=1 (a failing smoke round's log then holds the whole report).
# FUZZ_RSS_MB (default 2048) is libFuzzer's memory limit.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
rc=0
mkdir -p "$BUILD/fuzz-crash"
harnesses=("$@")
if [ ${#harnesses[@]} = 0 ]; then
	for f in "$BUILD"/fuzz/fuzz_*; do [ -x "$f" ] && harnesses+=("$(basename "$f")"); done
fi
for n in "${harnesses[@]}"; do
	corpus=$BUILD/fuzz-corpus/$n
	mkdir -p "$corpus"
	seeds=tests/fuzz/corpus/${n#fuzz_}
	[ -d "$seeds" ] || seeds=
	cmd=("$BUILD/fuzz/$n" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1
		-rss_limit_mb="${FUZZ_RSS_MB:-2048}" -artifact_prefix="$BUILD/fuzz-crash/$n-"
		"$corpus" $seeds)
	echo "== $n (${FUZZ_SECONDS}s)"
	if [ "${FUZZ_FULL_LOG:-0}" = 1 ]; then
		"${cmd[@]}" 2>&1
	else
		"${cmd[@]}" 2>&1 |
			grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==ERROR|SUMMARY)'
		(exit "${PIPESTATUS[0]}")
	fi || { echo "$n: FAILED (see $BUILD/fuzz-crash/)"; rc=1; }
done
exit $rc
