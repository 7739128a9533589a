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

    Args:
        jaeger_url: base URL of Jaeger's HTTP API, e.g. ``http://127.0.0.1:16686``.
        since: how far back to read traces, in seconds.
        limit: at most this many traces per service.
        timeout: seconds to wait for each HTTP answer.
        prometheus_url: base URL of Prometheus, for messages/s, p95 and error rate; None to
            compute them from the spans.
        topics: keep only the edges of the topics this pattern matches.
        now: the end of the window, in seconds since the epoch (default: the current time).

    Returns:
        The map: one edge per service -> topic and topic -> service, with its figures.

    Examples:
        ```python
        topology = kafkascope.build_topology("http://127.0.0.1:16686", since=300)
        print(kafkascope.render_topology(topology))
        ```

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
