#!/usr/bin/env python3
"""tests/integration/tvn_check.py - checks a tvn output pcap against ecv-flowgen's
expected payloads: every flow and direction delivered exactly once, byte for byte.

usage: tvn_check.py OUT.pcap GENDIR [--flows N]   (GENDIR holds flows.txt and expected/)
Reads the capture with tshark (raw sequence numbers, checksum validation on) and, per
direction: the SYN and the FIN exactly once, payload bytes that tile the sequence space
with no overlap and no gap, and the concatenation equal to the expected file.
Exit 0 when everything matches, 1 with the first problems printed otherwise.
"""
import collections
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from streams import SEGMENTS_ONLY, tshark_fields  # noqa: E402 (the one tshark reader)


def main():
    out, gendir = sys.argv[1], sys.argv[2]
    fields = ["ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport", "tcp.seq_raw", "tcp.len",
              "tcp.flags", "tcp.checksum.status", "ip.checksum.status", "tcp.payload"]
    segs = collections.defaultdict(list)  # key "src_sport_dst_dport" -> [(seq, flags, bytes)]
    problems = []
    for p in tshark_fields(out, fields, ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
                                        *SEGMENTS_ONLY]):
        line = "\t".join(p)
        src4, src6, sport, dst4, dst6, dport, seq, ln, flags, tcs, ics, payload = p[:12]
        src, dst = src4 or src6, dst4 or dst6
        if tcs != "1" or ics != ("1" if src4 else ""):
            problems.append("bad checksum: %s" % line[:80])
        data = bytes.fromhex(payload.replace(":", "")) if payload else b""
        if len(data) != int(ln or 0):
            problems.append("payload length mismatch: %s" % line[:80])
        segs["%s_%s_%s_%s" % (src, sport, dst, dport)].append((int(seq), int(flags, 16), data))
    flows = [l.split()[0] for l in open(os.path.join(gendir, "flows.txt")) if l.strip()]
    ok = 0
    for name in flows:
        c, cp, s, sp = name.split("_")
        for key, ext in (("%s_%s_%s_%s" % (c, cp, s, sp), "c2s"), ("%s_%s_%s_%s" % (s, sp, c, cp), "s2c")):
            want = open(os.path.join(gendir, "expected", "%s.%s" % (name, ext)), "rb").read()
            lst = segs.pop(key, [])
            syns = [x for x in lst if x[1] & 0x02]
            fins = [x for x in lst if x[1] & 0x01]
            if len(syns) != 1 or len(fins) != 1:
                problems.append("%s %s: %d SYN, %d FIN (want 1 each)" % (name, ext, len(syns), len(fins)))
                continue
            isn = syns[0][0]
            pieces = sorted(((x[0] - isn - 1) % 2**32, x[2]) for x in lst if x[2])
            got, pos, bad = bytearray(), 0, None
            for off, data in pieces:
                if off != pos:
                    bad = "%s at offset %d, expected %d" % ("overlap" if off < pos else "gap", off, pos)
                    break
                got += data
                pos += len(data)
            if bad:
                problems.append("%s %s: %s" % (name, ext, bad))
            elif bytes(got) != want:
                problems.append("%s %s: %d bytes delivered, %d expected, content %s" % (
                    name, ext, len(got), len(want), "differs" if len(got) == len(want) else "short/long"))
            elif (fins[0][0] - isn - 1) % 2**32 != len(want):
                problems.append("%s %s: FIN at the wrong offset" % (name, ext))
            else:
                ok += 1
    for key in segs:
        problems.append("unexpected flow in output: %s" % key)
    print("tvn_check: %d of %d directions exact, %d problems" % (ok, 2 * len(flows), len(problems)))
    for p in problems[:20]:
        print("  " + p)
    return 0 if not problems and ok == 2 * len(flows) else 1


if __name__ == "__main__":
    sys.exit(main())
