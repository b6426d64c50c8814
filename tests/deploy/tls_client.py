#!/usr/bin/env python3
"""tests/deploy/tls_client.py - the python3 ssl client of tests/deploy, run inside its
own container (its own libssl). Python's ssl module drives libssl's SSL_read/SSL_write.

  tls_client.py HOST PORT PATH BODY SYNCDIR NAME [hold]

Imports ssl (mapping libssl), creates SYNCDIR/NAME.ready, waits for SYNCDIR/NAME.go
(the test's signal that the agent hooked this process), sends one HTTP/1.1 POST of BODY
to PATH, reads the whole response and prints it. With "hold" the connection stays
open (keep-alive) until SYNCDIR/NAME.release exists, then closes."""
import os
import socket
import ssl
import sys
import time


def wait_file(path, seconds=60):
    end = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > end:
            sys.exit(f"tls_client: {path} never appeared")
        time.sleep(0.05)


def main():
    host, port, path, body, sync, name = sys.argv[1:7]
    hold = sys.argv[7:] == ["hold"]
    open(os.path.join(sync, name + ".ready"), "w").close()
    wait_file(os.path.join(sync, name + ".go"))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, int(port))) as raw:
        with ctx.wrap_socket(raw) as s:
            conn = "keep-alive" if hold else "close"
            s.sendall((f"POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: {conn}\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
            resp = b""
            while b"\r\n\r\n" not in resp:
                resp += s.recv(4096) or sys.exit("tls_client: connection closed early")
            head, rest = resp.split(b"\r\n\r\n", 1)
            length = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
                      if l.lower().startswith(b"content-length:")][0]
            while len(rest) < length:
                rest += s.recv(4096) or sys.exit("tls_client: short body")
            print((head + b"\r\n\r\n" + rest).decode(), flush=True)
            if hold:
                open(os.path.join(sync, name + ".answered"), "w").close()
                wait_file(os.path.join(sync, name + ".release"), 300)


if __name__ == "__main__":
    main()
