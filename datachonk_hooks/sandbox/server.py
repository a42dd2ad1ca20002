"""The simulator's HTTP server: real sockets on 127.0.0.1, keep-alive like the real service,
and the faults that happen on the connection (resets, drops, slow and dripping answers);
https too, given a TLS context (`tls`).

It knows nothing of dbt Cloud: each request goes to a `Desk` (the `Sandbox`) that says
which fault to play, records the request and makes the answer.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from datachonk_hooks.sandbox.wire import _GATEWAY_TIMEOUT, _Fault, _Incoming, _Response


class Desk(Protocol):
    """What the server asks of the simulator for each request."""

    def take_fault(self, method: str, path: str) -> _Fault | None: ...

    def record(self, incoming: _Incoming, body: object | None) -> None: ...

    def respond(self, incoming: _Incoming, fault: _Fault | None) -> _Response: ...


class Server(ThreadingHTTPServer):
    """Remembers open connections, so `stop()` cuts keep-alive clients off too."""

    daemon_threads = True
    request_queue_size = 128  # many clients at once must queue, not be refused

    def __init__(
        self, address: tuple[str, int], desk: Desk, tls: ssl.SSLContext | None = None
    ) -> None:
        self.desk = desk
        self.tls = tls
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        """With TLS, the handshake happens here, in the connection's own thread, so a slow or
        distrustful client never holds up the accept loop; a failed handshake is an OSError
        (`handle_error` keeps quiet about it)."""
        if self.tls is None or not isinstance(request, socket.socket):
            super().finish_request(request, client_address)
            return
        connection = self.tls.wrap_socket(request, server_side=True)  # detaches `request`
        try:
            super().finish_request(connection, client_address)
        finally:
            self.shutdown_request(connection)

    def cut_connections(self) -> None:
        with self.connections_lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    # the plain socket's shutdown: an SSLSocket's own would drop its TLS
                    # state under the handler's feet, which then fails with a ValueError
                    socket.socket.shutdown(connection, socket.SHUT_RDWR)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        """A client that hung up (timeouts, dropped faults) is normal here, not an error."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients use against the real service
    disable_nagle_algorithm = True  # headers and body go out apart: no 40 ms delayed-ACK stall
    server: Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests and the demo read `Sandbox.requests` instead."""

    def do_GET(self) -> None:
        desk = self.server.desk
        parts = urlsplit(self.path)
        fault = desk.take_fault(self.command, parts.path)
        kind = fault.kind if fault is not None else ""
        length = 0 if kind == "reset" else int(self.headers.get("Content-Length") or 0)
        incoming = _Incoming(
            self.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            self.headers.get("Authorization"),
            self.headers.get("Content-Type", ""),
            self.rfile.read(length),
        )
        if kind == "reset":  # nothing read, nothing done: the client sees a reset connection
            desk.record(incoming, None)
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        if fault is not None and kind == "slow":
            time.sleep(fault.option("delay", 5.0))
        response = desk.respond(incoming, fault)
        if kind == "drop_after_create":  # done, but the answer is lost on its way back
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if kind == "504_after_create":  # done, but a gateway gave up waiting and says so
            response = _Response(504, _GATEWAY_TIMEOUT, content_type="text/html")
        if fault is not None and kind == "drip":
            self._drip(response, fault)
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _drip(self, response: _Response, fault: _Fault) -> None:
        """Send the answer a byte at a time: each read on the client's side gets data in
        time, so only a deadline for the whole answer ends the wait. Ends when the client
        hangs up (the write fails) or the sandbox stops (its connections are cut)."""
        self.close_connection = True
        head = [f"HTTP/1.1 {response.status} {self.responses.get(response.status, ('',))[0]}"]
        head += [f"Content-Type: {response.content_type}", f"Content-Length: {len(response.body)}"]
        head += [f"{name}: {value}" for name, value in response.headers]
        head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        interval = fault.option("interval", 1.0)
        if fault.option("body_only", 0):
            self.wfile.write(head_bytes)
            self.wfile.flush()
            head_bytes = b""
        for byte in head_bytes + response.body:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(interval)
