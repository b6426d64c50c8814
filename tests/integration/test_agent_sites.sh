#!/usr/bin/env bash
# test_agent_sites.sh - where the agent probes SSL_read/SSL_write (--probe-sites, issue
# 16), each time checked by capturing exact bytes (a call seen at two sites would show
# as duplicated bytes, a missed one as a hole):
#   1. the system libssl3, auto: both directions at their internal callees (log lines,
#      /metrics), openssl s_client/s_server (SSL_read/SSL_write) and python peers
#      (SSL_read_ex/SSL_write_ex) captured exactly;
#   2. the same with --probe-sites exported: the exported symbols, same bytes;
#   3. OpenSSL 1.1.1 (bullseye's libssl1.1 and openssl, unpacked with a private apt
#      state, the host's sources untouched) hooked with --lib: sites logged, captured;
#   4. a library whose data functions are plain forwarders (built here, preloaded into
#      the python client): no callee to prove, exported symbols, said, captured;
#   5. bad input: a library whose SSL_read cannot be decoded past its first instruction
#      (--lib: hooked at the exported symbol, said) and a truncated libssl.so.3 mapped
#      by a process (discovery: skipped, said); the agent keeps running and captures.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init sites
unset ECVB_PROBE_SITES # this test sets --probe-sites itself
need cc
METRICS_PORT=9494
start_tvn 4490

# site_line FUNC: the agent's log line saying where FUNC of a hooked file is probed.
site_line() { grep -E ": $1( ->| at the exported)" "$TMP/agent.log" | head -1; }

# --- 1. system libssl3, auto ------------------------------------------------------------
start_agent --no-auto --lib "$LIBSSL"
for f in SSL_read SSL_read_ex SSL_write SSL_write_ex; do
	l=$(site_line "$f")
	note "$l"
	echo "$l" | grep -q "$f -> .* @0x[0-9a-f]* (push .*, emulated" ||
		fail "$f of $LIBSSL not probed at an emulated internal site: ${l:-no log line}"
done
[ "$(site_line SSL_read | grep -o '@0x[0-9a-f]*')" = \
	"$(site_line SSL_read_ex | grep -o '@0x[0-9a-f]*')" ] || fail "SSL_read and SSL_read_ex differ"
[ "$(metric 'ecv_agent_probe_sites{func="SSL_read",site="internal"}')" = 1 ] ||
	fail "metrics do not count SSL_read's internal site"
[ "$(metric 'ecv_agent_probe_sites{func="SSL_write",site="exported"}')" = 0 ] ||
	fail "metrics count an exported SSL_write site"
# One uprobe pair per direction replaces the two exported pairs: 19 - 4 probes.
grep -q "hooked .*libssl.so.3 (15 probes)" "$TMP/agent.log" ||
	fail "not one probe pair per direction: $(grep 'hooked ' "$TMP/agent.log")"
openssl_pair 4491
python_pair 4492
capture_done
expect_pair 4491 "$TMP/4491.c" "$TMP/4491.s" "openssl, internal sites"
expect_pair 4492 "$TMP/py4492.c2s" "$TMP/py4492.s2c" "python, internal sites"

# --- 2. the same, exported ---------------------------------------------------------------
start_tvn 4490
start_agent --no-auto --lib "$LIBSSL" --probe-sites exported
for f in SSL_read SSL_read_ex SSL_write SSL_write_ex; do
	site_line "$f" | grep -q "$f at the exported symbol (exported sites forced)" ||
		fail "--probe-sites exported: $f not at its symbol: $(site_line "$f")"
done
grep -q "hooked .*libssl.so.3 (19 probes)" "$TMP/agent.log" ||
	fail "not every exported probe: $(grep 'hooked ' "$TMP/agent.log")"
[ "$(metric 'ecv_agent_probe_sites{func="SSL_read",site="exported"}')" = 1 ] ||
	fail "metrics do not count SSL_read's exported site"
openssl_pair 4493
python_pair 4494
capture_done
expect_pair 4493 "$TMP/4493.c" "$TMP/4493.s" "openssl, exported sites"
expect_pair 4494 "$TMP/py4494.c2s" "$TMP/py4494.s2c" "python, exported sites"

# --- 3. OpenSSL 1.1.1 from bullseye ----------------------------------------------------
# fetch_bullseye DIR PKG...: the packages unpacked into DIR (their .debs cached in the
# build tree); returns 1 when the archive cannot be reached.
fetch_bullseye() {
	local dir=$1 apt=$BUILD/debs/bullseye
	shift
	mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dir"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
		"http://deb.debian.org/debian bullseye main" >"$apt/sources.list"
	local opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache"
		-o APT::Sandbox::User=root -o DPkg::Lock::Timeout=600 -q)
	if ! ls "$apt"/*.deb >/dev/null 2>&1; then
		apt-get "${opts[@]}" update >"$TMP/apt.log" 2>&1 || return 1
		(cd "$apt" && apt-get "${opts[@]}" download "${@/%//bullseye}") >>"$TMP/apt.log" 2>&1 || return 1
	fi
	for d in "$apt"/*.deb; do dpkg -x "$d" "$dir" || return 1; done
}
O11=$TMP/openssl11
if fetch_bullseye "$O11" libssl1.1 openssl; then
	L11=$O11/usr/lib/x86_64-linux-gnu/libssl.so.1.1
	[ -e "$L11" ] || fail "no $L11 in bullseye's libssl1.1"
	start_tvn 4490
	start_agent --no-auto --lib "$L11"
	for f in SSL_read SSL_read_ex SSL_write SSL_write_ex; do note "$(site_line "$f")"; done
	[ -n "$(site_line SSL_read)" ] || fail "no site logged for OpenSSL 1.1.1's SSL_read"
	SERVER_ENV="LD_LIBRARY_PATH=$O11/usr/lib/x86_64-linux-gnu PATH=$O11/usr/bin:$PATH" \
		openssl_pair 4495
	grep -q "OpenSSL 1.1.1" <(LD_LIBRARY_PATH=$O11/usr/lib/x86_64-linux-gnu \
		"$O11/usr/bin/openssl" version) || fail "bullseye's openssl is not 1.1.1"
	capture_done
	expect_pair 4495 "$TMP/4495.c" "$TMP/4495.s" "OpenSSL 1.1.1 s_server"
else
	note "SKIPPED part 3: bullseye's archive not reachable ($(tail -1 "$TMP/apt.log"))"
fi

# --- 4. data functions that do not match: forwarders ---------------------------------
cat >"$TMP/fwd.c" <<'EOF'
/* SSL_* forwarders to the next definition (the real libssl), resolved at load: each is
 * one indirect jump, no call to prove (linked to libssl: it is loaded first). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
#define FWD(ret, name, params, args)                                                     \
	static ret(*real_##name) params;                                                 \
	ret name params { return real_##name args; }
#define FWDV(name, params, args)                                                         \
	static void(*real_##name) params;                                                \
	void name params { real_##name args; }
FWD(int, SSL_read, (SSL * s, void *b, int n), (s, b, n))
FWD(int, SSL_write, (SSL * s, const void *b, int n), (s, b, n))
FWD(int, SSL_read_ex, (SSL * s, void *b, size_t n, size_t *r), (s, b, n, r))
FWD(int, SSL_write_ex, (SSL * s, const void *b, size_t n, size_t *w), (s, b, n, w))
FWD(SSL *, SSL_new, (SSL_CTX * c), (c))
FWD(int, SSL_do_handshake, (SSL * s), (s))
FWD(int, SSL_shutdown, (SSL * s), (s))
FWDV(SSL_free, (SSL * s), (s))
FWDV(SSL_set_connect_state, (SSL * s), (s))
FWDV(SSL_set_accept_state, (SSL * s), (s))
#define R(name) real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name)
__attribute__((constructor)) static void resolve(void)
{
	R(SSL_read), R(SSL_write), R(SSL_read_ex), R(SSL_write_ex), R(SSL_new);
	R(SSL_do_handshake), R(SSL_shutdown), R(SSL_free), R(SSL_set_connect_state);
	R(SSL_set_accept_state);
}
EOF
cc -O2 -shared -fPIC -o "$TMP/libsslfwd.so" "$TMP/fwd.c" -Wl,--no-as-needed -lssl -ldl || fail "cannot build the forwarders"
start_tvn 4490
start_agent --no-auto --lib "$TMP/libsslfwd.so"
for f in SSL_read SSL_read_ex SSL_write SSL_write_ex; do
	l=$(site_line "$f")
	note "$l"
	echo "$l" | grep -q "$f at the exported symbol (.*single-stepped; no call into its section)" ||
		fail "the forwarding $f is not said to stay at its symbol: ${l:-no log line}"
done
peer=$ECVB_ROOT/tests/integration/lib/tls_peer.py
head -c 30000 /dev/urandom >"$TMP/fwd.1"
bg ip netns exec "$NS" python3 "$peer" server 4496 "$TMP/cert.pem" "$TMP/key.pem"
spid=$BG_PID
wait_for 10 tcp_listening 4496 || fail "python server did not listen on 4496"
ip netns exec "$NS" env LD_PRELOAD="$TMP/libsslfwd.so" python3 "$peer" client 127.0.0.1 4496 \
	--record "$TMP/fwd" "$TMP/fwd.1" || fail "python client through the forwarders failed"
wait "$spid" || fail "python server on 4496 failed"
capture_done
expect_pair 4496 "$TMP/fwd.c2s" "$TMP/fwd.s2c" "forwarders at their exported symbols"

# --- 5. bad input --------------------------------------------------------------------------
# SSL_read/SSL_write: a valid first instruction (sub), then a byte invalid in 64-bit mode.
cat >"$TMP/bad.c" <<'EOF'
__asm__(".text\n.globl SSL_read\n.type SSL_read,@function\nSSL_read:\n"
	"sub $0x18,%rsp\n.byte 0x06,0x06,0x06\nret\n.size SSL_read,.-SSL_read\n"
	".globl SSL_write\n.type SSL_write,@function\nSSL_write:\n"
	"sub $0x18,%rsp\n.byte 0x06,0x06,0x06\nret\n.size SSL_write,.-SSL_write\n");
EOF
cc -shared -fPIC -o "$TMP/libsslbad.so" "$TMP/bad.c" || fail "cannot build the undecodable library"
mkdir -p "$TMP/cut"
head -c 3000 "$LIBSSL" >"$TMP/cut/libssl.so.3"
start_tvn 4490
AGENT_READY="hooked .*libsslbad" start_agent --lib "$TMP/libsslbad.so" --lib "$LIBSSL"
l=$(grep "libsslbad.so: SSL_read" "$TMP/agent.log")
note "$l"
echo "$l" | grep -q "SSL_read at the exported symbol (sub rsp, 0x18 single-stepped; undecodable bytes" ||
	fail "undecodable SSL_read not said: ${l:-no log line}"
# A process maps the cut library; discovery finds it, refuses it, and goes on.
bg python3 -c 'import mmap, sys, time
f = open(sys.argv[1], "rb"); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ); time.sleep(60)' \
	"$TMP/cut/libssl.so.3"
mpid=$BG_PID
wait_for 15 grep -q "cut/libssl.so.3: cannot choose probe sites: truncated ELF" "$TMP/agent.log" ||
	fail "the truncated library is not reported: $(grep cut "$TMP/agent.log")"
note "$(grep "cut/libssl.so.3" "$TMP/agent.log" | head -2 | tr '\n' ' ')"
kill -TERM "$mpid"
exited "$AGENT_PID" && fail "the agent exited after the truncated library"
python_pair 4497
capture_done
expect_pair 4497 "$TMP/py4497.c2s" "$TMP/py4497.s2c" "after bad input"
echo "PASS: probe sites chosen, forced, refused and logged; every capture exact"
