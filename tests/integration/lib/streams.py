#!/usr/bin/env python3
"""tests/integration/lib/streams.py - reassembles the TCP streams of a pcap with tshark.

Prints one line per direction:
  SRC SPORT DST DPORT syn=0|1 fin=0|1 bytes=N dup=N holes=N hole_bytes=N sha256=HEX
where bytes counts distinct payload bytes, dup the payload bytes that arrived twice
(the TVN must deliver each byte once), holes the gaps in sequence space between the
first and the last byte (relative to SYN+1 when a SYN was seen, else to the first
segment). With --dump DIR each direction's bytes (holes skipped) go to
DIR/SRC_SPORT-DST_DPORT.bin and its holes, "offset length" per line, to .holes.
Only tshark decodes the capture: the test checks what a tool would see."""
import hashlib
import os
import subprocess
import sys

FIELDS = ["ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "tcp.srcport", "tcp.dstport",
          "tcp.seq_raw", "tcp.flags.syn", "tcp.flags.fin", "tcp.payload"]


def tshark_rows(pcap):
    cmd = ["tshark", "-n", "-r", pcap, "-Y", "tcp", "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        v = line.split("\t")
        v += [""] * (len(FIELDS) - len(v))
        yield {
            "src": v[0] or v[1], "dst": v[2] or v[3],
            "sport": int(v[4]), "dport": int(v[5]), "seq": int(v[6]),
            "syn": v[7] in ("1", "True"), "fin": v[8] in ("1", "True"),
            "payload": bytes.fromhex(v[9].replace(":", "")),
        }


def main():
    args = sys.argv[1:]
    dump = None
    if len(args) == 3 and args[1] == "--dump":
        dump = args[2]
        os.makedirs(dump, exist_ok=True)
    elif len(args) != 1:
        sys.exit("usage: streams.py PCAP [--dump DIR]")
    dirs = {}
    for r in tshark_rows(args[0]):
        key = (r["src"], r["sport"], r["dst"], r["dport"])
        d = dirs.setdefault(key, {"syn": None, "fin": False, "segs": []})
        if r["syn"]:
            d["syn"] = r["seq"]
        if r["fin"]:
            d["fin"] = True
        if r["payload"]:
            d["segs"].append((r["seq"], r["payload"]))
    for key, d in sorted(dirs.items()):
        if d["syn"] is not None:
            base = (d["syn"] + 1) & 0xffffffff
        elif d["segs"]:
            base = d["segs"][0][0]
        else:
            base = 0
        segs = []
        for seq, data in d["segs"]:
            off = (seq - base) & 0xffffffff
            if off >= 1 << 31:  # before base: a segment from before the first one seen
                off -= 1 << 32
            segs.append((off, data))
        lo = min((o for o, _ in segs), default=0)
        hi = max((o + len(p) for o, p in segs), default=0)
        buf = bytearray(hi - lo)
        filled = bytearray(hi - lo)
        dup = 0
        for off, payload in segs:
            a, n = off - lo, len(payload)
            dup += filled[a:a + n].count(1)
            buf[a:a + n] = payload
            filled[a:a + n] = b"\x01" * n
        holes, data, i = [], bytearray(), 0
        while i < len(filled):
            j = filled.find(0 if filled[i] else 1, i)
            j = len(filled) if j < 0 else j
            if filled[i]:
                data += buf[i:j]
            else:
                holes.append((i + lo, j - i))
            i = j
        src, sport, dst, dport = key
        print(f"{src} {sport} {dst} {dport} syn={int(d['syn'] is not None)} "
              f"fin={int(d['fin'])} bytes={len(data)} dup={dup} holes={len(holes)} "
              f"hole_bytes={sum(h[1] for h in holes)} "
              f"sha256={hashlib.sha256(data).hexdigest()}")
        if dump:
            name = os.path.join(dump, f"{src}_{sport}-{dst}_{dport}")
            with open(name + ".bin", "wb") as f:
                f.write(data)
            with open(name + ".holes", "w") as f:
                for h in holes:
                    f.write(f"{h[0]} {h[1]}\n")


if __name__ == "__main__":
    main()
