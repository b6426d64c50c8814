#!/usr/bin/env bash
# test_agent_go.sh - Go crypto/tls programs (Debian's Go, built from source here with no
# network) are found by discovery (their executables define crypto/tls.(*Conn).Read and
# Write) and captured byte-exact: a Go client sending 1 MiB in one Write to openssl
# s_server, and a Go client and a Go server exchanging 1 MiB the other way (both ends
# hooked: two copies, deduplicated), once and then over 8 concurrent TLS 1.2 connections
# whose goroutines move between threads, and a Go 1.22 client (bookworm-backports)
# against the 1.19 server. Read/Write are entered at the stack check's jbe or
# the push after it and left at every RET, keyed by goroutine.
# Two namespaces joined by a veth pair: the Go programs in ecvb-go, which the agent is
# scoped to, the OpenSSL server (libssl, hooked too) in ecvb-goc, which it does not see.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init go
command -v go >/dev/null || skip "no Go toolchain (golang-go)"
CNS=ecvb-goc
harness_ns $CNS
harness_veth "$NS" ecvb-o0 10.48.48.1/24 $CNS ecvb-o1 10.48.48.2/24

cp -r "$ECVB_ROOT/tests/integration/lib/gotls" "$TMP/src"
(cd "$TMP/src" && GOPROXY=off GOFLAGS=-mod=mod GOCACHE="$TMP/gocache" GOPATH="$TMP/gopath" \
	go build -o "$TMP/gotls" .) >"$TMP/go.log" 2>&1 || { cat "$TMP/go.log"; fail "go build failed"; }
# Go 1.21+ puts a push %rbp after the stack check: Debian's 1.22 from bookworm-backports,
# unpacked into a private apt state kept under the build tree (not the host's sources).
go22=
if go22=$(bash "$ECVB_ROOT/tests/integration/lib/go_bpo.sh" "$(realpath -m "$BUILD")/go-bpo" \
	1.22 2>"$TMP/bpo.log"); then
	(cd "$TMP/src" && GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod \
		GOCACHE="$(realpath -m "$BUILD")/go-bpo/cache" GOPATH="$TMP/gopath" \
		"$go22" build -o "$TMP/gotls22" .) >>"$TMP/go.log" 2>&1 ||
		{ cat "$TMP/go.log"; fail "go 1.22 build failed"; }
else
	note "Go 1.22 not tested: bookworm-backports unreachable ($(tail -1 "$TMP/bpo.log"))"
	go22=
fi
head -c 1048576 /dev/urandom >"$TMP/big"
head -c 5000 /dev/urandom | base64 >"$TMP/s"
head -c 70000 /dev/urandom >"$TMP/small"

start_tvn 4500
METRICS_PORT=4509
AGENT_READY="socket hook:" start_agent

note "Go server on 127.0.0.1:4502 (ecvb-go), waiting to be hooked"
bg ip netns exec "$NS" env GOTLS_WAIT="$TMP/go" "$TMP/gotls" server 127.0.0.1:4502 \
	"$TMP/cert.pem" "$TMP/key.pem" 70000 "$TMP/big"
gspid=$BG_PID
go_hooked() { grep -q "hooked go /proc/[0-9]*/root$TMP/gotls " "$TMP/agent.log"; }
# Discovery rescans every second; bounded wait, not a timing assertion.
wait_for 15 go_hooked || { cat "$TMP/agent.log"; fail "Go program never hooked"; }
grep -o "gotls: crypto/tls.*" "$TMP/agent.log" | sed 's/^/   /'
n=$(metric 'ecv_agent_targets{kind="go"}')
[ "${n:-0}" -ge 1 ] || fail "ecv_agent_targets{kind=\"go\"} is '${n:-}'"
touch "$TMP/go"
wait_for 20 tcp_listening 4502 || fail "Go server did not listen"

note "Go client -> Go server: 70000 bytes up, 1 MiB down"
ip netns exec "$NS" "$TMP/gotls" client 127.0.0.1:4502 "$TMP/small" 1048576 "$TMP/gg.out" ||
	fail "Go client to the Go server failed"
wait "$gspid" || fail "Go server failed"
cmp -s "$TMP/gg.out" "$TMP/big" || fail "Go client received wrong bytes"

note "8 concurrent TLS 1.2 connections, Go client -> Go server on 4503 (goroutines move)"
bg ip netns exec "$NS" env GOTLS_CONNS=8 "$TMP/gotls" server 127.0.0.1:4503 \
	"$TMP/cert.pem" "$TMP/key.pem" 70000 "$TMP/big"
gspid=$BG_PID
wait_for 20 tcp_listening 4503 || fail "Go server did not listen on 4503"
ip netns exec "$NS" env GOTLS_CONNS=8 GOTLS_TLS12=1 "$TMP/gotls" client 127.0.0.1:4503 \
	"$TMP/small" 1048576 "$TMP/gc.out" || fail "concurrent Go clients failed"
wait "$gspid" || fail "Go server on 4503 failed"

if [ -n "$go22" ]; then
	note "Go 1.22 client -> Go 1.19 server on 4504"
	bg ip netns exec "$NS" "$TMP/gotls" server 127.0.0.1:4504 "$TMP/cert.pem" "$TMP/key.pem" \
		70000 "$TMP/big"
	gspid=$BG_PID
	wait_for 20 tcp_listening 4504 || fail "Go server did not listen on 4504"
	bg ip netns exec "$NS" env GOTLS_WAIT="$TMP/go22" "$TMP/gotls22" client 127.0.0.1:4504 \
		"$TMP/small" 1048576 "$TMP/g22.out"
	g22pid=$BG_PID
	go22_hooked() { grep -q "hooked go /proc/[0-9]*/root$TMP/gotls22 " "$TMP/agent.log"; }
	wait_for 15 go22_hooked || { cat "$TMP/agent.log"; fail "Go 1.22 program never hooked"; }
	grep -o "gotls22: crypto/tls.*" "$TMP/agent.log" | sed 's/^/   /'
	grep -q "gotls22: crypto/tls.(\*Conn).Read @0x[0-9a-f]* (push rbp after the stack check" \
		"$TMP/agent.log" || fail "Go 1.22 Read not probed at the push after the stack check"
	touch "$TMP/go22"
	wait "$g22pid" || fail "Go 1.22 client failed"
	wait "$gspid" || fail "Go server on 4504 failed"
	cmp -s "$TMP/g22.out" "$TMP/big" || fail "Go 1.22 client received wrong bytes"
fi

note "Go client -> openssl s_server (other namespace) on 4501: 1 MiB up, s down"
mkfifo "$TMP/sin"
exec {sfd}<>"$TMP/sin"
bg ip netns exec "$CNS" openssl s_server -accept 4501 -cert "$TMP/cert.pem" \
	-key "$TMP/key.pem" -quiet -naccept 1 <"$TMP/sin" >"$TMP/sout" 2>&1
spid=$BG_PID
wait_for 10 bash -c "ip netns exec $CNS ss -Hltn 'sport = :4501' | grep -q ." ||
	fail "s_server did not listen"
bg ip netns exec "$NS" "$TMP/gotls" client 10.48.48.2:4501 "$TMP/big" \
	"$(stat -c %s "$TMP/s")" "$TMP/gs.out"
cpid=$BG_PID
wait_for 30 cmp -s "$TMP/big" "$TMP/sout" || fail "s_server did not receive the client's bytes"
cat "$TMP/s" >&$sfd
wait "$cpid" || fail "Go client to s_server failed"
cmp -s "$TMP/gs.out" "$TMP/s" || fail "Go client received wrong bytes from s_server"
wait_for 10 exited "$spid" || kill -TERM "$spid"
exec {sfd}>&-

capture_done
expect_pair 4502 "$TMP/small" "$TMP/big" "Go client -> Go server"
expect_pair 4501 "$TMP/big" "$TMP/s" "Go client -> openssl server"
ports=$(awk '$4 == 4503 { print $2 }' "$TMP/streams.txt")
[ "$(echo "$ports" | wc -w)" = 8 ] || fail "not 8 flows to 4503: $(echo $ports)"
[ -z "$go22" ] || expect_pair 4504 "$TMP/small" "$TMP/big" "Go 1.22 client -> Go 1.19 server"
for cp in $ports; do
	expect_exact "$cp" 4503 "$TMP/small" syn
	expect_exact 4503 "$cp" "$TMP/big" syn
done
echo "PASS: Go crypto/tls (1.19${go22:+ and 1.22}) discovered; both directions captured exactly, both ends Go deduplicated"
