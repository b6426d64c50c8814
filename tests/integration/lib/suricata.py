#!/usr/bin/env python3
"""tests/integration/lib/suricata.py - reads a capture the way an IDS does.

Runs Suricata 7 (Debian's default configuration, no rules) on PCAP:
  suricata -r PCAP -k none -S /dev/null --set stats.stream-events=true -l DIR
and checks what a user relies on:
  - each expected HTTP transaction (HTTP/1.1 or HTTP/2) is logged exactly once in
    eve.json with its method, URL, status and response body length, and (with --only)
    nothing else is;
  - every stream.* counter of the final stats is 0 (each one counts a packet the stream
    engine found out of window, badly acknowledged or otherwise not part of a TCP
    conversation it accepts; such packets are not reassembled);
  - tcp.reassembly_gap and tcp.midstream_pickups are 0 (a flow without a handshake is
    not picked up by default); with --allow-gaps (the capture lacks bytes no copy
    brought) reassembly gaps and tshark's items that name them are allowed;
  - `tshark -q -z expert,warn` lists no warning or error of TCP or IP (other protocols'
    heuristic dissectors misread random payload bytes).

  suricata.py PCAP [--set KEY=VALUE]... [--only] [--sessions N] [--allow-gaps]
              [--allow-stream COUNTER]... [--expect "METHOD URL STATUS LENGTH[xCOUNT]"]...
--allow-stream names a stream.* counter that may be non-zero (a known artefact the
caller explains; its value is printed).
LENGTH "-" skips the length check. Exits 0 when every check holds, 1 otherwise (each
failure named on stderr), 2 when Suricata cannot run. Prints one summary line."""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# The protocols whose expert items speak of the conversation: heuristic dissectors of
# other protocols misread random payload bytes (e.g. "Thrift: Not enough data").
EXPERT_PROTOCOLS = {"TCP", "IPv4", "IPv6", "IP", "Ethernet", "Frame", "ETH"}
# tshark's items for bytes missing from a capture (--allow-gaps).
EXPERT_GAP = ("Previous segment(s) not captured", "ACKed segment that wasn't captured")


def parse_expect(s):
    m = re.fullmatch(r"(\S+) (\S+) (\d+) (\d+|-)(?:x(\d+))?", s.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"bad --expect {s!r}: want 'METHOD URL STATUS LENGTH[xN]'")
    length = None if m.group(4) == "-" else int(m.group(4))
    return (m.group(1), m.group(2), int(m.group(3)), length), int(m.group(5) or 1)


def run_suricata(pcap, outdir, sets):
    cmd = ["suricata", "-r", pcap, "-k", "none", "-S", "/dev/null", "-l", outdir,
           "--set", "stats.stream-events=true"]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        print(f"suricata failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}", file=sys.stderr)
        sys.exit(2)
    return cmd


def read_eve(path):
    http, stats = [], None
    with open(path) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event_type") == "http":
                # HTTP/2 connection-level frames (SETTINGS on stream 0) are logged as
                # records of their own: not transactions.
                h = e.get("http", {})
                if h.get("http2", {}).get("stream_id") == 0:
                    continue
                # ... and so are HTTP/2 frames of no request (no method, URL or status).
                if h.get("version") == "2" and not any(
                        h.get(k) for k in ("http_method", "url", "status")):
                    continue
                http.append(e)
            elif e.get("event_type") == "stats":
                stats = e["stats"]
    return http, stats


def http_key(e):
    h = e.get("http", {})
    method = h.get("http_method")
    url = h.get("url")
    status = h.get("status")
    length = h.get("length")
    # HTTP/2: Suricata 7 logs the pseudo-headers and the body length in http2 fields.
    h2 = h.get("http2")
    if h2 and method is None:
        hdrs = {x.get("name"): x.get("value") for x in h.get("request_headers", [])}
        rhdrs = {x.get("name"): x.get("value") for x in h.get("response_headers", [])}
        method = hdrs.get(":method")
        url = hdrs.get(":path")
        status = int(rhdrs[":status"]) if rhdrs.get(":status", "").isdigit() else status
    return method, url, status, length


def tshark_expert(pcap, allow_gaps=False):
    """Lines of tshark's expert summary at warning level and above."""
    p = subprocess.run(["tshark", "-n", "-r", pcap, "-q", "-z", "expert,warn"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if p.returncode != 0:
        return [f"tshark failed ({p.returncode})"]
    out, section = [], None
    for line in p.stdout.splitlines():
        m = re.match(r"^(Errors|Warns|Notes|Chats|Comments) \((\d+)\)", line)
        if m:
            section = m.group(1)
            continue
        f = line.split()
        # "   COUNT   GROUP   PROTOCOL  SUMMARY"
        if section in ("Errors", "Warns") and len(f) >= 4 and f[0].isdigit():
            if f[2] in EXPERT_PROTOCOLS and not (
                    allow_gaps and any(g in line for g in EXPERT_GAP)):
                out.append("   " + line.strip())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap")
    ap.add_argument("--expect", action="append", type=parse_expect, default=[])
    ap.add_argument("--only", action="store_true",
                    help="no HTTP transaction beyond the expected ones")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--sessions", type=int, help="TCP sessions Suricata must count")
    ap.add_argument("--keep", help="keep Suricata's output in this directory")
    ap.add_argument("--no-expert", action="store_true", help="skip the tshark expert check")
    ap.add_argument("--allow-gaps", action="store_true",
                    help="bytes no copy brought: reassembly gaps are no failure")
    ap.add_argument("--allow-stream", action="append", default=[],
                    help="a stream.* counter allowed to be non-zero")
    a = ap.parse_args()
    if not shutil.which("suricata"):
        print("suricata not installed", file=sys.stderr)
        sys.exit(2)

    outdir = a.keep or tempfile.mkdtemp(prefix="ecv-suricata.")
    os.makedirs(outdir, exist_ok=True)
    problems = []
    try:
        cmd = run_suricata(a.pcap, outdir, a.sets)
        http, stats = read_eve(os.path.join(outdir, "eve.json"))
    finally:
        if not a.keep:
            shutil.rmtree(outdir, ignore_errors=True)
    if stats is None:
        print("suricata wrote no stats record", file=sys.stderr)
        sys.exit(2)

    seen = collections.Counter()
    for e in http:
        seen[http_key(e)] += 1
    for (method, url, status, length), count in a.expect:
        n = sum(c for k, c in seen.items()
                if k[:3] == (method, url, status) and (length is None or k[3] == length))
        if n != count:
            near = [k for k in seen if k[0] == method and k[1] == url]
            problems.append(f"HTTP {method} {url} {status} {length}: logged {n} times "
                            f"(want {count}); logged for that URL: {near}")
    if a.only:
        want = {(m, u, s) for (m, u, s, _), _ in a.expect}
        extra = [k for k in seen if k[:3] not in want]
        if extra:
            problems.append(f"unexpected HTTP transactions: {extra}")

    stream = {k: v for k, v in stats.get("stream", {}).items() if v}
    allowed = {k: stream.pop(k) for k in a.allow_stream if k in stream}
    if allowed:
        print(f"suricata: allowed stream counters: {allowed}")
    if stream:
        problems.append(f"stream counters not 0: {stream}")
    tcp = stats.get("tcp", {})
    for k in ("reassembly_gap", "midstream_pickups", "invalid_checksum", "overlap_diff_data"):
        if tcp.get(k) and not (a.allow_gaps and k == "reassembly_gap"):
            problems.append(f"tcp.{k} = {tcp[k]}")
    if a.sessions is not None and tcp.get("sessions") != a.sessions:
        problems.append(f"tcp.sessions = {tcp.get('sessions')} (want {a.sessions})")

    expert = [] if a.no_expert else tshark_expert(a.pcap, a.allow_gaps)
    if expert:
        problems.append("tshark expert warnings:\n" + "\n".join(expert[:20]))

    print(f"suricata: {len(http)} HTTP transactions, {tcp.get('sessions')} sessions, "
          f"{sum(stats.get('stream', {}).values())} stream events"
          f"{'' if a.no_expert else ', tshark expert: ' + ('clean' if not expert else 'WARN')}")
    for p in problems:
        print(f"suricata check: {p}", file=sys.stderr)
    if problems:
        print(f"(command: {' '.join(cmd)})", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
