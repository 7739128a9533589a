"""The ``kafkascope`` command: what a service's telemetry says, read back from Jaeger and
Prometheus, and the settings a service started here would run with."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from kafkascope._core import settings as _settings
from kafkascope._core.header_capture import HeaderCapture
from kafkascope._core.semconv import SCHEMA_URL
from kafkascope._reports import slowest as _slowest
from kafkascope._reports import topology_cli as _topology_cli
from kafkascope._reports.backends import jaeger_trace
from kafkascope._reports.html import trace_page
from kafkascope._reports.http import DEFAULT_JAEGER_URL as DEFAULT_JAEGER_URL
from kafkascope._reports.http import DEFAULT_PROMETHEUS_URL as DEFAULT_PROMETHEUS_URL
from kafkascope._reports.http import (
    HINTS,
    Backend,
    BackendError,
    BackendUnreachableError,
    NotFoundError,
    base_url,
)
from kafkascope._reports.http import JAEGER_URL_ENV as JAEGER_URL_ENV
from kafkascope._reports.http import PROMETHEUS_URL_ENV as PROMETHEUS_URL_ENV
from kafkascope._reports.redaction import REDACTED, otel_environment
from kafkascope._reports.terminal_text import SERVICE_COLUMNS, printable
from kafkascope._reports.waterfall import (
    MAX_DEPTH,
    NAME_COLUMNS,
    SpanRow,
    render_summary,
    render_waterfall,
    rows_from_jaeger,
)
from kafkascope._version import __version__

EXIT_OK: Final = 0
EXIT_NOT_FOUND: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNAVAILABLE: Final = 3

_TRACE_ID = re.compile(r"[0-9a-fA-F]{1,32}")
_WATERFALL_NOTE = f"""\
The waterfall shows names with control characters escaped and cut with an ellipsis (services
to {SERVICE_COLUMNS} columns, spans to {NAME_COLUMNS}); spans deeper than {MAX_DEPTH} levels are \
counted on one line;
spans whose parents form a cycle follow the others, marked "(parent cycle)"."""
_TRACE_EPILOG = f"""\
{_WATERFALL_NOTE} --json has every span in full.

exit status: {EXIT_OK} shown, {EXIT_NOT_FOUND} Jaeger has no such trace, {EXIT_USAGE} bad arguments
(an --html FILE that cannot be written included), {EXIT_UNAVAILABLE} Jaeger unreachable or its
answer unusable."""
_MAIN_DESCRIPTION = """\
Read back what kafkascope's services sent: a trace from Jaeger as a waterfall (trace), the
map of services and topics (topology), the trace of the slowest message a latency histogram
in Prometheus has an exemplar of (slowest); and show the settings a service would start with
(settings)."""
_MAIN_EPILOG = f"""\
Run `kafkascope COMMAND --help` for a command's options.

exit status: {EXIT_OK} done, {EXIT_NOT_FOUND} nothing found (no such trace, no exemplar),
{EXIT_USAGE} bad arguments or settings, {EXIT_UNAVAILABLE} Jaeger or Prometheus unreachable or an
answer unusable."""
_SETTINGS_DESCRIPTION = """\
Print, as JSON, the settings a kafkascope service started with this environment would use:
the OTEL_PYTHON_KAFKASCOPE_* options (parent policy, key capture, baggage trust, lag gauge,
poison threshold), the schema URL, and every OTEL_* variable. Credentials are redacted:
variables named like a secret (PASSWORD, SECRET, TOKEN, CREDENTIAL, AUTH, API_KEY,
PRIVATE_KEY) entirely, header lists (*_HEADERS) down to their header names, and in URLs the
user information, query values and fragment."""
_SETTINGS_EPILOG = f"""\
exit status: {EXIT_OK} shown, {EXIT_USAGE} an OTEL_PYTHON_KAFKASCOPE_* variable is invalid (named on
stderr)."""


class _CommandError(Exception):
    """A failure to report on stderr, with the command's exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _settings_command(_: argparse.Namespace) -> int:
    try:
        settings = _settings.Settings.from_env(os.environ)
    except ValueError as exc:
        print(f"kafkascope: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    shown = {
        "parent": settings.parent,
        "capture_key": settings.capture_key,
        "trust_baggage": settings.trust_baggage,
        "lag": settings.lag,
        "poison_attempts": settings.poison_attempts,
        "keep_contrib": settings.keep_contrib,
        "commit_spans": settings.commit_spans,
        "capture_headers": [
            REDACTED if "=" in pattern else pattern  # a name=value pair is no name
            for pattern in (settings.capture_headers or HeaderCapture(())).patterns
        ],
        "conversation_id_header": settings.conversation_id_header,
        "capture_sizes": settings.capture_sizes,
        "schema_url": SCHEMA_URL,
        "otel": otel_environment(os.environ),
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


def _output_file(value: str) -> Path:
    """An ``--html FILE`` that can be written: not a directory, in a directory that exists."""
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is a directory, not a file")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r}: there is no directory {str(path.parent)!r}")
    return path


def write_page(path: Path, page: str) -> None:
    """Write ``page`` to ``path`` (``--html``) and say so on stderr.

    Raises:
        _CommandError: with :data:`EXIT_USAGE` if the file cannot be written.
    """
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise _CommandError(
            f"cannot write --html {str(path)!r}: {exc.strerror or exc}", EXIT_USAGE
        ) from None
    print(f"kafkascope: wrote {printable(path)}", file=sys.stderr)


def _backend_failure(exc: BackendError) -> _CommandError:
    """What the command says and exits with when Jaeger or Prometheus fails it."""
    if isinstance(exc, NotFoundError):
        return _CommandError(str(exc), EXIT_NOT_FOUND)
    if isinstance(exc, BackendUnreachableError):
        return _CommandError(f"{exc} ({HINTS[exc.backend]})", EXIT_UNAVAILABLE)
    return _CommandError(str(exc), EXIT_UNAVAILABLE)


def _url(value: str, *, what: Backend, option: str) -> str:
    try:
        return base_url(value, what=what, option=option)
    except ValueError as exc:
        raise _CommandError(str(exc), EXIT_USAGE) from None


def _slowest_command(args: argparse.Namespace) -> int:
    try:
        metric = _slowest.metric_name(args.metric)
        window = _slowest.window_seconds(args.window)
    except ValueError as exc:
        raise _CommandError(str(exc), EXIT_USAGE) from None
    prometheus = _url(args.prometheus, what="Prometheus", option="--prometheus")
    jaeger = _url(args.jaeger, what="Jaeger", option="--jaeger")
    end = time.time()
    found = _slowest.fetch_exemplars(
        prometheus, f"{metric}_bucket", start=end - window, end=end, timeout=args.timeout
    )
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
    rows = _rows(jaeger_trace(jaeger, chosen.trace_id, timeout=args.timeout), jaeger=jaeger)
    print(render_waterfall(rows))
    return EXIT_OK


def _rows(trace: dict[str, Any], *, jaeger: str) -> list[SpanRow]:
    """The trace's spans as rows in start order."""
    try:
        return sorted(rows_from_jaeger(trace), key=lambda r: (r.start_ns, r.span_id))
    except ValueError as exc:
        raise _CommandError(
            f"unexpected trace from Jaeger at {jaeger}: {exc}", EXIT_UNAVAILABLE
        ) from None


def _row_json(row: SpanRow) -> dict[str, Any]:
    shown = dataclasses.asdict(row)
    shown["links"] = list(row.links)
    return shown


def _trace_command(args: argparse.Namespace) -> int:
    trace_id: str = args.trace_id.strip()
    if not _TRACE_ID.fullmatch(trace_id):
        raise _CommandError(f"not a trace id (1 to 32 hex digits): {trace_id!r}", EXIT_USAGE)
    trace_id = trace_id.lower()
    jaeger = _url(args.jaeger, what="Jaeger", option="--jaeger")
    trace = jaeger_trace(jaeger, trace_id, timeout=args.timeout)
    rows = _rows(trace, jaeger=jaeger)
    if args.html is not None:
        write_page(args.html, trace_page(trace, trace_id=trace_id))
    if args.json:
        print(json.dumps([_row_json(row) for row in rows], indent=2))
        return EXIT_OK
    print(render_summary(rows, trace_id=trace_id))
    print(render_waterfall(rows))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``kafkascope`` command."""
    parser = argparse.ArgumentParser(
        prog="kafkascope",
        description=_MAIN_DESCRIPTION,
        epilog=_MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kafkascope {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    settings = sub.add_parser(
        "settings",
        help="show the settings in force (OTEL_PYTHON_KAFKASCOPE_* and OTEL_*, secrets redacted)",
        description=_SETTINGS_DESCRIPTION,
        epilog=_SETTINGS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        "--html",
        metavar="FILE",
        type=_output_file,
        help="also write the trace as a self-contained page",
    )
    trace.set_defaults(func=_trace_command)
    _add_topology(sub)
    slowest = sub.add_parser(
        "slowest",
        help="show the trace of the slowest message Prometheus holds an exemplar of",
        description="Ask Prometheus (/api/v1/query_exemplars) for the exemplars of a latency\n"
        "histogram over a window, pick the slowest one of the slowest bucket, and print\n"
        "that message's trace from Jaeger as a waterfall.",
        epilog=f"{_WATERFALL_NOTE}\n\n"
        f"exit status: {EXIT_OK} shown, {EXIT_NOT_FOUND} no exemplar in the window or "
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
    args.jaeger = _url(args.jaeger, what="Jaeger", option="--jaeger")
    if args.prometheus:
        args.prometheus = _url(args.prometheus, what="Prometheus", option="--prometheus")
    return _topology_cli.run(args, write=write_page)


def _add_topology(sub: Any) -> None:
    topology = sub.add_parser(
        "topology",
        help="print the map service -> topic -> service from the traces of a time window",
        description=_topology_cli.DESCRIPTION,
        epilog=f"{_topology_cli.EPILOG}\n\n"
        f"exit status: {EXIT_OK} shown, {EXIT_USAGE} bad arguments (an --html FILE that cannot be "
        f"written included),\n{EXIT_UNAVAILABLE} Jaeger unreachable or its answer unusable (an "
        "unreachable Prometheus is only noted).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_jaeger_options(topology, timeout_for="each request")
    _topology_cli.add_arguments(topology, seconds=_positive_seconds, output_file=_output_file)
    topology.set_defaults(func=_topology_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kafkascope`` command."""
    for stream in (sys.stdout, sys.stderr):
        # A terminal that is not UTF-8 gets what it cannot show as \u escapes, not a traceback.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except BackendError as exc:
        return _failed(_backend_failure(exc))
    except _CommandError as exc:
        return _failed(exc)
    return result


def _failed(exc: _CommandError) -> int:
    # Messages quote what servers answered: shown, never acted on by the terminal.
    print(f"kafkascope: {printable(exc)}", file=sys.stderr)
    return exc.status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
