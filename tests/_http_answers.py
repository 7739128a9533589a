"""A real HTTP server on 127.0.0.1 that answers GETs from a table, for the tests of the code
that asks Jaeger and Prometheus (and devstack's own GET)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = tuple[int, bytes] | tuple[int, bytes, float]
"""``(status, body)``, or ``(status, body, seconds to wait before answering)``."""


@dataclass
class Answers:
    """What the server answers a path (the query left out): its route; ``default`` for any
    other path. ``requests`` lists every path asked, query included."""

    url: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    default: Route = (404, b"")


@contextlib.contextmanager
def answering(
    routes: Mapping[str, Route] | None = None, *, default: Route = (404, b"")
) -> Iterator[Answers]:
    """Serve ``routes`` until the block ends; the server is shut down and closed after it."""
    answers = Answers(routes=dict(routes or {}), default=default)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answers.requests.append(self.path)
            path = urllib.parse.urlsplit(self.path).path
            status, body, *delay = answers.routes.get(path, answers.default)
            if delay:
                time.sleep(delay[0])
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    answers.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield answers
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def nothing_listening() -> str:
    """The URL of a 127.0.0.1 port that was free a moment ago: nothing answers there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"
