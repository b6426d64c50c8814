# tests/bench/bench_lib.bash - the start the wrk benchmarks share (agent_bench.sh,
# uprobe_floor.sh): the e2e harness (tests/e2e/lib.sh, lib_extra.sh) and the uprobe floor
# (uprobe_floor_lib.sh), the run length and round count, and a skip without wrk.
# Sourced first thing by those scripts; not run on its own.
# Environment: BENCH_SECONDS (10): SECS, seconds per measurement; BENCH_ROUNDS (3):
# ROUNDS, rounds of every configuration.

# shellcheck shell=bash disable=SC2034 # SECS and ROUNDS are read by the sourcing script
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$BENCH_ROOT/tests/e2e/lib.sh"
. "$BENCH_ROOT/tests/e2e/lib_extra.sh"
. "$BENCH_ROOT/tests/bench/uprobe_floor_lib.sh"
SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}

command -v wrk >/dev/null || e2e_skip "wrk not installed"
