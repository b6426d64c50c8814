#!/usr/bin/env python3
"""tests/integration/lib/streams.py - reassembles the TCP streams of a pcap with tshark.

Prints one line per direction:
  SRC SPORT DST DPORT syn=0|1 fin=0|1 bytes=N dup=N holes=N hole_bytes=N sha256=HEX
where bytes counts distinct payload bytes, dup the payload bytes that arrived twice
(the TVN must deliver each byte once), holes the gaps in sequence space between the
first and the last byte (relative to SYN+1 when a SYN was seen, else to the lowest
sequence number). With --dump DIR each direction's bytes (holes skipped) go to
DIR/SRC_SPORT-DST_DPORT.bin and its holes, "offset length" per line, to .holes.
Only tshark decodes the capture: the test checks what a tool would see.

The reassembly (read_directions, Stream) is the one tests/e2e/streamcheck.py checks
positions with."""
import hashlib
import os
import subprocess
import sys

FIELDS = ["ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "tcp.srcport", "tcp.dstport",
          "tcp.seq_raw", "tcp.flags.syn", "tcp.flags.fin", "tcp.payload"]


def tshark_fields(pcap, fields, options=(), check=True):
    """The values of FIELDS (a list per TCP segment, "" where absent) as tshark decodes
    them, with tshark OPTIONS (e.g. ["-o", "tcp.check_checksum:TRUE"]); with check, tshark
    failing (an unreadable capture) raises."""
    cmd = ["tshark", "-n", "-r", pcap, *options, "-Y", "tcp", "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as p:
        for line in p.stdout:
            v = line.rstrip("\n").split("\t")
            yield v + [""] * (len(fields) - len(v))
        if p.wait() != 0 and check:
            raise subprocess.CalledProcessError(p.returncode, cmd)


# Segment fields need no reassembly: with it, tshark collects each HTTP body whole, which
# grows quadratically with the body (34 s for 60 000 segments of a 200 MB download, 3.5 s
# without) whatever produced the capture.
SEGMENTS_ONLY = ["-o", "tcp.desegment_tcp_streams:FALSE"]


def tshark_rows(pcap, check=True):
    """(src, sport, dst, dport), seq, syn, fin, payload as hex, one per TCP segment."""
    for v in tshark_fields(pcap, FIELDS, SEGMENTS_ONLY, check=check):
        yield ((v[0] or v[1], v[4], v[2] or v[3], v[5]), int(v[6] or 0),
               v[7] in ("1", "True"), v[8] in ("1", "True"), v[9].replace(":", ""))


def read_directions(pcap, want=lambda key: True, check=True):
    """{key: {"syn": seq or None, "fins": [seq after the FIN's payload], "segs": [(seq,
    bytes)], "n": payload bytes}} for every direction whose key (strings) want accepts."""
    dirs = {}
    for key, seq, syn, fin, payload in tshark_rows(pcap, check):
        if not want(key):
            continue
        d = dirs.setdefault(key, {"syn": None, "segs": [], "n": 0, "fins": []})
        if syn:
            d["syn"] = seq
        if fin:
            d["fins"].append((seq + len(payload) // 2) & 0xffffffff)
        if payload:
            data = bytes.fromhex(payload)
            d["segs"].append((seq, data))
            d["n"] += len(data)
    return dirs


class Stream:
    """One direction laid out at its stream offsets: relative to SYN+1 when the direction
    has a SYN, else to its lowest sequence number. buf[i] is the byte at offset lo + i
    where filled[i]; a byte delivered twice keeps its first delivery, as in a tool's
    reassembly, and counts in dup (and in conflicts when the two differ)."""

    def __init__(self, d):
        self.syn = d["syn"] is not None
        if self.syn:
            self.base = (d["syn"] + 1) & 0xffffffff
        else:
            self.base = d["segs"][0][0] if d["segs"] else 0
        segs = [(self.offset(seq), data) for seq, data in d["segs"]]
        if not self.syn and segs:
            low = min(o for o, _ in segs)
            self.base = (self.base + low) & 0xffffffff
            segs = [(o - low, data) for o, data in segs]
        self.lo = min((o for o, _ in segs), default=0)
        self.hi = max((o + len(p) for o, p in segs), default=0)
        self.buf = bytearray(self.hi - self.lo)
        self.filled = bytearray(self.hi - self.lo)
        self.dup = self.conflicts = 0
        for off, data in segs:
            a, n = off - self.lo, len(data)
            over = self.filled[a:a + n]
            if 1 in over:  # only overlapping spans are walked byte by byte
                for j in range(n):
                    if over[j]:
                        self.dup += 1
                        if self.buf[a + j] != data[j]:
                            self.conflicts += 1
                    else:
                        self.buf[a + j] = data[j]
                        self.filled[a + j] = 1
                continue
            self.buf[a:a + n] = data
            self.filled[a:a + n] = b"\x01" * n
        self.fins = [self.offset(f) for f in d["fins"]]
        self.holes = []  # (offset, length)
        i = 0
        while i < len(self.filled):
            j = self.filled.find(0 if self.filled[i] else 1, i)
            j = len(self.filled) if j < 0 else j
            if not self.filled[i]:
                self.holes.append((i + self.lo, j - i))
            i = j

    def offset(self, seq):
        """The stream offset of a sequence number (negative: before the base)."""
        off = (seq - self.base) & 0xffffffff
        return off - (1 << 32) if off >= 1 << 31 else off

    def data(self):
        """The bytes present, holes skipped."""
        out, i = bytearray(), 0
        for off, n in self.holes:
            out += self.buf[i:off - self.lo]
            i = off - self.lo + n
        return bytes(out + self.buf[i:])


def main():
    args = sys.argv[1:]
    dump = None
    if len(args) == 3 and args[1] == "--dump":
        dump = args[2]
        os.makedirs(dump, exist_ok=True)
    elif len(args) != 1:
        sys.exit("usage: streams.py PCAP [--dump DIR]")
    dirs = read_directions(args[0])
    for key in sorted(dirs, key=lambda k: (k[0], int(k[1]), k[2], int(k[3]))):
        s = Stream(dirs[key])
        data = s.data()
        src, sport, dst, dport = key
        print(f"{src} {sport} {dst} {dport} syn={int(s.syn)} "
              f"fin={int(bool(s.fins))} bytes={len(data)} dup={s.dup} holes={len(s.holes)} "
              f"hole_bytes={sum(h[1] for h in s.holes)} "
              f"sha256={hashlib.sha256(data).hexdigest()}")
        if dump:
            name = os.path.join(dump, f"{src}_{sport}-{dst}_{dport}")
            with open(name + ".bin", "wb") as f:
                f.write(data)
            with open(name + ".holes", "w") as f:
                for h in s.holes:
                    f.write(f"{h[0]} {h[1]}\n")


if __name__ == "__main__":
    main()
