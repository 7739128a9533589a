"""The ``kafkascope`` command."""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from kafkascope._core import settings as _settings
from kafkascope._core.semconv import SCHEMA_URL
from kafkascope._reports import slowest as _slowest
from kafkascope._reports import topology_cli as _topology_cli
from kafkascope._reports.backends import BackendError
from kafkascope._reports.html import trace_page
from kafkascope._reports.waterfall import SpanRow, render_waterfall, rows_from_jaeger
from kafkascope._version import __version__

DEFAULT_JAEGER_URL: Final = "http://127.0.0.1:16686"
JAEGER_URL_ENV: Final = "KAFKASCOPE_JAEGER_URL"
DEFAULT_PROMETHEUS_URL: Final = "http://127.0.0.1:9090"
PROMETHEUS_URL_ENV: Final = "KAFKASCOPE_PROMETHEUS_URL"

EXIT_OK: Final = 0
EXIT_NOT_FOUND: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNAVAILABLE: Final = 3

_TRACE_ID = re.compile(r"[0-9a-fA-F]{1,32}")
_TRACE_EPILOG = f"""\
exit status: {EXIT_OK} shown, {EXIT_NOT_FOUND} Jaeger has no such trace, {EXIT_USAGE} bad arguments,
{EXIT_UNAVAILABLE} Jaeger unreachable or its answer unusable."""


class _CommandError(Exception):
    """A failure to report on stderr, with the command's exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _settings_command(_: argparse.Namespace) -> int:
    try:
        settings = _settings.Settings.from_env(os.environ)
    except ValueError as exc:
        print(f"kafkascope: {exc}", file=sys.stderr)
        return 2
    shown = {
        "parent": settings.parent,
        "capture_key": settings.capture_key,
        "trust_baggage": settings.trust_baggage,
        "lag": settings.lag,
        "poison_attempts": settings.poison_attempts,
        "keep_contrib": settings.keep_contrib,
        "schema_url": SCHEMA_URL,
        "otel": {k: v for k, v in sorted(os.environ.items()) if k.startswith("OTEL_")},
    }
    print(json.dumps(shown, indent=2))
    return 0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def _jaeger_base_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _CommandError(
            f"not an http(s) URL for Jaeger: {url!r} (from --jaeger or {JAEGER_URL_ENV})",
            EXIT_USAGE,
        )
    return url.rstrip("/")


def _jaeger_errors(body: bytes) -> str:
    """The ``errors`` messages of a Jaeger API answer, else the start of the body."""
    try:
        answer = json.loads(body)
        messages = [str(e.get("msg", e)) for e in answer.get("errors") or []]
    except (ValueError, AttributeError):
        messages = []
    return "; ".join(messages) or body[:200].decode("utf-8", errors="replace").strip()


def fetch_jaeger_trace(base_url: str, trace_id: str, *, timeout: float) -> dict[str, Any]:
    """GET ``{base_url}/api/traces/{trace_id}`` and return the trace (``spans``, ``processes``).

    Raises:
        _CommandError: with :data:`EXIT_NOT_FOUND` if Jaeger has no such trace, with
            :data:`EXIT_UNAVAILABLE` if Jaeger cannot be reached or answers unexpectedly.
    """
    url = f"{base_url}/api/traces/{urllib.parse.quote(trace_id)}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as err:
        detail = _jaeger_errors(err.read())
        if err.code == 404:
            raise _CommandError(
                f"Jaeger at {base_url} has no trace {trace_id} ({detail})", EXIT_NOT_FOUND
            ) from None
        raise _CommandError(
            f"Jaeger at {base_url} answered {err.code} for trace {trace_id}: {detail}",
            EXIT_UNAVAILABLE,
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise _CommandError(
            f"cannot reach Jaeger at {base_url}: {reason or type(exc).__name__} "
            f"(set --jaeger URL or {JAEGER_URL_ENV}; Jaeger's query port is 16686 by default)",
            EXIT_UNAVAILABLE,
        ) from None
    try:
        answer = json.loads(body)
    except ValueError:
        raise _CommandError(
            f"{url} did not answer JSON; is {base_url} Jaeger's query service?", EXIT_UNAVAILABLE
        ) from None
    data = answer.get("data") if isinstance(answer, dict) else None
    if not data:
        raise _CommandError(
            f"Jaeger at {base_url} has no trace {trace_id} ({_jaeger_errors(body)})",
            EXIT_NOT_FOUND,
        )
    trace = data[0] if isinstance(data, list) else None
    if not isinstance(trace, dict):
        raise _CommandError(f"unexpected answer from {url}: {body[:200]!r}", EXIT_UNAVAILABLE)
    return trace


def _http_base_url(url: str, what: str, option: str, env: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _CommandError(
            f"not an http(s) URL for {what}: {url!r} (from {option} or {env})", EXIT_USAGE
        )
    return url.rstrip("/")


def _slowest_command(args: argparse.Namespace) -> int:
    try:
        metric = _slowest.metric_name(args.metric)
        window = _slowest.window_seconds(args.window)
    except ValueError as exc:
        raise _CommandError(str(exc), EXIT_USAGE) from None
    prometheus = _http_base_url(args.prometheus, "Prometheus", "--prometheus", PROMETHEUS_URL_ENV)
    jaeger = _jaeger_base_url(args.jaeger)
    end = time.time()
    try:
        found = _slowest.fetch_exemplars(
            prometheus, f"{metric}_bucket", start=end - window, end=end, timeout=args.timeout
        )
    except _slowest.PrometheusError as exc:
        raise _CommandError(str(exc), EXIT_UNAVAILABLE) from None
    chosen = _slowest.slowest(found)
    if chosen is None:
        raise _CommandError(
            f"Prometheus at {prometheus} has no exemplar of {metric} in the last {args.window} "
            "(exemplars need the Collector's prometheus exporter with enable_open_metrics and "
            "Prometheus with --enable-feature=exemplar-storage)",
            EXIT_NOT_FOUND,
        )
    print(f"slowest exemplar of {metric} in the last {args.window}: {_slowest.describe(chosen)}")
    print(f"trace {chosen.trace_id} (kafkascope trace {chosen.trace_id})")
    trace = fetch_jaeger_trace(jaeger, chosen.trace_id, timeout=args.timeout)
    try:
        rows = sorted(rows_from_jaeger(trace), key=lambda r: (r.start_ns, r.span_id))
    except ValueError as exc:
        raise _CommandError(
            f"unexpected trace from Jaeger at {jaeger}: {exc}", EXIT_UNAVAILABLE
        ) from None
    print(render_waterfall(rows))
    return EXIT_OK


def _row_json(row: SpanRow) -> dict[str, Any]:
    shown = dataclasses.asdict(row)
    shown["links"] = list(row.links)
    return shown


def _trace_command(args: argparse.Namespace) -> int:
    trace_id: str = args.trace_id.strip()
    if not _TRACE_ID.fullmatch(trace_id):
        raise _CommandError(f"not a trace id (1 to 32 hex digits): {trace_id!r}", EXIT_USAGE)
    trace_id = trace_id.lower()
    base_url = _jaeger_base_url(args.jaeger)
    trace = fetch_jaeger_trace(base_url, trace_id, timeout=args.timeout)
    try:
        rows = sorted(rows_from_jaeger(trace), key=lambda r: (r.start_ns, r.span_id))
    except ValueError as exc:
        raise _CommandError(
            f"unexpected trace from Jaeger at {base_url}: {exc}", EXIT_UNAVAILABLE
        ) from None
    if args.html is not None:
        args.html.write_text(trace_page(trace, trace_id=trace_id), encoding="utf-8")
        print(f"kafkascope: wrote {args.html}", file=sys.stderr)
    if args.json:
        print(json.dumps([_row_json(row) for row in rows], indent=2))
        return EXIT_OK
    services = sorted({row.service for row in rows})
    duration_ms = (max(r.end_ns for r in rows) - min(r.start_ns for r in rows)) / 1e6 if rows else 0
    print(
        f"trace {trace_id}: {len(rows)} spans, {duration_ms:.2f} ms, services {', '.join(services)}"
    )
    print(render_waterfall(rows))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``kafkascope`` command."""
    parser = argparse.ArgumentParser(prog="kafkascope", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kafkascope {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    settings = sub.add_parser(
        "settings", help="show the settings in force (OTEL_* and OTEL_PYTHON_KAFKASCOPE_*)"
    )
    settings.set_defaults(func=_settings_command)
    trace = sub.add_parser(
        "trace",
        help="fetch a trace from Jaeger and print it as a waterfall",
        description="Fetch a trace from Jaeger's HTTP API (/api/traces/{id}) and print it as a\n"
        "waterfall: one line per span, indented under its parent, with a bar on a shared\n"
        "time axis.",
        epilog=_TRACE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    trace.add_argument("trace_id", metavar="trace-id", help="the trace id, in hex")
    _add_jaeger_options(trace, timeout_for="Jaeger")
    trace.add_argument(
        "--json", action="store_true", help="print the spans as JSON rows instead of a waterfall"
    )
    trace.add_argument(
        "--html", metavar="FILE", type=Path, help="also write the trace as a self-contained page"
    )
    trace.set_defaults(func=_trace_command)
    _add_topology(sub)
    slowest = sub.add_parser(
        "slowest",
        help="show the trace of the slowest message Prometheus holds an exemplar of",
        description="Ask Prometheus (/api/v1/query_exemplars) for the exemplars of a latency\n"
        "histogram over a window, pick the slowest one of the slowest bucket, and print\n"
        "that message's trace from Jaeger as a waterfall.",
        epilog=f"exit status: {EXIT_OK} shown, {EXIT_NOT_FOUND} no exemplar in the window or "
        f"Jaeger has not that trace,\n{EXIT_USAGE} bad arguments, {EXIT_UNAVAILABLE} Prometheus or "
        "Jaeger unreachable or an answer unusable.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    slowest.add_argument(
        "--metric",
        default="pipeline-latency",
        help=f"{', '.join(_slowest.METRICS)} (default: pipeline-latency), or a histogram's "
        "Prometheus name",
    )
    slowest.add_argument(
        "--window", default="15m", help="how far back to look: 90s, 15m, 1h (default: 15m)"
    )
    slowest.add_argument(
        "--prometheus",
        metavar="URL",
        default=os.environ.get(PROMETHEUS_URL_ENV) or DEFAULT_PROMETHEUS_URL,
        help=f"Prometheus (default: ${PROMETHEUS_URL_ENV} or {DEFAULT_PROMETHEUS_URL})",
    )
    _add_jaeger_options(slowest, timeout_for="each server")
    slowest.set_defaults(func=_slowest_command)
    return parser


def _add_jaeger_options(parser: argparse.ArgumentParser, *, timeout_for: str) -> None:
    """``--jaeger URL`` and ``--timeout SECONDS``, shared by the commands that read Jaeger."""
    parser.add_argument(
        "--jaeger",
        metavar="URL",
        default=os.environ.get(JAEGER_URL_ENV) or DEFAULT_JAEGER_URL,
        help=f"Jaeger's query service (default: ${JAEGER_URL_ENV} or {DEFAULT_JAEGER_URL})",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_seconds,
        default=10.0,
        help=f"give up on {timeout_for} after this long (default: 10)",
    )


def _topology_command(args: argparse.Namespace) -> int:
    try:
        return _topology_cli.run(args)
    except ValueError as exc:
        raise _CommandError(str(exc), EXIT_USAGE) from None
    except BackendError as exc:
        raise _CommandError(str(exc), EXIT_UNAVAILABLE) from None


def _add_topology(sub: Any) -> None:
    topology = sub.add_parser(
        "topology",
        help="print the map service -> topic -> service from the traces of a time window",
        description=_topology_cli.DESCRIPTION,
        epilog=f"exit status: {EXIT_OK} shown, {EXIT_USAGE} bad arguments, {EXIT_UNAVAILABLE} "
        "Jaeger unreachable or its answer unusable.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_jaeger_options(topology, timeout_for="each request")
    _topology_cli.add_arguments(topology, seconds=_positive_seconds)
    topology.set_defaults(func=_topology_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kafkascope`` command."""
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except _CommandError as exc:
        print(f"kafkascope: {exc}", file=sys.stderr)
        return exc.status
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
