#!/usr/bin/env bash
# tests/proof/dedup_calls.sh ROOT BUILD OUT - every call into tvn/dedup.h, logged.
# Proof for refactors of the dedup engine or its tests: run it on the tree before and on
# the tree after (each built with `make tests` in its own BUILD) and compare the logs:
#   OUT/unit.log  the dedup unit suites (every $BUILD/obj/tests/unit/test_*.o that calls
#                 tvn/dedup.h, itself or through libtestsupport.a), relinked with
#                 tests/proof/dedup_calls.c and run without fork; the calls of each
#                 test under "== test NAME", tests sorted by name, so suites cut
#                 differently compare test by test
#   OUT/fuzz.log  fuzz_dedup built from ROOT's sources with the same wrappers, run once
#                 on every file of CORPUS (default: this tree's tests/fuzz/corpus/dedup)
# and OUT/counts: calls logged, bytes, tests run. PARTS="unit fuzz" (default) picks the
# parts to run. Exit status: non-zero if a suite failed.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 ROOT BUILD OUT" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
OUT=$3
CORPUS=${CORPUS:-$HERE/../fuzz/corpus/dedup}
mkdir -p "$OUT/bin"
OUT=$(cd "$OUT" && pwd)
WRAPS=-Wl,--wrap=dedup_new,--wrap=dedup_free,--wrap=dedup_input,--wrap=dedup_meta
WRAPS=$WRAPS,--wrap=dedup_expire,--wrap=dedup_flush,--wrap=dedup_get_stats
WRAPS=$WRAPS,--wrap=dedup_foreach,--wrap=dedup_mode_parse,--wrap=dedup_mode_name
WRAPS=$WRAPS,--wrap=dedup_flow_bytes
# shellcheck disable=SC2046 # pkg-config prints several words
LIBS=$(pkg-config --libs jansson libcrypto libmicrohttpd libpcap libbpf libelf zlib check)
rc=0
PARTS=${PARTS:-unit fuzz}

# --- unit suites ---
if [[ $PARTS == *unit* ]]; then
rm -f "$OUT/unit.raw"
gcc -O2 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$ROOT/common" \
	-c "$HERE/dedup_calls.c" -o "$OUT/bin/dedup_calls.o"
# A dedup suite calls tvn/dedup.h, or the shared test code (libtestsupport.a) that does.
uses=dedup_.*
if [ -f "$BUILD/libtestsupport.a" ]; then
	rm -rf "$OUT/ts" && mkdir "$OUT/ts"
	(cd "$OUT/ts" && ar x "$BUILD/libtestsupport.a")
	for m in "$OUT"/ts/*.o; do
		nm -u "$m" | grep -q ' dedup_' || continue
		for s in $(nm -g --defined-only "$m" | awk '{ print $3 }'); do uses="$uses|$s"; done
	done
fi
for o in "$BUILD"/obj/tests/unit/test_*.o; do
	nm -u "$o" | awk '{ print $2 }' | grep -qxE "$uses" || continue
	n=$(basename "$o" .o)
	# shellcheck disable=SC2086
	gcc -o "$OUT/bin/$n" "$o" "$OUT/bin/dedup_calls.o" "$WRAPS,--wrap=_tcase_add_test" \
		$(ls "$BUILD/libtestsupport.a" 2>/dev/null) "$BUILD/libtvn.a" "$BUILD/libagent.a" \
		"$BUILD/libecvcommon.a" $LIBS -lpthread
	echo "== suite $n" >>"$OUT/unit.raw"
	DEDUP_CALLS_LOG=$OUT/unit.raw CK_FORK=no "$OUT/bin/$n" >"$OUT/$n.out" 2>&1 ||
		{ echo "$n failed (see $OUT/$n.out)"; rc=1; }
	tail -n 1 "$OUT/$n.out"
done
# one file per test, then all of them in name order
rm -rf "$OUT/tests" && mkdir "$OUT/tests"
awk -v d="$OUT/tests" '/^== suite /{ f = "/dev/null"; next }
	/^== test / { close(f); f = d "/" $3 } { print > f }' "$OUT/unit.raw"
: >"$OUT/unit.log"
for t in $(ls "$OUT/tests" | LC_ALL=C sort); do cat "$OUT/tests/$t" >>"$OUT/unit.log"; done
rm -f "$OUT/unit.raw"
fi

# --- fuzz corpus ---
if [[ $PARTS == *fuzz* ]]; then
clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE -DDEDUP_CALLS_FUZZ \
	-I"$ROOT/common" -I"$BUILD" -o "$OUT/bin/fuzz_dedup" "$ROOT/tests/fuzz/fuzz_dedup.c" \
	"$HERE/dedup_calls.c" $(ls "$ROOT"/common/*.c) $(ls "$ROOT"/tvn/*.c | grep -v '/main\.c$') \
	"$WRAPS" $(pkg-config --libs jansson libcrypto libmicrohttpd libpcap) -lpthread
: >"$OUT/fuzz.log"
# shellcheck disable=SC2046
DEDUP_CALLS_LOG=$OUT/fuzz.log "$OUT/bin/fuzz_dedup" -rss_limit_mb=2048 \
	$(ls "$CORPUS"/* | grep -v README | LC_ALL=C sort) >"$OUT/fuzz.out" 2>&1 ||
	{ echo "fuzz_dedup failed (see $OUT/fuzz.out)"; rc=1; }
fi

{
	for l in $PARTS; do
		awk -v l=$l '/^dedup_/ { c++ } /^  emit/ { e++ } /^(dedup_input|  emit) len=/ {
			sub("len=", "", $2); b += $2 } END {
			printf "%s: %d calls, %d frames emitted, %.0f frame bytes hashed", l, c, e, b }' \
			"$OUT/$l.log"
		echo ", $(wc -c <"$OUT/$l.log") bytes of log"
	done
	[[ $PARTS != *unit* ]] || echo "unit: $(ls "$OUT/tests" | wc -l) tests"
	[[ $PARTS != *fuzz* ]] || echo "fuzz: $(ls "$CORPUS"/* | grep -vc README) inputs"
} | tee "$OUT/counts"
exit $rc
