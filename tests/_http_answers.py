"""A real HTTP server on 127.0.0.1 that answers GETs from a table, for the tests of the code
that asks Jaeger and Prometheus (and devstack's own GET)."""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answers:
    """What the server answers a path (the query left out): ``(status, body)``; 404 and an
    empty body for any other path. ``requests`` lists every path asked, query included."""

    url: str = ""
    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


@contextlib.contextmanager
def answering(routes: dict[str, tuple[int, bytes]]) -> Iterator[Answers]:
    """Serve ``routes`` until the block ends; the server is shut down and closed after it."""
    answers = Answers(routes=routes)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answers.requests.append(self.path)
            path = urllib.parse.urlsplit(self.path).path
            status, body = answers.routes.get(path, (404, b""))
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
