"""The ``kafkascope`` command: ``settings``, ``trace``, its words and its errors.

``trace`` is run against a small local HTTP server that answers like Jaeger's query service,
with a recorded answer of a real Jaeger v2.13 (``data/jaeger_trace.json``, see
tests/integration/test_cli_jaeger.py for the live version).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
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
    PROMETHEUS_URL_ENV,
    build_parser,
    main,
)
from tests._cli_process import run_kafkascope
from tests._http_answers import Answers, answering

FIXTURE = Path(__file__).resolve().parent / "data" / "jaeger_trace.json"
TRACE_ID = "26672ee3191fddb17c4b1ead62eb208c"
NOT_FOUND = (
    b'{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}'
)


@pytest.fixture
def jaeger() -> Iterator[Answers]:
    trace = {f"/api/traces/{TRACE_ID}": (200, FIXTURE.read_bytes())}
    with answering(trace, default=(404, NOT_FOUND)) as fake:
        yield fake


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
    jaeger: Answers, capsys: pytest.CaptureFixture[str]
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
    jaeger: Answers, capsys: pytest.CaptureFixture[str]
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
    jaeger: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, _ = run(capsys, "trace", TRACE_ID.upper(), "--jaeger", jaeger.url + "/")
    assert status == EXIT_OK
    assert jaeger.requests == [f"/api/traces/{TRACE_ID}"]


def test_jaeger_url_comes_from_the_environment(
    jaeger: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(JAEGER_URL_ENV, jaeger.url)
    status, _, _ = run(capsys, "trace", TRACE_ID)
    assert status == EXIT_OK
    assert jaeger.requests == [f"/api/traces/{TRACE_ID}"]


def test_jaeger_url_defaults_to_the_local_query_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(JAEGER_URL_ENV, raising=False)
    args = build_parser().parse_args(["trace", TRACE_ID])
    assert args.jaeger == DEFAULT_JAEGER_URL == "http://127.0.0.1:16686"


def test_jaeger_behind_a_path_prefix(jaeger: Answers, capsys: pytest.CaptureFixture[str]) -> None:
    jaeger.routes[f"/jaeger/api/traces/{TRACE_ID}"] = (200, FIXTURE.read_bytes())
    status, _, _ = run(capsys, "trace", TRACE_ID, "--jaeger", f"{jaeger.url}/jaeger/")
    assert status == EXIT_OK


def test_unknown_trace_exits_1_with_jaegers_reason(
    jaeger: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "trace", "abc123", "--jaeger", jaeger.url)
    assert (status, out) == (EXIT_NOT_FOUND, "")
    assert err == f"kafkascope: Jaeger at {jaeger.url} has no trace abc123 (trace not found)\n"


def test_an_empty_answer_is_not_found(jaeger: Answers, capsys: pytest.CaptureFixture[str]) -> None:
    jaeger.routes["/api/traces/abc123"] = (200, b'{"data":[],"errors":null}')
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
    jaeger: Answers,
    capsys: pytest.CaptureFixture[str],
    status_code: int,
    body: bytes,
    message: str,
) -> None:
    jaeger.routes["/api/traces/abc123"] = (status_code, body)
    status, out, err = run(capsys, "trace", "abc123", "--jaeger", jaeger.url)
    assert (status, out) == (EXIT_UNAVAILABLE, "")
    assert err.startswith("kafkascope: ")
    assert message in err


def test_a_slow_jaeger_times_out_with_exit_3(
    jaeger: Answers, capsys: pytest.CaptureFixture[str]
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


# ---------------------------------------------------------------- settings: no secrets printed

SECRETS = {
    "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer s3cr3t-bearer,x-api-key=s3cr3t-key",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "s3cr3t-bare-token",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://user:s3cr3t-pass@collector:4318/v1?k=s3cr3t-q",
    "OTEL_EXPORTER_JAEGER_PASSWORD": "s3cr3t-jaeger",
    "OTEL_SOMETHING_API_KEY": "s3cr3t-api",
}


def test_settings_redacts_header_values_and_credentials_in_urls():
    done = run_kafkascope(
        "settings", env={**SECRETS, "OTEL_SERVICE_NAME": "orders", "OTEL_TRACES_EXPORTER": "otlp"}
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert b"s3cr3t" not in done.stdout
    otel = json.loads(done.stdout)["otel"]
    assert otel["OTEL_EXPORTER_OTLP_HEADERS"] == "Authorization=<redacted>,x-api-key=<redacted>"
    assert otel["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] == "<redacted>"
    assert otel["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] == (
        "https://<redacted>@collector:4318/v1?k=<redacted>"
    )
    assert otel["OTEL_EXPORTER_JAEGER_PASSWORD"] == "<redacted>"
    assert otel["OTEL_SOMETHING_API_KEY"] == "<redacted>"
    # What carries no credential is shown as it is.
    assert otel["OTEL_SERVICE_NAME"] == "orders"
    assert otel["OTEL_TRACES_EXPORTER"] == "otlp"


def test_settings_shows_the_headers_to_capture_as_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS", "tenant,x-app-*,!x-internal-*")
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_CONVERSATION_ID_HEADER", "correlation-id")
    shown = json.loads(run(capsys, "settings")[1])
    assert shown["capture_headers"] == ["tenant", "x-app-*", "!x-internal-*"]
    assert shown["conversation_id_header"] == "correlation-id"
    assert shown["capture_sizes"] is False
    assert shown["otel"]["OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS"] == "tenant,x-app-*,!x-internal-*"


def test_settings_still_redacts_a_value_put_in_the_headers_to_capture(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS", "tenant,token=s3cr3t")
    out = run(capsys, "settings")[1]
    assert "s3cr3t" not in out
    assert json.loads(out)["otel"]["OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS"] == "tenant,<redacted>"


# ---------------------------------------------------------------- --html FILE


@pytest.mark.parametrize("command", ["trace", "topology"])
def test_html_to_a_directory_is_a_usage_error_without_a_traceback(command, tmp_path):
    argv = ["trace", TRACE_ID] if command == "trace" else ["topology"]
    done = run_kafkascope(*argv, "--jaeger", "http://127.0.0.1:9", "--html", str(tmp_path))
    assert done.returncode == EXIT_USAGE
    assert b"Traceback" not in done.stderr
    assert f"argument --html: {str(tmp_path)!r} is a directory, not a file".encode() in done.stderr


@pytest.mark.parametrize("command", ["trace", "topology"])
def test_html_into_a_missing_directory_is_a_usage_error_without_a_traceback(command, tmp_path):
    page = tmp_path / "missing" / "trace.html"
    argv = ["trace", TRACE_ID] if command == "trace" else ["topology"]
    done = run_kafkascope(*argv, "--jaeger", "http://127.0.0.1:9", "--html", str(page))
    assert done.returncode == EXIT_USAGE
    assert b"Traceback" not in done.stderr
    assert f"there is no directory {str(page.parent)!r}".encode() in done.stderr


def test_trace_html_writes_the_page_and_says_so(
    jaeger: Answers, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = tmp_path / "trace.html"
    status, _, err = run(capsys, "trace", TRACE_ID, "--jaeger", jaeger.url, "--html", str(page))
    assert status == EXIT_OK
    assert err == f"kafkascope: wrote {page}\n"
    assert page.read_text().startswith("<!DOCTYPE html>")


# ---------------------------------------------------------------- words


def test_main_help_describes_the_commands_and_exit_statuses():
    done = run_kafkascope("--help")
    assert done.returncode == EXIT_OK
    assert b"``" not in done.stdout
    for command in (b"settings", b"trace", b"topology", b"slowest"):
        assert command in done.stdout
    assert b"exit status: 0 done, 1 nothing found" in done.stdout


def test_settings_help_has_a_description_and_exit_statuses():
    done = run_kafkascope("settings", "--help")
    assert done.returncode == EXIT_OK
    assert b"Print, as JSON, the settings" in done.stdout
    assert b"Credentials are redacted" in done.stdout
    assert b"exit status: 0 shown, 2 an OTEL_PYTHON_KAFKASCOPE_* variable is invalid" in done.stdout


def _nothing_listening() -> str:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_unreachable_prometheus_says_where_to_set_the_url(capsys: pytest.CaptureFixture[str]):
    url = _nothing_listening()
    status, _, err = run(capsys, "slowest", "--prometheus", url, "--timeout", "5")
    assert status == EXIT_UNAVAILABLE
    assert f"kafkascope: cannot reach Prometheus at {url}: " in err
    assert f"(set --prometheus URL or {PROMETHEUS_URL_ENV}; Prometheus's port is 9090" in err


def test_topology_with_unreachable_jaeger_says_where_to_set_the_url(
    capsys: pytest.CaptureFixture[str],
):
    url = _nothing_listening()
    status, _, err = run(capsys, "topology", "--jaeger", url, "--timeout", "5")
    assert status == EXIT_UNAVAILABLE
    assert f"kafkascope: cannot reach Jaeger at {url}/api/services: " in err
    assert f"(set --jaeger URL or {JAEGER_URL_ENV}; Jaeger's query port is 16686" in err


def test_topology_with_unreachable_prometheus_notes_where_to_set_the_url(
    jaeger: Answers, capsys: pytest.CaptureFixture[str]
):
    jaeger.routes["/api/services"] = (200, b'{"data":[]}')
    url = _nothing_listening()
    argv = ["topology", "--jaeger", jaeger.url, "--prometheus", url, "--timeout", "5"]
    status, out, err = run(capsys, *argv)
    assert status == EXIT_OK
    assert out.startswith("topology: (no messaging spans")
    assert f"kafkascope: figures from spans only: cannot reach Prometheus at {url}" in err
    assert f"(set --prometheus URL or {PROMETHEUS_URL_ENV}; Prometheus's port is 9090" in err


# ---------------------------------------------------------------- what servers say is shown safely


def test_a_jaeger_error_message_reaches_stderr_escaped(
    jaeger: Answers, capsys: pytest.CaptureFixture[str]
):
    body = json.dumps({"errors": [{"code": 500, "msg": "down\x1b]0;pwned\x07\x1b[2J"}]})
    jaeger.routes["/api/traces/abc123"] = (500, body.encode())
    status, _, err = run(capsys, "trace", "abc123", "--jaeger", jaeger.url)
    assert status == EXIT_UNAVAILABLE
    assert "\x1b" not in err
    assert "answered 500 for trace abc123: down\\x1b]0;pwned\\x07\\x1b[2J" in err


def test_the_summary_line_escapes_service_names(
    jaeger: Answers, capsys: pytest.CaptureFixture[str]
):
    answer = json.loads(FIXTURE.read_text())
    answer["data"][0]["processes"]["p1"]["serviceName"] = "orders\x1b[2J"
    jaeger.routes["/api/traces/abc123"] = (200, json.dumps(answer).encode(), 0.0)
    status, out, _ = run(capsys, "trace", "abc123", "--jaeger", jaeger.url)
    assert status == EXIT_OK
    assert "\x1b" not in out
    assert "orders\\x1b[2J" in out.splitlines()[0]


def test_a_terminal_that_is_not_utf8_gets_escapes_not_a_traceback(jaeger: Answers):
    answer = json.loads(FIXTURE.read_text())
    answer["data"][0]["processes"]["p1"]["serviceName"] = "注文"
    jaeger.routes["/api/traces/abc123"] = (200, json.dumps(answer).encode(), 0.0)
    done = run_kafkascope(
        "trace", "abc123", "--jaeger", jaeger.url, env={"PYTHONIOENCODING": "ascii"}
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert b"\\u6ce8\\u6587: POST /orders" in done.stdout


def test_bad_slowest_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["slowest", "--window", "soon"]) == EXIT_USAGE
    assert main(["slowest", "--prometheus", "ftp://x"]) == EXIT_USAGE
    assert "not an http(s) URL for Prometheus" in capsys.readouterr().err
