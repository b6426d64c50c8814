#!/usr/bin/env bash
# tests/e2e/test_two_tvns.sh - scaling out to several TVNs without a coordinator
# (DESIGN §2 "Shipping"): two nodes (curl on a, nginx on b), two tvns on the collector,
# both agents given the same two --tvn. Rendezvous hashing on the canonical 5-tuple must
# send both nodes' copies of a connection to the same tvn: every connection appears in
# exactly one tvn's output, complete and deduplicated (that tvn's flow log lists both
# nodes as its sources), and both tvns get a share of 20 connections (all 20 on one tvn
# has odds of 2^-19 with a working hash).
set -u
. "$(dirname "$0")/lib.sh"

NCONN=20
e2e_init ecva two-tvns
e2e_web_nodes "4543 4544" page.bin=20K
e2e_tvn_start t1 4789 4583
e2e_tvn_start t2 4790 4584
for n in a b; do
	port=4585
	[ $n = b ] && port=4586
	e2e_agent $n $port --tvn "$E2E_TVN_IP:4790"
done

note "$NCONN connections, one GET of 20 KB each"
for i in $(seq 1 $NCONN); do
	p=$((4543 + i % 2))
	e2e_in a curl -sS -k --max-time 10 -o "$E2E_TMP/got.bin" "https://$B:$p/page.bin" ||
		fail "curl $i failed"
	cmp -s "$E2E_TMP/got.bin" "$WWW/page.bin" || fail "curl $i got wrong bytes"
done

e2e_stop_agent a
SENT=$E2E_SENT
e2e_stop_agent b
SENT=$((SENT + E2E_SENT))
e2e_wait_tvn_rx $SENT t1 t2 || fail "the tvns did not receive the $SENT datagrams sent"
e2e_stop_tvn t1
e2e_stop_tvn t2

total=0
for t in t1 t2; do
	e2e_streams "$E2E_TMP/$t.pcap"
	# "client-port server-port" per connection: the kernel may give two connections to
	# the two server ports the same client port.
	: >"$E2E_TMP/$t.ports"
	for sp in 4543 4544; do
		e2e_client_ports "$B" $sp | sed "s/\$/ $sp/" >>"$E2E_TMP/$t.ports"
	done
	n=$(wc -l <"$E2E_TMP/$t.ports")
	[ "$n" -gt 0 ] || fail "tvn $t received no connection: flows are not spread"
	total=$((total + n))
	e2e_clean_capture "$n" "$E2E_TMP/$t.pcap"
	while read -r cp sp; do
		e2e_clean_direction "$A" "$cp" "$B" "$sp"
		e2e_clean_direction "$B" "$sp" "$A" "$cp"
		e2e_expect_once "$(e2e_dump "$B" "$sp" "$A" "$cp")" "$WWW/page.bin" \
			"$t: response of connection from port $cp" >/dev/null
		s=$(e2e_flow_sources "$A" "$cp" "$E2E_TMP/$t-flows.jsonl" "$sp")
		[ "$s" = 2 ] || fail "$t: connection from port $cp had $s sources (want a and b)"
	done <"$E2E_TMP/$t.ports"
	note "ok: tvn $t holds $n complete connections, each from both nodes"
done
[ "$total" = "$NCONN" ] || fail "$total connections in the outputs (want $NCONN)"
dup=$(sort "$E2E_TMP/t1.ports" "$E2E_TMP/t2.ports" | uniq -d | wc -l)
[ "$dup" = 0 ] || fail "$dup connections split across both tvns"
note "ok: $NCONN connections, each on exactly one tvn"
echo "test_two_tvns: all passed"
