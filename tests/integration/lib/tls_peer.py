#!/usr/bin/env python3
"""tests/integration/lib/tls_peer.py - python ssl client and server for the agent tests.

python's ssl module moves data with SSL_write_ex/SSL_read_ex only, so these peers
exercise the _ex uprobes (openssl s_client/s_server exercise the plain pair).

Protocol: the client sends messages as 8-byte big-endian length + payload, each in ONE
sendall (one SSL_write_ex call); the server answers each with the SHA-256 of the
payload (32 bytes). Both sides record exactly what they sent and received, which is
what the capture must hold.

  tls_peer.py server PORT CERT KEY [--conns N] [--bind ADDR]
  tls_peer.py client HOST PORT --record PREFIX [--progress FILE] ITEM...
      ITEM is a file to send as one message, or @wait:FILE to wait (up to 60 s) until
      FILE exists. PREFIX.c2s / PREFIX.s2c get the bytes sent / received; FILE given
      with --progress gets one line per message answered."""
import hashlib
import os
import socket
import ssl
import struct
import sys
import time

TIMEOUT = 60


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        d = s.recv(min(n - len(buf), 1 << 20))
        if not d:
            return None
        buf += d
    return bytes(buf)


def wait_file(path):
    deadline = time.time() + TIMEOUT
    while not os.path.exists(path):
        if time.time() > deadline:
            sys.exit(f"timed out waiting for {path}")
        time.sleep(0.05)


def server(port, cert, key, conns=1, bind="127.0.0.1"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((bind, port))
    ls.listen(4)
    ls.settimeout(TIMEOUT)
    for _ in range(conns):
        c, _ = ls.accept()
        c.settimeout(TIMEOUT)
        s = ctx.wrap_socket(c, server_side=True)
        while True:
            hdr = recv_exact(s, 8)
            if hdr is None:
                break
            payload = recv_exact(s, struct.unpack(">Q", hdr)[0])
            if payload is None:
                break
            s.sendall(hashlib.sha256(payload).digest())
        s.close()


def client(host, port, record, progress, items):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # libssl is mapped from here on (import ssl): leading @wait items let a test start
    # the agent for this pid before the connection (and its SSL object) exists.
    while items and items[0].startswith("@wait:"):
        wait_file(items.pop(0)[6:])
    raw = socket.create_connection((host, port), timeout=TIMEOUT)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    sent = open(record + ".c2s", "wb")
    got = open(record + ".s2c", "wb")
    for it in items:
        if it.startswith("@wait:"):
            wait_file(it[6:])
            continue
        payload = open(it, "rb").read()
        msg = struct.pack(">Q", len(payload)) + payload
        s.sendall(msg)  # one SSL_write_ex of the whole message
        sent.write(msg)
        digest = recv_exact(s, 32)
        if digest != hashlib.sha256(payload).digest():
            sys.exit("bad answer from the server")
        got.write(digest)
        sent.flush()
        got.flush()
        if progress:
            with open(progress, "a") as f:
                f.write(it + "\n")
    s.close()


def main():
    a = sys.argv[1:]
    if a and a[0] == "server" and len(a) >= 4:
        conns, bind = 1, "127.0.0.1"
        rest = a[4:]
        while rest:
            if rest[0] == "--conns":
                conns = int(rest[1])
            elif rest[0] == "--bind":
                bind = rest[1]
            else:
                sys.exit(f"unknown option {rest[0]}")
            rest = rest[2:]
        server(int(a[1]), a[2], a[3], conns, bind)
    elif a and a[0] == "client" and len(a) >= 5 and a[3] == "--record":
        record, items, progress = a[4], a[5:], None
        if items[:1] == ["--progress"]:
            progress, items = items[1], items[2:]
        client(a[1], int(a[2]), record, progress, items)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
