"""A TCP proxy between the processes under test and PostgreSQL that fails on demand.

`cut()` drops every open connection and closes each new one at once (the client sees
"server closed the connection unexpectedly"), as a database restart or a network
partition would; `restore()` lets connections through again. The test's own engine
connects directly, so the database itself stays up for enqueueing and checking."""

from __future__ import annotations

import socket
import threading

from sqlalchemy.engine import make_url


class FaultProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self._server = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port = self._server.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._closed = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept, name="faultproxy", daemon=True).start()

    @classmethod
    def for_url(cls, url: str) -> FaultProxy:
        u = make_url(url)
        return cls(u.host or "127.0.0.1", u.port or 5432)

    def url(self, url: str) -> str:
        """The same database URL, through the proxy."""
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(False)

    def cut(self) -> None:
        with self._lock:  # atomic with _accept's registration: no connection slips past
            self._open.clear()
            doomed, self._sockets = self._sockets, set()
        for s in doomed:
            _close(s)

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._server)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._open.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                # A cut() that ran while this connection was being opened has already
                # swept the open sockets: this one must not survive the outage.
                admitted = self._open.is_set()
                if admitted:
                    self._sockets.update((client, upstream))
            if not admitted:
                _close(client)
                _close(upstream)
                continue
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if not self._open.is_set():
                    # Cut: nothing crosses any more, even on a socket that cut() has not
                    # closed yet (it closes them one by one): a query sent after the first
                    # connection died must not get an answer through a second one.
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(src)
                self._sockets.discard(dst)
            _close(src)
            _close(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
