#!/usr/bin/env python3
"""tests/e2e/streamcheck.py - checks one TCP direction of a capture byte by byte, at its
positions: what the fault tests need beyond streams.py's summary (which concatenates the
bytes and skips holes, so it cannot tell a hole from shifted data). The reassembly is
streams.py's (tests/integration/lib/streams.py).

usage: streamcheck.py PCAP SRC SPORT DST DPORT [--body FILE] [--allow-holes]
       [--allow-dup] [--allow-extra] [--holes FILE]

SPORT or DPORT may be '*': the direction with the most payload bytes that matches.
Only tshark decodes the capture. Sequence offsets are taken relative to SYN+1 when the
direction has a SYN, else to its lowest sequence number. Reported (one line, key=value):
  bytes      distinct payload bytes       dup        bytes delivered more than once
  holes      gaps in sequence space       hole_bytes their total length
  conflicts  duplicated bytes whose two deliveries differ
  fins       FIN segments               fin_early  FINs placed before the last data byte
  last_hole_end  stream offset where the last hole ends (0: no hole)
With --body FILE the direction is taken to be an HTTP/1.1 response (or request) whose
body is FILE: the header ends at the first CRLFCRLF of the stream, and every byte present
in the body's range must equal FILE's byte at that position:
  body_present / body_missing   bytes of FILE found at their place / in holes
  body_wrong                    bytes present at a position but different (shifted data)
  body_extra                    payload beyond the body's end (a keep-alive connection's
                                next response: --allow-extra)
With --holes FILE what the copy lacks is written there, "offset length" per line: the holes,
and with --body a tail of the body that never arrived.
Exit 1 when dup > 0 (unless --allow-dup), holes > 0 (unless --allow-holes), fin_early > 0,
body_wrong > 0, body_extra > 0 (unless --allow-extra) or the direction is absent."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration", "lib"))
from streams import Stream, read_directions  # noqa: E402 (the one reassembler)


def main():
    args = sys.argv[1:]
    opts = {"--allow-holes": False, "--allow-dup": False, "--allow-extra": False}
    body = None
    holes_out = None
    pos = []
    i = 0
    while i < len(args):
        if args[i] in opts:
            opts[args[i]] = True
        elif args[i] == "--body":
            i += 1
            body = open(args[i], "rb").read()
        elif args[i] == "--holes":
            i += 1
            holes_out = args[i]
        else:
            pos.append(args[i])
        i += 1
    if len(pos) != 5:
        sys.exit(__doc__)
    pcap, src, sport, dst, dport = pos

    def want(key):
        return key[0] == src and key[2] == dst and sport in ("*", key[1]) and \
            dport in ("*", key[3])
    dirs = read_directions(pcap, want, check=False)
    if not dirs:
        print(f"FAIL: no direction {src}:{sport} -> {dst}:{dport} in {pcap}")
        return 1
    key = max(dirs, key=lambda k: dirs[k]["n"])
    st = Stream(dirs[key])
    lo, hi, buf, filled, holes = st.lo, st.hi, st.buf, st.filled, st.holes
    dup, conflicts = st.dup, st.conflicts
    # A FIN before the last byte ends the stream early for a tool (Suricata, Zeek stop
    # reassembling there): it must sit at the end of the data.
    early = sum(1 for f in st.fins if f < hi)
    rep = {"dir": f"{key[0]}:{key[1]}->{key[2]}:{key[3]}", "syn": int(st.syn),
           "bytes": filled.count(1), "dup": dup, "conflicts": conflicts,
           "holes": len(holes), "hole_bytes": sum(h[1] for h in holes), "first": lo,
           "fins": len(st.fins), "fin_early": early,
           "last_hole_end": holes[-1][0] + holes[-1][1] if holes else 0}
    bad = []
    if body is not None:
        if lo != 0:
            bad.append("the stream's start is missing: cannot place the body")
        else:
            hdr_end = bytes(buf[:min(len(buf), 65536)]).find(b"\r\n\r\n")
            if hdr_end < 0 or 0 in filled[:hdr_end + 4]:
                bad.append("no complete HTTP header at the stream's start")
            else:
                start = hdr_end + 4
                got = buf[start:start + len(body)]
                have = filled[start:start + len(body)]
                present = have.count(1)
                missing = len(body) - present
                wrong = 0
                if present:
                    # Compare only where a byte arrived; a memoryview walk in blocks keeps
                    # this fast for tens of megabytes.
                    blk = 1 << 16
                    for b0 in range(0, len(got), blk):
                        g, w, h = got[b0:b0 + blk], body[b0:b0 + blk], have[b0:b0 + blk]
                        if g == w or 1 not in h:
                            continue
                        wrong += sum(1 for k in range(len(g)) if h[k] and g[k] != w[k])
                rep.update(body_present=present, body_missing=missing, body_wrong=wrong,
                           body_extra=max(0, hi - (start + len(body))),
                           body_start=start)
                if wrong:
                    bad.append(f"{wrong} body bytes differ from the file at their position "
                               "(shifted or corrupted data)")
                if rep["body_extra"] and not opts["--allow-extra"]:
                    bad.append(f"{rep['body_extra']} bytes beyond the body's end")
    if dup and not opts["--allow-dup"]:
        bad.append(f"{dup} bytes delivered more than once")
    if conflicts:
        bad.append(f"{conflicts} duplicated bytes with different content")
    if early:
        bad.append(f"{early} FINs before the end of the data (a tool stops reading there)")
    if holes and not opts["--allow-holes"]:
        bad.append(f"{len(holes)} holes ({rep['hole_bytes']} bytes)")
    if holes_out:
        # What the copy lacks, for comparing copies: the gaps, plus a body tail that never
        # came (lost samples at the very end leave no gap before a later byte).
        missing = list(holes)
        body_end = rep.get("body_start", 0) + len(body) if "body_start" in rep else 0
        if body_end > hi:
            missing.append((hi, body_end - hi))
        with open(holes_out, "w") as f:
            for h in missing:
                f.write(f"{h[0]} {h[1]}\n")
    print(" ".join(f"{k}={v}" for k, v in rep.items()))
    for b in bad:
        print("FAIL:", b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
