#!/usr/bin/env python3
"""Hostile-client measurement: connections that send half a request line and stop.

Opens CONNECTIONS connections to a running credbridge, each sending the first half of a
request line and nothing more, then at each checkpoint reports how many of them the
server still keeps open, and how long a valid client (a connection test with TOKEN) takes
to be answered meanwhile. Not a test: run it by hand against a server you started, e.g.

    CREDBRIDGE_TOKEN=measure-token-0123456789 target/release/credbridge serve &
    python3 tests/bench/half_sent.py --token measure-token-0123456789

Standard library only; the open-file limit is raised to the hard limit for the run.
"""

import argparse
import resource
import selectors
import socket
import time
import urllib.error
import urllib.request


def still_open(sock):
    """True while the server has neither closed nor reset the connection."""
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return data != b""


def valid_request(base, token, timeout):
    started = time.monotonic()
    request = urllib.request.Request(base, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        status = f"failed ({error.__class__.__name__})"
    return status, time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--base-path", default="/api/v1/credentials")
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--token", required=True, help="a token the server accepts")
    parser.add_argument(
        "--checkpoints",
        default="1,6,11,16,21,32",
        help="seconds after the connections are open at which to report",
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    # All connections are opened at once, non-blocking: against a server that stopped
    # accepting, a connect only completes once the kernel's backlog has room.
    pending = []
    for _ in range(args.connections):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((args.host, args.port))
        pending.append(sock)
    selector = selectors.DefaultSelector()
    for sock in pending:
        selector.register(sock, selectors.EVENT_WRITE)
    sockets = []
    deadline = time.monotonic() + 10
    while len(sockets) < len(pending) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
            sock = key.fileobj
            selector.unregister(sock)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                try:
                    sock.send(f"GET {args.base_path[:8]}".encode())
                    sockets.append(sock)
                    continue
                except OSError:
                    pass
            sock.close()
    failed = len(pending) - len(sockets)
    selector.close()
    opened = time.monotonic()
    print(
        f"{len(sockets)} half-sent connections open "
        f"({failed} could not connect within 10 s)"
    )

    base = f"http://{args.host}:{args.port}{args.base_path}"
    for checkpoint in sorted(float(text) for text in args.checkpoints.split(",")):
        time.sleep(max(0.0, opened + checkpoint - time.monotonic()))
        elapsed = time.monotonic() - opened
        open_now = sum(still_open(sock) for sock in sockets)
        status, took = valid_request(base, args.token, timeout=30)
        print(
            f"after {elapsed:5.1f} s: {open_now:5d} of {len(sockets)} still open; "
            f"a valid client got {status} in {took:.3f} s"
        )
    for sock in sockets:
        sock.close()


if __name__ == "__main__":
    main()
