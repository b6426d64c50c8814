#!/usr/bin/env bash
# test_kernels.sh - the short subset of the kernel matrix (make kernels) that make check
# runs: the agent captures byte-exact in Debian 12's kernel (6.1) with the kprobe socket
# hook and in Debian 11's (5.10) with fentry, each booted under qemu
# (tests/kernels/vm.sh) with one python ssl exchange (tests/kernels/capture.sh).
# ECV_KERNELS_SUBSET="KERNEL:HOOK ..." replaces the pairs (default "6.1:kprobe
# 5.10:fentry"). A pair is skipped, with its reason, only where qemu is missing or the
# kernel cannot be fetched; the test skips (77) when no pair could run. The summary line
# names the kernels and hooks that ran.
. "$(dirname "$0")/lib/harness.bash"
K=$HARNESS_ROOT/tests/kernels
[ "$(id -u)" = 0 ] || skip "needs root (BPF, qemu's shared root)"
[ -x "$BUILD/ecv-agent" ] && [ -x "$BUILD/tvn" ] || skip "no agent/tvn in $BUILD (build first)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
read -ra pairs <<<"${ECV_KERNELS_SUBSET:-6.1:kprobe 5.10:fentry}"

harness_init ecv-kernels
log=$HARNESS_TMP/vm.log
ran=() failed=() skipped=()
for pair in "${pairs[@]}"; do
	k=${pair%%:*} hook=${pair#*:}
	note "kernel $k, socket hook $hook"
	if ! dir=$(bash "$K/fetch.sh" "$k"); then
		note "skipped: kernel $k cannot be fetched"
		skipped+=("$pair (not fetched)")
		continue
	fi
	release=$(cat "$dir/release")
	start=$SECONDS
	ECV_TEST_TIME_SCALE=10 bash "$K/vm.sh" -t 900 -C "$HARNESS_ROOT" "$k" -- \
		bash "$K/capture.sh" "$hook" >"$log" 2>&1
	rc=$?
	sed 's/^/   | /' "$log"
	if [ $rc = 0 ]; then
		ran+=("$release $hook ($((SECONDS - start)) s)")
	else
		failed+=("$release $hook: $(grep -m1 -e '^FAIL' -e '^vm:' "$log" || echo "exit $rc")")
	fi
done
[ ${#skipped[@]} = 0 ] || note "skipped: ${skipped[*]}"
list() { local IFS=';'; echo "$*" | sed 's/;/; /g'; }
[ ${#failed[@]} = 0 ] || fail "kernels: $(list "${failed[@]}")${ran:+; passed: $(list "${ran[@]}")}"
[ ${#ran[@]} -gt 0 ] || skip "no kernel could run: $(list "${skipped[@]}")"
echo "PASS: captured byte-exact in: $(list "${ran[@]}")"
