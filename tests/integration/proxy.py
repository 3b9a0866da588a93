"""A TCP forwarder whose connections a test can cut: an outage of one client's
connection, while the server stays up for every other test that shares it."""

from __future__ import annotations

import contextlib
import socket
import threading


class CuttableProxy:
    """A TCP forwarder between a client and the broker whose connections can be cut."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.paused = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.paused:  # the broker is "down": hang up at once
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def pause(self) -> None:
        """Cut every connection and refuse new ones until resume()."""
        self.paused = True
        self.cut()

    def resume(self) -> None:
        self.paused = False

    def cut(self) -> None:
        for s in self.connections:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.connections.clear()

    def close(self) -> None:
        self.cut()
        self.server.close()
