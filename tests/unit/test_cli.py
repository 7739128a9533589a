"""The ``kafkascope`` command: ``settings``, ``trace`` and ``slowest``'s usage errors.

``trace`` is run against a small local HTTP server that answers like Jaeger's query service,
with a recorded answer of a real Jaeger v2.13 (``data/jaeger_trace.json``, see
tests/integration/test_cli_jaeger.py for the live version).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kafkascope import render_waterfall, rows_from_jaeger
from kafkascope.cli import (
    DEFAULT_JAEGER_URL,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    JAEGER_URL_ENV,
    build_parser,
    main,
)

FIXTURE = Path(__file__).resolve().parent / "data" / "jaeger_trace.json"
TRACE_ID = "26672ee3191fddb17c4b1ead62eb208c"
NOT_FOUND = (
    b'{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}'
)


@dataclass
class FakeJaeger:
    """Answers GET requests from a table of path -> (status, body, delay in seconds)."""

    url: str
    routes: dict[str, tuple[int, bytes, float]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def jaeger() -> Iterator[FakeJaeger]:
    fake = FakeJaeger(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append(self.path)
            status, body, delay = fake.routes.get(self.path, (404, NOT_FOUND, 0.0))
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    fake.routes[f"/api/traces/{TRACE_ID}"] = (200, FIXTURE.read_bytes(), 0.0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_settings_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "settings")
    assert status == EXIT_OK
    assert json.loads(out)["parent"] == "producer"
    assert json.loads(out)["poison_attempts"] == 3


def test_settings_shows_the_poison_threshold_and_refuses_a_bad_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_POISON_ATTEMPTS", "5")
    assert json.loads(run(capsys, "settings")[1])["poison_attempts"] == 5
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_POISON_ATTEMPTS", "many")
    status, _, err = run(capsys, "settings")
    assert status != EXIT_OK
    assert "OTEL_PYTHON_KAFKASCOPE_POISON_ATTEMPTS='many'" in err


def test_trace_prints_a_summary_line_then_the_waterfall(
    jaeger: FakeJaeger, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "trace", TRACE_ID, "--jaeger", jaeger.url)
    assert (status, err) == (EXIT_OK, "")
    first, rest = out.split("\n", 1)
    assert first.startswith(f"trace {TRACE_ID}: 8 spans, ")
    assert first.endswith(" ms, services audit, billing, orders")
    expected = render_waterfall(rows_from_jaeger(json.loads(FIXTURE.read_text())["data"][0]))
    assert rest == expected + "\n"
    # What the waterfall is, independently of the renderer: one line per span, as a tree.
    lines = rest.splitlines()
    assert len(lines) == 8
    assert lines[0].startswith("orders: POST /orders ")
    assert lines[1].startswith("  orders: send orders ")
    assert lines[-1].startswith("      audit: process orders ")
    assert jaeger.requests == [f"/api/traces/{TRACE_ID}"]


def test_trace_json_prints_the_rows_in_start_order(
    jaeger: FakeJaeger, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "trace", TRACE_ID, "--jaeger", jaeger.url, "--json")
    rows = json.loads(out)
    assert status == EXIT_OK
    assert [row["start_ns"] for row in rows] == sorted(row["start_ns"] for row in rows)
    assert set(rows[0]) == {
        "span_id",
        "parent_id",
        "service",
        "name",
        "start_ns",
        "end_ns",
        "error",
        "links",
    }
    assert rows[0] == {
        "span_id": "675e79259361103a",
        "parent_id": None,
        "service": "orders",
        "name": "POST /orders",
        "start_ns": 1795581595745888000,
        "end_ns": 1795581595747391000,
        "error": False,
        "links": [],
    }
    batch = next(row for row in rows if row["service"] == "audit" and row["name"] != "poll orders")
    assert len(batch["links"]) == 2


def test_trace_id_is_matched_case_insensitively(
    jaeger: FakeJaeger, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, _ = run(capsys, "trace", TRACE_ID.upper(), "--jaeger", jaeger.url + "/")
    assert status == EXIT_OK
    assert jaeger.requests == [f"/api/traces/{TRACE_ID}"]


def test_jaeger_url_comes_from_the_environment(
    jaeger: FakeJaeger, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(JAEGER_URL_ENV, jaeger.url)
    status, _, _ = run(capsys, "trace", TRACE_ID)
    assert status == EXIT_OK
    assert jaeger.requests == [f"/api/traces/{TRACE_ID}"]


def test_jaeger_url_defaults_to_the_local_query_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(JAEGER_URL_ENV, raising=False)
    args = build_parser().parse_args(["trace", TRACE_ID])
    assert args.jaeger == DEFAULT_JAEGER_URL == "http://127.0.0.1:16686"


def test_jaeger_behind_a_path_prefix(
    jaeger: FakeJaeger, capsys: pytest.CaptureFixture[str]
) -> None:
    jaeger.routes[f"/jaeger/api/traces/{TRACE_ID}"] = (200, FIXTURE.read_bytes(), 0.0)
    status, _, _ = run(capsys, "trace", TRACE_ID, "--jaeger", f"{jaeger.url}/jaeger/")
    assert status == EXIT_OK


def test_unknown_trace_exits_1_with_jaegers_reason(
    jaeger: FakeJaeger, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "trace", "abc123", "--jaeger", jaeger.url)
    assert (status, out) == (EXIT_NOT_FOUND, "")
    assert err == f"kafkascope: Jaeger at {jaeger.url} has no trace abc123 (trace not found)\n"


def test_an_empty_answer_is_not_found(
    jaeger: FakeJaeger, capsys: pytest.CaptureFixture[str]
) -> None:
    jaeger.routes["/api/traces/abc123"] = (200, b'{"data":[],"errors":null}', 0.0)
    status, _, err = run(capsys, "trace", "abc123", "--jaeger", jaeger.url)
    assert status == EXIT_NOT_FOUND
    assert "has no trace abc123" in err


@pytest.mark.parametrize(
    ("status_code", "body", "message"),
    [
        (
            500,
            b'{"errors":[{"code":500,"msg":"storage down"}]}',
            "answered 500 for trace abc123: storage down",
        ),
        (
            502,
            b"<html>Bad Gateway</html>",
            "answered 502 for trace abc123: <html>Bad Gateway</html>",
        ),
        (200, b"<html>Grafana</html>", "did not answer JSON; is "),
        (200, b'{"data":[{"spans":"?","processes":{}}]}', "unexpected trace from Jaeger"),
        (200, b'{"data":["?"]}', "unexpected answer from"),
    ],
)
def test_unusable_answers_exit_3(
    jaeger: FakeJaeger,
    capsys: pytest.CaptureFixture[str],
    status_code: int,
    body: bytes,
    message: str,
) -> None:
    jaeger.routes["/api/traces/abc123"] = (status_code, body, 0.0)
    status, out, err = run(capsys, "trace", "abc123", "--jaeger", jaeger.url)
    assert (status, out) == (EXIT_UNAVAILABLE, "")
    assert err.startswith("kafkascope: ")
    assert message in err


def test_a_slow_jaeger_times_out_with_exit_3(
    jaeger: FakeJaeger, capsys: pytest.CaptureFixture[str]
) -> None:
    jaeger.routes["/api/traces/abc123"] = (200, b"{}", 2.0)
    started = time.monotonic()
    status, _, err = run(capsys, "trace", "abc123", "--jaeger", jaeger.url, "--timeout", "0.2")
    assert status == EXIT_UNAVAILABLE
    assert time.monotonic() - started < 1.5
    assert f"cannot reach Jaeger at {jaeger.url}: " in err
    assert "timed out" in err


def test_nothing_listening_exits_3_and_says_where_to_set_the_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    status, _, err = run(capsys, "trace", "abc123", "--jaeger", url)
    assert status == EXIT_UNAVAILABLE
    assert f"kafkascope: cannot reach Jaeger at {url}: " in err
    assert f"set --jaeger URL or {JAEGER_URL_ENV}" in err


@pytest.mark.parametrize("trace_id", ["xyz", "0x12", "1" * 33, "", "12 34"])
def test_a_malformed_trace_id_exits_2(trace_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "trace", trace_id, "--jaeger", "http://127.0.0.1:9")
    assert status == EXIT_USAGE
    assert "not a trace id (1 to 32 hex digits)" in err


@pytest.mark.parametrize("url", ["127.0.0.1:16686", "ftp://jaeger", "http://"])
def test_a_malformed_jaeger_url_exits_2(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "trace", "abc123", "--jaeger", url)
    assert status == EXIT_USAGE
    assert f"not an http(s) URL for Jaeger: {url!r}" in err


@pytest.mark.parametrize("timeout", ["0", "-1", "soon"])
def test_a_bad_timeout_is_a_usage_error(timeout: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["trace", "abc123", "--timeout", timeout])
    assert exited.value.code == EXIT_USAGE
    assert "--timeout" in capsys.readouterr().err


def test_bad_slowest_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["slowest", "--window", "soon"]) == EXIT_USAGE
    assert main(["slowest", "--prometheus", "ftp://x"]) == EXIT_USAGE
    assert "not an http(s) URL for Prometheus" in capsys.readouterr().err
