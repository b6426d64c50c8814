# tests/bench/uprobe_floor_lib.sh - the uprobe floor for benchmarks: builds and runs
# tests/bench/uprobe_floor.c (bpf/floor.bpf.c's return-at-once programs on the libssl
# symbols, or a Go executable's crypto/tls sites, the agent hooks), and reads the run
# counters of a process's BPF programs. Sourced after tests/e2e/lib.sh by
# bench_lib.bash, for agent_bench.sh, uprobe_floor.sh and go_bench.sh; needs $BUILD
# built (floor.skel.h) and libbpf's headers.

# floor_build: compiles the loader into $E2E_TMP/uprobe_floor.
floor_build() {
	FLOOR=$E2E_TMP/uprobe_floor
	# shellcheck disable=SC2046 # pkg-config prints several words
	gcc -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$BUILD" -I"$E2E_ROOT/agent" -o "$FLOOR" \
		"$E2E_ROOT/tests/bench/uprobe_floor.c" "$E2E_ROOT/agent/sites.c" \
		"$E2E_ROOT/agent/gopclntab.c" \
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

# floor_start_go EXE [--go|--go-entries]: attaches the floor to the Go executable EXE
# at the agent's Go sites (--go-entries: without the RETs); its pid in FLOOR_PID.
floor_start_go() {
	e2e_bg floor "$FLOOR" "${2:---go}" "$1"
	FLOOR_PID=$E2E_PID
	e2e_wait_for 30 grep -q 'probes on' "$E2E_TMP/floor.log" ||
		{ cat "$E2E_TMP/floor.log"; e2e_fail "uprobe floor did not attach"; }
}

# floor_stop: detaches it (SIGINT; the loader must exit 0).
floor_stop() {
	e2e_stop "$FLOOR_PID" || e2e_fail "uprobe floor did not exit 0"
}

# bench_bpf_stats CONFIG PID: appends "CONFIG PROGRAM RUNS NS" to $E2E_TMP/bpf-stats for
# each BPF program PID holds (its fds' /proc fdinfo carries the program id and, with
# kernel.bpf_stats_enabled, the counters; bpftool the name).
bench_bpf_stats() {
	python3 - "$1" "$2" >>"$E2E_TMP/bpf-stats" <<'PY'
import json, os, subprocess, sys
cfg, pid = sys.argv[1], sys.argv[2]
for fd in os.listdir(f"/proc/{pid}/fdinfo"):
    try:
        info = dict(l.split(":", 1) for l in open(f"/proc/{pid}/fdinfo/{fd}") if ":" in l)
    except OSError:
        continue
    if "prog_id" not in info or "run_cnt" not in info:
        continue
    out = subprocess.run(["bpftool", "prog", "show", "id", info["prog_id"].strip(), "--json"],
                         capture_output=True, text=True).stdout
    name = json.loads(out).get("name", "?") if out else "?"
    print(cfg, name, info["run_cnt"].strip(), info["run_time_ns"].strip())
PY
}
