#!/usr/bin/env python3
"""tests/integration/lib/h2data.py - the message bodies of one direction of HTTP/2.

  h2data.py DUMP OUTDIR

DUMP is one direction of a connection's plaintext as the capture holds it (streams.py
--dump); the client's direction begins with the connection preface, which is skipped.
Every frame is read in order; the payloads of the DATA frames (padding removed) are
concatenated per stream into OUTDIR/stream-ID.bin. Prints one line per stream:
"stream ID BYTES". Exits 1 when the bytes are not a sequence of whole frames (a hole,
a duplicated or a missing byte breaks the framing), 0 otherwise."""
import os
import sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, PADDED = 0x0, 0x8


def frames(buf):
    """(type, flags, stream, payload) of each frame; ValueError on a truncated one."""
    off = len(PREFACE) if buf.startswith(PREFACE) else 0
    while off < len(buf):
        if off + 9 > len(buf):
            raise ValueError(f"truncated frame header at offset {off}")
        length = int.from_bytes(buf[off:off + 3], "big")
        ftype, flags = buf[off + 3], buf[off + 4]
        stream = int.from_bytes(buf[off + 5:off + 9], "big") & 0x7FFFFFFF
        payload = buf[off + 9:off + 9 + length]
        if len(payload) != length:
            raise ValueError(f"frame at offset {off} claims {length} bytes, {len(payload)} left")
        yield ftype, flags, stream, payload
        off += 9 + length


def main():
    if len(sys.argv) != 3:
        print(__doc__.splitlines()[2].strip(), file=sys.stderr)
        sys.exit(2)
    buf = open(sys.argv[1], "rb").read()
    bodies = {}
    try:
        for ftype, flags, stream, payload in frames(buf):
            if ftype != DATA:
                continue
            if flags & PADDED:
                pad = payload[0]
                payload = payload[1:len(payload) - pad]
            bodies.setdefault(stream, bytearray()).extend(payload)
    except ValueError as e:
        print(f"h2data: {sys.argv[1]}: not whole HTTP/2 frames: {e}", file=sys.stderr)
        sys.exit(1)
    os.makedirs(sys.argv[2], exist_ok=True)
    for stream, body in sorted(bodies.items()):
        with open(os.path.join(sys.argv[2], f"stream-{stream}.bin"), "wb") as f:
            f.write(body)
        print(f"stream {stream} {len(body)}")


if __name__ == "__main__":
    main()
