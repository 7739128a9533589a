"""The HTTP side of the health endpoint: a small server that no client can block.

Each connection is served on its own daemon thread and dropped after :data:`IDLE_TIMEOUT`
seconds of silence, so an idle connection (a port scan, a stuck proxy) never delays a probe. A
client that leaves before its answer is written is not an error: nothing reaches the user's
stderr. ``GET`` and ``HEAD`` answer on every path; the ``Server`` header says ``kafkascope``
only, never the Python version.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from typing import Any, Final, cast

from kafkascope._core import errors as _errors

IDLE_TIMEOUT: Final = 5.0
"""Seconds a connection may stay silent (or a write stay blocked) before it is dropped: a probe
sends its request at once and reads its answer at once."""

_JOIN_TIMEOUT: Final = 5.0

Answer = Callable[[], tuple[int, bytes]]
"""Computes a probe's answer: the status and the JSON body."""


class ProbeServer:
    """Serves ``answer`` over HTTP on ``(host, port)`` from daemon threads until :meth:`close`.

    Raises:
        OSError: the address cannot be bound.
    """

    def __init__(self, host: str, port: int, answer: Answer) -> None:
        self._server = _Server((host, port), _ProbeHandler, answer)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kafkascope-health", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop accepting, end the connections still open and wait (boundedly) for their threads."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=_JOIN_TIMEOUT)
        for thread in self._server.end_connections():
            thread.join(timeout=_JOIN_TIMEOUT)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[http.server.BaseHTTPRequestHandler],
        answer: Answer,
    ) -> None:
        self.answer = answer
        # Each open connection's socket and thread, so close() can end them.
        self._open: dict[Any, threading.Thread] = {}
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="kafkascope-health-probe",
            daemon=True,
        )
        with self._open_lock:
            self._open[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def end_connections(self) -> list[threading.Thread]:
        """Shut down every open connection (its thread then sees the end of the stream)."""
        with self._open_lock:  # held so no socket is shut down after its thread closed it
            for connection in self._open:
                with contextlib.suppress(OSError):  # already reset by the client
                    connection.shutdown(socket.SHUT_RDWR)
            return list(self._open.values())

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is None or isinstance(exc, OSError):
            return  # the client left, reset or went silent: nothing the user must hear of
        _errors.report("consumer health endpoint", exc)


class _ProbeHandler(http.server.BaseHTTPRequestHandler):
    timeout = IDLE_TIMEOUT  # applied to the connection's socket by StreamRequestHandler

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, *, with_body: bool) -> None:
        status, body = cast(_Server, self.server).answer()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def version_string(self) -> str:
        return "kafkascope"

    def log_message(self, format: str, *args: Any) -> None:
        return  # probes every few seconds: no access log on the user's stderr
