"""The topology of a time window, read from Jaeger's traces and, where it has the series,
Prometheus's figures: :func:`build_topology`."""

from __future__ import annotations

import re
import sys
import time

from kafkascope._reports.backends import jaeger_traces, prometheus_query, prometheus_ready
from kafkascope._reports.http import HINTS, base_url
from kafkascope._reports.terminal_text import printable
from kafkascope._reports.topology import (
    Topology,
    only_topics,
    topology_from_jaeger,
    with_prometheus,
)


def build_topology(
    jaeger_url: str,
    *,
    since: float,
    limit: int,
    timeout: float,
    prometheus_url: str | None = None,
    topics: re.Pattern[str] | None = None,
    now: float | None = None,
) -> Topology:
    """The topology of the last ``since`` seconds up to ``now`` (default: the current time).

    With ``topics``, only the edges of the topics it matches (``re.search``) are kept.

    Raises:
        ValueError: a URL is not http(s).
        BackendError: Jaeger cannot be read. An unreachable Prometheus is only noted on stderr
            (with where to set its address), and the figures come from the spans.
    """
    jaeger = base_url(jaeger_url, what="Jaeger")
    prometheus = base_url(prometheus_url, what="Prometheus") if prometheus_url else None
    end = time.time() if now is None else now
    traces = jaeger_traces(
        jaeger,
        start_us=int((end - since) * 1e6),
        end_us=int(end * 1e6),
        limit=limit,
        timeout=timeout,
    )
    topology = topology_from_jaeger(traces, window_seconds=since)
    if topics is not None:
        topology = only_topics(topology, topics)
    if prometheus is not None:
        problem = prometheus_ready(prometheus, timeout=timeout)
        if problem is None:
            topology = with_prometheus(
                topology, prometheus_query(prometheus, at=end, timeout=timeout)
            )
        else:
            print(
                f"kafkascope: figures from spans only: {printable(problem)} "
                f"({HINTS['Prometheus']})",
                file=sys.stderr,
            )
    return topology
