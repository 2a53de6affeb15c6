"""QEMU guestfwd ``cmd:`` target: one guest TCP connection (our stdin/stdout) <-> 127.0.0.1:PORT.

slirp runs this once per connection the guest opens to the forwarded address, so every
connection the agent makes reaches the test's registrar, and nothing else is reachable.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import sys


def main() -> int:
    port = int(sys.argv[1])
    upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
    upstream.settimeout(None)
    guest = socket.socket(fileno=os.dup(0))
    sel = selectors.DefaultSelector()
    sel.register(guest, selectors.EVENT_READ, upstream)
    sel.register(upstream, selectors.EVENT_READ, guest)
    open_sides = 2
    while open_sides:
        for key, _ in sel.select():
            src: socket.socket = key.fileobj  # type: ignore[assignment]
            dst: socket.socket = key.data
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if data:
                dst.sendall(data)
                continue
            sel.unregister(src)
            open_sides -= 1
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
