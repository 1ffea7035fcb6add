"""A TCP proxy on loopback in front of the test server that cuts a connection at a COMMIT
(issue 24: a connection lost after the COMMIT was sent).

:class:`CuttingProxy` forwards every connection to the server. :meth:`CuttingProxy.cut`
arms it for the next COMMIT a client sends: ``"before"`` drops the connection instead of
forwarding the COMMIT (nothing is committed), ``"after"`` forwards it and drops the
connection once the server answered (committed, but the client never hears so).
``refuse`` closes new connections at once, as a server that is away.
"""

from __future__ import annotations

import socket
import threading

_COMMIT = b"COMMIT\x00"  # the query text in the client's Parse, the tag in the server's reply


class CuttingProxy:
    """Listen on a free loopback port (:attr:`port`) and forward to ``server_port``."""

    def __init__(self, server_port: int) -> None:
        self._server_port = server_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.refuse = False
        self._mode: str | None = None
        self._lock = threading.Lock()
        self.cuts = 0  # connections cut so far
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, user: str, password: str) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/postgres"

    def cut(self, mode: str) -> None:
        """Cut the connection that sends the next COMMIT, ``"before"`` or ``"after"`` it."""
        if mode not in ("before", "after"):
            raise ValueError(f"mode must be 'before' or 'after'; got {mode!r}")
        with self._lock:
            self._mode = mode

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _take(self) -> str | None:
        with self._lock:
            mode, self._mode = self._mode, None
            return mode

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refuse:
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self._server_port))
            link = _Link(self, client, server)
            threading.Thread(target=link.upstream, daemon=True).start()
            threading.Thread(target=link.downstream, daemon=True).start()


class _Link:
    """One proxied connection."""

    def __init__(self, proxy: CuttingProxy, client: socket.socket, server: socket.socket):
        self._proxy = proxy
        self._client = client
        self._server = server
        self._cut_at_reply = threading.Event()

    def _drop(self) -> None:
        self._proxy.cuts += 1
        for sock in (self._client, self._server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def upstream(self) -> None:
        """Client to server."""
        try:
            while data := self._client.recv(65536):
                if _COMMIT in data and self._proxy._mode is not None:
                    mode = self._proxy._take()
                    if mode == "before":
                        self._drop()
                        return
                    if mode == "after":
                        self._cut_at_reply.set()
                self._server.sendall(data)
        except OSError:
            pass

    def downstream(self) -> None:
        """Server to client; after an armed COMMIT, nothing more reaches the client."""
        try:
            while data := self._server.recv(65536):
                if self._cut_at_reply.is_set():
                    if _COMMIT in data:
                        self._drop()
                        return
                    continue
                self._client.sendall(data)
        except OSError:
            pass
