"""``kafkascope topology``: the map of services and topics from the traces of a time window."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Final

from kafkascope._reports.html import topology_page
from kafkascope._reports.http import PROMETHEUS_URL_ENV
from kafkascope._reports.terminal_text import SERVICE_COLUMNS
from kafkascope._reports.topology_build import build_topology
from kafkascope._reports.topology_render import (
    GROUP_COLUMNS,
    TOPIC_COLUMNS,
    render_mermaid,
    render_text,
)

DESCRIPTION: Final = """\
Read the traces Jaeger holds for the last --since seconds and print the map they draw:
service -> topic (PRODUCER spans) and topic -> service (CONSUMER process spans), each edge
with messages/s, p95 duration (processing for consumers, send for producers) and error rate.
With --prometheus (or $KAFKASCOPE_PROMETHEUS_URL) those figures come from Prometheus where it
has the series, from the spans otherwise."""

EPILOG: Final = f"""\
The table and the flowchart show names with control characters escaped and cut with an
ellipsis (services to {SERVICE_COLUMNS} columns, topics to {TOPIC_COLUMNS}, groups to \
{GROUP_COLUMNS}); --json has them in full."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression: {text!r}: {exc}") from None


def add_arguments(
    parser: argparse.ArgumentParser,
    *,
    seconds: Callable[[str], float],
    output_file: Callable[[str], Path],
) -> None:
    """The topology command's own options (``--jaeger`` and ``--timeout`` are the caller's)."""
    parser.add_argument(
        "--since",
        metavar="SECONDS",
        type=seconds,
        default=300.0,
        help="the window: traces of the last SECONDS (default: 300)",
    )
    parser.add_argument(
        "--limit",
        metavar="N",
        type=_positive_int,
        default=500,
        help="at most N traces per service from Jaeger's search (default: 500)",
    )
    parser.add_argument(
        "--topics",
        metavar="REGEX",
        type=_regex,
        help="only the edges of topics whose name matches REGEX (re.search)",
    )
    parser.add_argument(
        "--prometheus",
        metavar="URL",
        default=os.environ.get(PROMETHEUS_URL_ENV) or None,
        help=f"Prometheus for the figures (default: ${PROMETHEUS_URL_ENV}; none: from spans)",
    )
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the map as JSON")
    shown.add_argument("--mermaid", action="store_true", help="print a Mermaid flowchart")
    parser.add_argument(
        "--html",
        metavar="FILE",
        type=output_file,
        help="also write the map as a self-contained page",
    )


def run(args: argparse.Namespace, *, write: Callable[[Path, str], None]) -> int:
    """Print the topology as the options ask; ``write(path, page)`` for ``--html``. Returns the
    exit status.

    Raises:
        BackendError: Jaeger cannot be read.
    """
    topology = build_topology(
        args.jaeger,
        since=args.since,
        limit=args.limit,
        timeout=args.timeout,
        prometheus_url=args.prometheus,
        topics=args.topics,
    )
    if args.json:
        print(json.dumps(topology.to_json(), indent=2))
    elif args.mermaid:
        print(render_mermaid(topology))
    else:
        print(f"topology: {render_text(topology)}")
    if args.html is not None:
        write(args.html, topology_page(topology))
    return 0
