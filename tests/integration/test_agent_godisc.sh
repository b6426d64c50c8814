#!/usr/bin/env bash
# test_agent_godisc.sh - how Go programs are found: stripped Go 1.19 and 1.22 binaries
# (-ldflags='-s -w': functions from .gopclntab, the *net.TCPConn itab from .itablink), a
# position-independent one (-buildmode=pie: file offsets, the itab placed per process),
# one named with --go-bin, one running from a copy only its own mount namespace sees
# (found through /proc/PID/root), every one started after the agent; and bad input that
# must be skipped with one clear line while the agent keeps capturing: a Go binary whose
# crypto/tls.(*Conn).Read cannot be decoded (bytes patched in a copy), a C program holding
# the string "crypto/tls.(*Conn).Read", and --go-bin refusals (truncated, not Go, missing).
# Each variant is a Go client in ecvb-godisc (the agent's --netns) sending 70000 bytes to
# an unstripped Go server in ecvb-godisc-p, which the agent does not see: only the
# variant's own probes can have captured the connection, byte-exact both ways.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init godisc
command -v go >/dev/null || skip "no Go toolchain (golang-go)"
need cc unshare readelf
PNS=ecvb-godisc-p
harness_ns $PNS
harness_veth "$NS" ecvb-d0 10.49.49.1/24 $PNS ecvb-d1 10.49.49.2/24

cp -r "$ECVB_ROOT/tests/integration/lib/gotls" "$TMP/src"
# Build caches kept under the build tree; Go 1.22's is test_agent_go's (one std build).
gobuild() { # gobuild GO OUT [FLAGS...]
	local go=$1 out=$2 gocache
	shift 2
	gocache=$(realpath -m "$BUILD")/go-cache
	[ "$go" = go ] || gocache=$(realpath -m "$BUILD")/go-bpo/cache
	(cd "$TMP/src" && GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod GOCACHE="$gocache" \
		GOPATH="$TMP/gopath" "$go" build -o "$out" "$@" .) >>"$TMP/go.log" 2>&1 ||
		{ cat "$TMP/go.log"; fail "go build $* ($go) failed"; }
}
note "building the Go variants"
gobuild go "$TMP/gotls"
gobuild go "$TMP/gotls-s19" -ldflags='-s -w'
gobuild go "$TMP/gotls-pie" -buildmode=pie -ldflags='-s -w'
go22=
if go22=$(bash "$ECVB_ROOT/tests/integration/lib/go_bpo.sh" "$(realpath -m "$BUILD")/go-bpo" \
	1.22 2>"$TMP/bpo.log"); then
	gobuild "$go22" "$TMP/gotls-s22" -ldflags='-s -w'
else
	note "Go 1.22 not tested: bookworm-backports unreachable ($(tail -1 "$TMP/bpo.log"))"
	go22=
fi
for v in gotls-s19 gotls-pie ${go22:+gotls-s22}; do
	! readelf -SW "$TMP/$v" | grep -q '\.symtab' || fail "$v still has a symbol table"
done
readelf -hW "$TMP/gotls-pie" | grep -q 'DYN' || fail "gotls-pie is not position-independent"

note "bad input: Read patched, a C program holding the names, truncated copies"
# Read's file offset from the unstripped build's symbol table and its .text header.
read_off=$(readelf -sW "$TMP/gotls" | awk '$8 == "crypto/tls.(*Conn).Read" { print $2; exit }')
text=$(readelf -SW "$TMP/gotls" |
	sed -n 's/.* \.text  *PROGBITS  *\([0-9a-f]*\) \([0-9a-f]*\) .*/\1 \2/p')
[ -n "$read_off" ] && [ -n "$text" ] || fail "no crypto/tls.(*Conn).Read in $TMP/gotls"
off=$(( 0x$read_off - 0x${text% *} + 0x${text#* } + 40 ))
cp "$TMP/gotls" "$TMP/gotls-bad"
# 0x06 is no instruction in 64-bit mode: the decoder stops inside Read.
head -c 32 /dev/zero | tr '\0' '\006' |
	dd of="$TMP/gotls-bad" bs=1 seek=$off conv=notrunc status=none
printf '#include <unistd.h>\nconst char *names[] = { "crypto/tls.(*Conn).Read",
"crypto/tls.(*Conn).Write", "go:itab.*net.TCPConn,net.Conn" };
int main(void) { pause(); return names[0][0] == 0; }\n' >"$TMP/cstr.c"
cc -O0 -o "$TMP/cstr" "$TMP/cstr.c" || fail "cannot compile the C program"
grep -q 'crypto/tls.(\*Conn).Read' "$TMP/cstr" || fail "the C program lost the string"
head -c $(( $(stat -c %s "$TMP/gotls-s19") / 2 )) "$TMP/gotls-s19" >"$TMP/gotls-cut"
chmod +x "$TMP/gotls-cut"

# --go-bin refusals: one line naming the file and the reason, exit 2, nothing loaded.
gobin_refused() { # gobin_refused PATH REASON
	local rc=0
	"$AGENT" --go-bin "$1" --tvn 127.0.0.1:9 >"$TMP/gobin.log" 2>&1 || rc=$?
	[ "$rc" = 2 ] || { cat "$TMP/gobin.log"; fail "--go-bin $1: exit $rc, not 2"; }
	grep -q -- "--go-bin $1: $2" "$TMP/gobin.log" ||
		{ cat "$TMP/gobin.log"; fail "--go-bin $1: no '$2'"; }
	note "refused: $(grep -o -- "--go-bin .*" "$TMP/gobin.log")"
}
gobin_refused "$TMP/gotls-cut" "truncated"
gobin_refused "$TMP/cstr" "not a Go program (no .go.buildinfo)"
gobin_refused "$TMP/nonexistent" "No such file or directory"
gobin_refused "$TMP/gotls-bad" "crypto/tls.(\*Conn).Read cannot be decoded"

variants="gotls-s19 gotls-pie ${go22:+gotls-s22} gotls-mnt"
for v in $variants; do head -c 70000 /dev/urandom >"$TMP/up-$v"; done
head -c 1048576 /dev/urandom >"$TMP/down"
start_tvn 4560
METRICS_PORT=4569
# --go-bin: hooked at startup, before the program runs.
gobin=()
[ -z "$go22" ] || gobin=(--go-bin "$TMP/gotls-s22")
AGENT_READY="socket hook:" start_agent "${gobin[@]}"
[ -z "$go22" ] || grep -q "hooked go $TMP/gotls-s22 " "$TMP/agent.log" ||
	{ cat "$TMP/agent.log"; fail "--go-bin $TMP/gotls-s22 not hooked at startup"; }

note "bad programs running: patched Go copy, C program holding the names"
bg ip netns exec "$NS" env GOTLS_WAIT="$TMP/never" "$TMP/gotls-bad"
bg ip netns exec "$NS" "$TMP/cstr"
bad_told() {
	grep -q "not hooking /proc/[0-9]*/root$TMP/gotls-bad: crypto/tls.(\*Conn).Read cannot be decoded" \
		"$TMP/agent.log"
}
wait_for 15 bad_told || { cat "$TMP/agent.log"; fail "the patched Go binary was not refused in words"; }
note "$(grep -o "not hooking .*gotls-bad: .*" "$TMP/agent.log" | head -1)"

note "the peer: unstripped Go server in $PNS (not captured), one connection per variant"
bg ip netns exec "$PNS" env GOTLS_CONNS=$(echo $variants | wc -w) "$TMP/gotls" server \
	0.0.0.0:4561 "$TMP/cert.pem" "$TMP/key.pem" 70000 "$TMP/down"
spid=$BG_PID
wait_for 20 bash -c "ip netns exec $PNS ss -Hltn 'sport = :4561' | grep -q ." ||
	fail "Go server did not listen"

# run_variant NAME CMD...: a client started after the agent waits until discovery has
# hooked it (bounded; how long it took is reported, not asserted: discovery rescans every
# second), then sends up-NAME and receives down; it must have run correctly.
run_variant() {
	local name=$1 t0 t1 pid
	shift
	t0=$(date +%s%N)
	bg env GOTLS_WAIT="$TMP/go-$name" "$@" client 10.49.49.2:4561 "$TMP/up-$name" 1048576 \
		"$TMP/$name.out"
	pid=$BG_PID
	if [ "$name" != gotls-s22 ]; then
		wait_for 15 grep -Eq "hooked go /proc/[0-9]+/root[^ ]*/$name " "$TMP/agent.log" ||
			{ cat "$TMP/agent.log"; fail "$name never hooked"; }
		t1=$(date +%s%N)
		note "$name hooked $(( (t1 - t0) / 1000000 )) ms after it started"
	fi
	touch "$TMP/go-$name"
	wait "$pid" || fail "$name client failed"
	cmp -s "$TMP/$name.out" "$TMP/down" || fail "$name received wrong bytes"
}
for v in gotls-s19 gotls-pie ${go22:+gotls-s22}; do
	run_variant "$v" ip netns exec "$NS" "$TMP/$v"
done

note "a copy only a new mount namespace sees (tmpfs over $TMP/mnt)"
mkdir "$TMP/mnt"
# shellcheck disable=SC2016 # expanded by the inner shell
run_variant gotls-mnt ip netns exec "$NS" unshare -m --propagation private sh -c \
	'mount -t tmpfs ecvb-godisc "$1" && cp "$2" "$1/gotls-mnt" && shift 2 && exec "$@"' \
	sh "$TMP/mnt" "$TMP/gotls" "$TMP/mnt/gotls-mnt"
[ ! -e "$TMP/mnt/gotls-mnt" ] || fail "$TMP/mnt/gotls-mnt is visible outside its namespace"
wait "$spid" || fail "Go server failed"

grep -o "gotls-[a-z0-9]*: .*" "$TMP/agent.log" | sed 's/^/   /'
grep -q "gotls-s19: go1[.0-9]*, stripped (functions from .gopclntab), net.TCPConn itab known" \
	"$TMP/agent.log" || fail "stripped 1.19 binary: functions or itab not from its tables"
grep -q "gotls-pie: go1[.0-9]*, stripped (functions from .gopclntab), position-independent, net.TCPConn itab placed per process" \
	"$TMP/agent.log" || fail "PIE binary: itab not placed per process"
[ -z "$go22" ] || grep -q "gotls-s22: crypto/tls.(\*Conn).Read @0x[0-9a-f]* (push rbp after the stack check" \
	"$TMP/agent.log" || fail "stripped Go 1.22 Read not probed at the push after the stack check"
! grep -q "hooked .*cstr" "$TMP/agent.log" || fail "the C program holding the names was hooked"
n=$(metric 'ecv_agent_targets{kind="go"}')
want=$(( $(echo $variants | wc -w) + 1 )) # and the peer's binary (its events filtered out)
[ "${n:-0}" -ge "$want" ] || fail "ecv_agent_targets{kind=\"go\"} is '${n:-}', want >= $want"
note "ecv_agent_targets{kind=\"go\"} = $n"

capture_done
flows=$(awk '$4 == 4561 { print $2 }' "$TMP/streams.txt")
for v in $variants; do
	cp=
	for p in $flows; do
		cmp -s "$(stream_file "$p" 4561)" "$TMP/up-$v" && cp=$p
	done
	[ -n "$cp" ] || fail "$v: no flow holding its bytes captured"
	note "$v: client port $cp"
	expect_exact "$cp" 4561 "$TMP/up-$v" syn
	expect_exact 4561 "$cp" "$TMP/down" syn
	# The flow's metadata names the stack: the Go program's own executable.
	lib=$(python3 "$ECVB_ROOT/tests/integration/lib/flow_lib.py" "$FLOWS" "$cp")
	[[ "$lib" == */"$v" ]] || fail "$v: flow metadata lib is '$lib', not its executable"
done
echo "PASS: stripped Go 1.19${go22:+ and 1.22 (--go-bin)}, PIE and another mount namespace's Go programs, started after the agent, captured byte-exact; bad input skipped in words"
