"""The deadline of one HTTP exchange with dbt Cloud, kept by a watchdog thread.

requests' read timeout bounds each `recv`, not the whole answer: a server that sends a byte
a second would hold a request forever. Here the connection carrying an exchange registers
itself with it (through watched urllib3 pools mounted on the session), and a watchdog cuts
its socket when the deadline passes. Kept apart from the transport because it reaches into
urllib3's connection classes, which nothing else should know about.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any, Self

_current = threading.local()  # the exchange the calling thread is in, for its connection


class Exchange:
    """The deadline of one HTTP exchange, kept by a watchdog thread.

    requests' read timeout bounds each `recv`, not the answer: a server that sends a byte a
    second holds a request forever. The connection carrying the exchange registers itself
    here (`_watched_pool_classes`); if the deadline passes first, the watchdog shuts its
    socket down, which wakes the blocked read or write with an error at once.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.connection: object = None
        #: the connection's socket, kept: http.client hands it to the response and clears
        #: `connection.sock` once the headers are read when the answer ends by closing
        self.sock: socket.socket | None = None
        #: the watchdog cut the connection: whatever error follows is this deadline
        self.expired = False
        self._done = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        _current.exchange = self
        threading.Thread(target=self._watch, name="datachonk-http-deadline", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done.set()
        _current.exchange = None

    def _watch(self) -> None:
        wait = self.seconds
        while not self._done.wait(max(0.0, wait)):
            with self._lock:
                if self._done.is_set():
                    return
                sock = self.sock or getattr(self.connection, "sock", None)
                if isinstance(sock, socket.socket):
                    self.expired = True
                    with contextlib.suppress(OSError):  # socket.socket's, not SSLSocket's
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                    return
            wait = 0.05  # still connecting (the connect timeout bounds that): look again


def _register_connection(connection: object) -> None:
    exchange = getattr(_current, "exchange", None)
    if exchange is not None:
        exchange.connection = connection
        sock = getattr(connection, "sock", None)
        if isinstance(sock, socket.socket):
            exchange.sock = sock


_POOL_CLASSES: dict[str, type] = {}


def _watched_pool_classes() -> dict[str, type]:
    """urllib3 pools whose connections tell the current `Exchange` they carry it.

    Made on first use: importing urllib3 is left to the first request, like requests.
    """
    if not _POOL_CLASSES:
        from urllib3.connection import HTTPConnection, HTTPSConnection
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

        class WatchedHTTPConnection(HTTPConnection):
            def connect(self) -> None:
                _register_connection(self)
                super().connect()
                _register_connection(self)  # now with its socket

            def request(self, *args: Any, **kwargs: Any) -> None:
                _register_connection(self)  # a kept-alive connection is not connected again
                super().request(*args, **kwargs)

        class WatchedHTTPSConnection(HTTPSConnection):
            def connect(self) -> None:
                _register_connection(self)  # the TLS handshake is part of the exchange
                super().connect()
                _register_connection(self)  # now with its socket

            def request(self, *args: Any, **kwargs: Any) -> None:
                _register_connection(self)
                super().request(*args, **kwargs)

        class WatchedHTTPPool(HTTPConnectionPool):
            ConnectionCls = WatchedHTTPConnection

        class WatchedHTTPSPool(HTTPSConnectionPool):
            ConnectionCls = WatchedHTTPSConnection

        _POOL_CLASSES.update(http=WatchedHTTPPool, https=WatchedHTTPSPool)
    return _POOL_CLASSES


def watched_adapter() -> Any:
    """A requests adapter whose pools (direct or through an HTTP proxy) use watched
    connections, so every exchange's deadline can cut its socket."""
    from requests.adapters import HTTPAdapter
    from urllib3.connectionpool import HTTPConnectionPool

    class WatchedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = _watched_pool_classes()

        def proxy_manager_for(self, proxy: Any, **kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **kwargs)
            if manager.pool_classes_by_scheme.get("http") is HTTPConnectionPool:  # not SOCKS
                manager.pool_classes_by_scheme = _watched_pool_classes()
            return manager

    return WatchedAdapter()
