"""From a latency histogram in Prometheus to the trace of one slow message: its exemplars.

:func:`fetch_exemplars` asks Prometheus's ``/api/v1/query_exemplars`` for the exemplars of a
histogram's buckets over a window; :func:`slowest` picks, in the slowest bucket that has any, the
slowest exemplar. Each carries the ``trace_id`` of the process span it was recorded in (the
Collector's prometheus exporter serves them in OpenMetrics; Prometheus keeps them with
``--enable-feature=exemplar-storage``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from kafkascope._reports.backends import prometheus_exemplars
from kafkascope._reports.terminal_text import printable
from kafkascope._reports.untrusted_json import mapping, mappings, text

METRICS: Final = {
    "pipeline-latency": "kafkascope_pipeline_latency_seconds",
    "processing-time": "messaging_process_duration_seconds",
    "time-in-queue": "kafkascope_message_time_in_queue_seconds",
}
"""Short names of kafkascope's histograms for ``kafkascope slowest --metric``, as Prometheus
names them."""

_WINDOW: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_METRIC_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_TRACE_ID: Final = re.compile(r"[0-9a-fA-F]{1,32}")
LABEL_COLUMNS: Final = 40
""":func:`describe` cuts each label value to this many columns."""
_DESCRIBED: Final = (
    ("service", "job"),
    ("group", "messaging_consumer_group_name"),
    ("topic", "messaging_destination_name"),
    ("origin", "kafkascope_pipeline_origin"),
)
DESCRIBE_COLUMNS: Final = len("-1.23e+300 s in bucket le=-1.23457e+300 s, ") + sum(
    len(f"{key}= ") + LABEL_COLUMNS for key, _ in _DESCRIBED
)
"""No line of :func:`describe` is wider than this."""


@dataclass(frozen=True)
class Exemplar:
    """One exemplar of a histogram bucket: the measurement and the trace it was taken in.

    Attributes:
        trace_id: the trace the measurement was taken in, in hex.
        span_id: the span current at the time, if Prometheus kept it.
        value: the measurement (seconds, for kafkascope's histograms).
        timestamp: when it was measured, in seconds since the epoch.
    """

    trace_id: str
    span_id: str | None
    value: float
    timestamp: float
    bucket: float
    """The bucket's upper bound (``le``), ``math.inf`` for the last."""
    series: Mapping[str, str]
    """The bucket series' labels (``job``, ``messaging_consumer_group_name``, ...)."""


def window_seconds(text: str) -> float:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"2d"`` as seconds.

    Raises:
        ValueError: not a positive duration in one of those units.
    """
    match = _WINDOW.fullmatch(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"not a duration such as 90s, 15m, 1h: {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def metric_name(choice: str) -> str:
    """A ``--metric`` choice (a short name of :data:`METRICS` or a histogram's Prometheus name,
    with or without ``_bucket``) as the histogram's Prometheus name.

    Raises:
        ValueError: neither.
    """
    name = METRICS.get(choice, choice)
    name = name.removesuffix("_bucket")
    if not _METRIC_NAME.fullmatch(name):
        raise ValueError(
            f"not a metric: {choice!r} (one of {', '.join(METRICS)}, or a histogram's name)"
        )
    return name


def _bound(value: object) -> float | None:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    try:
        bound = float(value)  # "+Inf" reads as inf
    except (ValueError, OverflowError):
        return None
    return None if math.isnan(bound) else bound


def parse_exemplars(data: object) -> list[Exemplar]:
    """The exemplars of a ``query_exemplars`` answer's ``data`` that carry a trace id (1 to 32
    hex digits) and a finite value; anything else in the answer is skipped."""
    out: list[Exemplar] = []
    for series in mappings(data):
        labels = series.get("seriesLabels")
        if not isinstance(labels, Mapping):
            continue
        bucket = _bound(labels.get("le"))
        if bucket is None:
            continue
        for exemplar in mappings(series.get("exemplars")):
            ex_labels = mapping(exemplar.get("labels"))
            trace_id = ex_labels.get("trace_id")
            value = _bound(exemplar.get("value"))
            if not isinstance(trace_id, str) or not _TRACE_ID.fullmatch(trace_id):
                continue
            if value is None or not math.isfinite(value):
                continue
            span_id = ex_labels.get("span_id")
            timestamp = _bound(exemplar.get("timestamp"))
            out.append(
                Exemplar(
                    trace_id=trace_id.lower(),
                    span_id=span_id if isinstance(span_id, str) else None,
                    value=value,
                    timestamp=timestamp if timestamp is not None else 0.0,
                    bucket=bucket,
                    series={text(k): text(v) for k, v in labels.items()},
                )
            )
    return out


def slowest(exemplars: Iterable[Exemplar]) -> Exemplar | None:
    """The slowest exemplar of the slowest bucket holding any.

    Args:
        exemplars: exemplars from :func:`fetch_exemplars`.

    Returns:
        That exemplar, or None when there are none.
    """
    return max(exemplars, key=lambda e: (e.bucket, e.value), default=None)


def fetch_exemplars(
    base_url: str, promql: str, *, start: float, end: float, timeout: float
) -> list[Exemplar]:
    """``GET {base_url}/api/v1/query_exemplars`` for ``promql`` over ``[start, end]`` and
    :func:`parse_exemplars` of the answer.

    Args:
        base_url: base URL of Prometheus, e.g. ``http://127.0.0.1:9090``.
        promql: the series to read exemplars of, e.g.
            ``kafkascope_pipeline_latency_seconds_bucket{job="billing"}``.
        start: start of the window, in seconds since the epoch.
        end: end of the window, in seconds since the epoch.
        timeout: seconds to wait for the answer.

    Returns:
        Every exemplar of the answer, with its series' labels.

    Raises:
        BackendError: Prometheus unreachable (``BackendUnreachableError``), or an error or
            non-JSON answer.
    """
    return parse_exemplars(
        prometheus_exemplars(base_url, promql, start=start, end=end, timeout=timeout)
    )


def describe(exemplar: Exemplar) -> str:
    """One line saying where the exemplar was measured (label values made printable, each at
    most :data:`LABEL_COLUMNS` wide).

    Args:
        exemplar: an exemplar from :func:`fetch_exemplars`.

    Returns:
        The line: service, group, topic, origin and bucket, as far as the labels say.
    """
    labels = exemplar.series
    parts = [
        f"{key}={printable(labels[name], limit=LABEL_COLUMNS)}"
        for key, name in _DESCRIBED
        if name in labels
    ]
    bucket = "+Inf" if math.isinf(exemplar.bucket) else f"{exemplar.bucket:g}"
    value = f"{exemplar.value:.3f}" if abs(exemplar.value) < 1e6 else f"{exemplar.value:.3g}"
    return f"{value} s in bucket le={bucket} s, {' '.join(parts)}"
