"""Carry the emulator's TCP port across a network namespace boundary.

Confined student code has no network at all except its own loopback. The
grader listens on a Unix socket that it binds into the sandbox; inside, a
relay listens on ``127.0.0.1:PORT`` and forwards each connection to that
socket, so the emulator keeps one address inside and out and nothing else
on this machine is reachable.

    python -m grader.relay PORT UNIX_SOCKET     # inside the sandbox
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()


def _serve(listener: socket.socket, connect: Callable[[], socket.socket]) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        try:
            upstream = connect()
        except OSError:
            client.close()
            continue
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()


def unix_to_tcp(unix_path: str, port: int) -> socket.socket:
    """Start forwarding ``unix_path`` to ``127.0.0.1:port`` in a thread."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(unix_path)
    listener.listen(64)

    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port))

    threading.Thread(target=_serve, args=(listener, connect), daemon=True).start()
    return listener


def tcp_to_unix(port: int, unix_path: str) -> None:
    """Forward ``127.0.0.1:port`` to ``unix_path`` until killed."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)

    def connect() -> socket.socket:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(unix_path)
        return upstream

    print("relaying", flush=True)
    _serve(listener, connect)


if __name__ == "__main__":
    tcp_to_unix(int(sys.argv[1]), sys.argv[2])
