#!/usr/bin/env python3
"""Holds N idle TLS sessions on a local smtpd and reports its memory and threads.

    python3 scripts/hold_tls.py PORT N SERVER_PID [starttls]

Each session is opened on 127.0.0.1:PORT, either with implicit TLS (the default: PORT is a
--tls-listen port) or with STARTTLS on a plain port, then says EHLO inside TLS and goes
idle. The server's VmRSS and thread count (from /proc/SERVER_PID/status) are printed before,
while the sessions are held, and after every session has answered a NOOP. Certificates are
not checked (a self-signed test certificate). Standard library only; loopback only; every
socket has a 10 s timeout.
"""
import socket
import ssl
import sys
import time


def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return f"VmRSS {fields['VmRSS']}, {fields['Threads']} threads"


def read_reply(f):
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return line


def open_session(port, ctx, starttls):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if starttls:
        f = raw.makefile("rb")
        read_reply(f)
        raw.sendall(b"EHLO hold.example\r\n")
        read_reply(f)
        raw.sendall(b"STARTTLS\r\n")
        assert read_reply(f).startswith(b"220")
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
        f = tls.makefile("rb")
    else:
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
        f = tls.makefile("rb")
        read_reply(f)
    tls.sendall(b"EHLO hold.example\r\n")
    read_reply(f)
    return tls, f


def main():
    port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    starttls = len(sys.argv) > 4 and sys.argv[4] == "starttls"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    print("before:", status(pid))
    start = time.time()
    sessions = [open_session(port, ctx, starttls) for _ in range(n)]
    time.sleep(1)
    mode = "STARTTLS" if starttls else "implicit TLS"
    print(f"holding {n} idle {mode} sessions (opened in {time.time() - start:.1f} s):", status(pid))
    answered = 0
    for tls, f in sessions:
        tls.sendall(b"NOOP\r\n")
        answered += read_reply(f).startswith(b"250")
    print(f"NOOP answered 250 on {answered}/{n}:", status(pid))


if __name__ == "__main__":
    main()
