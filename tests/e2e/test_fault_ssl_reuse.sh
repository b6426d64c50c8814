#!/usr/bin/env bash
# tests/e2e/test_fault_ssl_reuse.sh - a client that reuses its SSL objects across
# connections, as wrk does (SSL_shutdown + SSL_clear, then SSL_set_fd on the next
# socket), seen from its own node only.
#
# Two nodes; only node a (wrk) runs an agent, so the output is that agent's copy alone
# and nothing can hide a mistake. wrk -c1 with "Connection: close" makes one TLS
# connection per request (hundreds in 2 s) on one SSL object. Asserts, reading the tvn's
# pcap: every connection nginx served is in the output as its own flow (its own 5-tuple,
# SYN and FIN), and each response stream holds exactly one copy of the 16 KiB body: no
# connection's bytes are attributed to another connection's 5-tuple. The one connection
# in flight when wrk stops is the exception: nginx may have sent its response but wrk
# never reads it, so the client's agent has no plaintext of it (wrk's request count says
# how many responses were read; at most one stream may hold less than a body).
set -u
. "$(dirname "$0")/lib_extra.sh"

command -v wrk >/dev/null || skip "wrk not installed"
ECVX_NET=10.78.6 ecvx_fault_setup ecvx-fs reuse 16K
mv "$BIG" "$WWW/16k.bin"
e2e_tvn 4680
e2e_agent a 4681

note "wrk -t1 -c1 -d2s, Connection: close: one TLS connection per request, one SSL object"
e2e_in a wrk -t1 -c1 -d2s -H "Connection: close" "https://$B:4644/16k.bin" >"$E2E_TMP/wrk.txt" 2>&1 ||
	fail "wrk failed: $(cat "$E2E_TMP/wrk.txt")"
wait_for 10 bash -c "[ \$(wc -l <'$E2E_TMP/nginx-b.access.log') -gt 0 ]"
N=$(wc -l <"$E2E_TMP/nginx-b.access.log")
[ "$N" -ge 20 ] || fail "wrk made only $N requests"
FLOWS=$(ecvx_agent_sum a ecv_agent_flows_total)
note "nginx served $N connections; agent a counted $FLOWS flows"
e2e_stop_agent a
ecvx_tvn_settle || fail "the tvn kept receiving after the agent stopped"
e2e_stop_tvn
e2e_streams >/dev/null
R=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$E2E_TMP/wrk.txt")
[ -n "$R" ] || fail "no request count in wrk's output: $(cat "$E2E_TMP/wrk.txt")"
note "wrk read $R complete responses"
python3 - "$E2E_TMP/dump" "$WWW/16k.bin" "$B" "$N" "$R" <<'PY' || fail "connections merged or lost in the output (see above)"
import os, sys
d, body, b, n = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3], int(sys.argv[4])
r = int(sys.argv[5])
hist = {}
for f in os.listdir(d):
    if f.startswith(b + "_4644-") and f.endswith(".bin"):
        k = open(os.path.join(d, f), "rb").read().count(body)
        hist[k] = hist.get(k, 0) + 1
streams = sum(hist.values())
print(f"   {streams} response streams for {n} connections; bodies per stream -> streams: "
      f"{dict(sorted(hist.items()))}")
# Every response wrk read is one body in a stream of its own; the only other stream
# allowed is the connection in flight at wrk's stop (nginx may or may not have logged it).
ok = (hist.get(1, 0) == r and set(hist) <= {0, 1} and hist.get(0, 0) <= 1 and
      r >= n - 1 and n <= streams <= r + 1)
sys.exit(0 if ok else 1)
PY
echo "test_fault_ssl_reuse: all passed"
