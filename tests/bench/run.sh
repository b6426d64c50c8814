#!/usr/bin/env bash
# tests/bench/run.sh - runs every tests/bench/*_bench.sh (make bench). Environment: BUILD.
set -u
cd "$(dirname "$0")/../.."
export BUILD=${BUILD:-build}
rc=0
for b in tests/bench/*_bench.sh; do
	[ -f "$b" ] || continue
	echo "== $b"
	bash "$b" || { echo "bench $b failed"; rc=1; }
done
exit $rc
