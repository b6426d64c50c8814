# tests/bench/uprobe_floor_lib.sh - the uprobe floor for benchmarks: builds and runs
# tests/bench/uprobe_floor.c (bpf/floor.bpf.c's return-at-once programs on the libssl
# symbols the agent hooks). Sourced after tests/e2e/lib.sh by bench_lib.bash, for
# agent_bench.sh and uprobe_floor.sh; needs $BUILD built (floor.skel.h) and libbpf's
# headers.

# floor_build: compiles the loader into $E2E_TMP/uprobe_floor.
floor_build() {
	FLOOR=$E2E_TMP/uprobe_floor
	# shellcheck disable=SC2046 # pkg-config prints several words
	gcc -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$BUILD" -I"$E2E_ROOT/agent" -o "$FLOOR" \
		"$E2E_ROOT/tests/bench/uprobe_floor.c" "$E2E_ROOT/agent/sites.c" \
		$(pkg-config --cflags --libs libbpf libelf capstone) ||
		e2e_fail "cannot build uprobe_floor (make BUILD=$BUILD first)"
}

# floor_start [exported|auto]: attaches the floor to $E2E_LIBSSL at its exported symbols
# (default) or at the sites the agent picks; its pid in FLOOR_PID.
floor_start() {
	e2e_bg floor "$FLOOR" --sites "${1:-exported}" "$E2E_LIBSSL"
	FLOOR_PID=$E2E_PID
	e2e_wait_for 30 grep -q 'probes on' "$E2E_TMP/floor.log" ||
		{ cat "$E2E_TMP/floor.log"; e2e_fail "uprobe floor did not attach"; }
}

# floor_stop: detaches it (SIGINT; the loader must exit 0).
floor_stop() {
	e2e_stop "$FLOOR_PID" || e2e_fail "uprobe floor did not exit 0"
}
