#!/usr/bin/env bash
# tests/e2e/test_demo.sh - `make demo` as a test: its workload (HTTP/1.1 over TLS 1.2 and
# 1.3, HTTP/2; GET, POST, a 100 KB download) end to end, its own checks (the download in
# the tvn's pcap exactly once; Suricata with its default configuration logs every
# transaction with no stream event, tshark's expert analysis clean) must pass.
set -u
. "$(dirname "$0")/../integration/lib/harness.bash"
[ "$(id -u)" = 0 ] || skip "needs root (BPF, network namespaces)"
harness_init ecvx-demo-test
ECV_DEMO_PCAP=$HARNESS_TMP/demo.pcap bash "$(dirname "$0")/demo.sh" ||
	fail "make demo failed (its output above)"
[ -s "$HARNESS_TMP/demo.pcap" ] || fail "the demo wrote no pcap"
echo "test_demo: all passed"
