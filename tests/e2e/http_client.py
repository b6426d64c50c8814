#!/usr/bin/env python3
"""tests/e2e/http_client.py - HTTP/1.1 clients over Python's ssl (OpenSSL's SSL_write_ex /
SSL_read_ex) for what curl does not do.

  http_client.py pipeline HOST PORT OUT PATH...
      one connection; every request written at once (pipelined), the last with
      "Connection: close"; the raw responses read to the end of the connection into OUT.
  http_client.py midstream HOST PORT GO OUT PATH1 PATH...
      one keep-alive connection: GET PATH1 at once (before the agents start), then waits
      until the file GO exists and sends the other requests one after the other; writes
      each response's status and body length to OUT, one "PATH STATUS LENGTH" per line."""
import http.client
import os
import socket
import ssl
import sys
import time


def context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def pipeline(host, port, out, paths):
    reqs = []
    for i, p in enumerate(paths):
        close = "Connection: close\r\n" if i == len(paths) - 1 else ""
        reqs.append(f"GET {p} HTTP/1.1\r\nHost: {host}\r\n{close}\r\n")
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        with context().wrap_socket(raw, server_hostname=host) as s:
            s.sendall("".join(reqs).encode())
            got = bytearray()
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got += b
    with open(out, "wb") as f:
        f.write(got)
    n = got.count(b"HTTP/1.1 200 ")
    if n != len(paths):
        sys.exit(f"pipeline: {n} responses of 200 for {len(paths)} requests")


def midstream(host, port, go, out, paths):
    c = http.client.HTTPSConnection(host, int(port), context=context(), timeout=30)
    lines = []

    def get(p):
        c.request("GET", p)
        r = c.getresponse()
        body = r.read()
        lines.append(f"{p} {r.status} {len(body)}\n")

    get(paths[0])
    deadline = time.time() + 120
    while not os.path.exists(go):
        if time.time() > deadline:
            sys.exit("midstream: never told to go on")
        time.sleep(0.05)
    for p in paths[1:]:
        get(p)
    c.close()
    with open(out, "w") as f:
        f.writelines(lines)


def main():
    if len(sys.argv) > 5 and sys.argv[1] == "pipeline":
        pipeline(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    elif len(sys.argv) > 7 and sys.argv[1] == "midstream":
        midstream(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
