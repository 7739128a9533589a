"""The pipeline's map, read from traces: service -> topic -> service, with figures per edge.

A PRODUCER span with ``messaging.destination.name`` is a ``service -> topic`` edge; a CONSUMER
span of the ``process`` operation is a ``topic -> service`` edge (its consumer group, when the
span names one, is kept). Per-message process spans are counted; a batch span
(``messaging.batch.message_count``) counts its messages only for a service and topic that have
no per-message spans, so a batch handler that also opens per-message spans is not counted twice.
A send that continues a failed process span (its parent or a link) is a dead-letter send.

Figures come from the spans (messages/s over the window, p95 of span durations, share of spans
in error) and are replaced by Prometheus's where it has the series (:func:`with_prometheus`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from kafkascope._core import semconv as sc
from kafkascope._reports import untrusted_json as untrusted

SENDS: Final = "sends"
CONSUMES: Final = "consumes"
Direction = Literal["sends", "consumes"]
Source = Literal["spans", "prometheus"]

PromQuery = Callable[[str], Sequence[Mapping[str, Any]]]
"""``query(promql)``: the ``result`` of Prometheus's instant query (a vector of series)."""


@dataclass(frozen=True)
class Edge:
    """One service sending to a topic, or one topic consumed by a service."""

    service: str
    topic: str
    direction: Direction
    group: str | None = None
    spans: int = 0
    """Spans (messages) seen in the window's traces."""
    per_second: float | None = None
    p95_seconds: float | None = None
    error_ratio: float | None = None
    dead_letter: bool = False
    figures_from: Source = "spans"

    @property
    def source(self) -> str:
        """The node the edge leaves: the service for a send, the topic for a consume."""
        return self.service if self.direction == SENDS else self.topic

    @property
    def target(self) -> str:
        """The node the edge reaches."""
        return self.topic if self.direction == SENDS else self.service


@dataclass(frozen=True)
class Topology:
    """Services, topics and the edges between them, over a window of ``window_seconds``.

    Attributes:
        edges: service -> topic (sends, dead letters) and topic -> service (processing).
        window_seconds: the length of the window the figures cover.
        traces: how many traces the map was drawn from.
        services: every service seen, sorted.
        topics: every topic seen, sorted.
    """

    edges: tuple[Edge, ...]
    window_seconds: float
    traces: int = 0
    services: tuple[str, ...] = field(default=())
    topics: tuple[str, ...] = field(default=())

    def ranks(self) -> dict[tuple[str, str], int]:
        """Column of each node, ``("service", name)`` or ``("topic", name)``, left to right.

        Services nothing feeds are in column 0; a topic is one column right of its furthest
        producer and a service one column right of its furthest input topic (cycles stop
        growing after as many rounds as there are nodes).
        """
        rank: dict[tuple[str, str], int] = {("service", s): 0 for s in self.services}
        rank.update({("topic", t): 0 for t in self.topics})
        for _ in range(len(rank)):
            changed = False
            for edge in self.edges:
                if edge.direction == SENDS:
                    src, dst = ("service", edge.service), ("topic", edge.topic)
                else:
                    src, dst = ("topic", edge.topic), ("service", edge.service)
                if rank[dst] < rank[src] + 1:
                    rank[dst] = rank[src] + 1
                    changed = True
            if not changed:
                break
        return rank

    def ordered_edges(self) -> list[Edge]:
        """Edges from left to right (by the column of the node they leave), then by name."""
        rank = self.ranks()

        def key(edge: Edge) -> tuple[int, int, str, str]:
            node = ("service", edge.service) if edge.direction == SENDS else ("topic", edge.topic)
            return rank[node], edge.direction == CONSUMES, edge.source, edge.target

        return sorted(self.edges, key=key)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: window, services, topics, and every edge with its figures."""
        return {
            "window_seconds": self.window_seconds,
            "traces": self.traces,
            "services": list(self.services),
            "topics": list(self.topics),
            "edges": [
                {
                    "from": e.source,
                    "to": e.target,
                    "service": e.service,
                    "topic": e.topic,
                    "direction": e.direction,
                    "group": e.group,
                    "spans": e.spans,
                    "messages_per_second": e.per_second,
                    "p95_seconds": e.p95_seconds,
                    "error_ratio": e.error_ratio,
                    "dead_letter": e.dead_letter,
                    "figures_from": e.figures_from,
                }
                for e in self.ordered_edges()
            ],
        }


@dataclass
class _Tally:
    group: str | None = None
    durations: list[float] = field(default_factory=list)
    errors: int = 0
    batch_messages: int = 0
    batch_durations: list[float] = field(default_factory=list)
    batch_errors: int = 0
    dead_letter: bool = False


def _is_error(tags: Mapping[str, Any]) -> bool:
    return tags.get("error") in (True, "true") or tags.get("otel.status_code") == "ERROR"


def _seconds(duration: object) -> float:
    micros = untrusted.micros(duration)
    return 0.0 if micros is None else micros / 1e6


def _count(value: object) -> int:
    # A batch's message count: a whole number up to 2**31 (Kafka's record count is an int32).
    micros = untrusted.micros(value)
    return 0 if micros is None else min(micros, 2**31)


def p95(values: Sequence[float]) -> float | None:
    """The 95th percentile (nearest rank) of ``values``; ``None`` when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def topology_from_jaeger(traces: Iterable[Mapping[str, Any]], *, window_seconds: float) -> Topology:
    """The topology of ``traces``, each as Jaeger's HTTP API returns it (``spans``, ``processes``).

    A span that appears in several traces of the answer (Jaeger answers per service) counts once.

    Raises:
        ValueError: ``window_seconds`` is not positive.
    """
    if not window_seconds > 0:
        raise ValueError(f"window_seconds must be more than 0, not {window_seconds!r}")
    seen: set[tuple[int, str]] = set()
    tallies: dict[tuple[str, str, Direction], _Tally] = {}
    trace_ids: set[int] = set()
    for trace in traces:
        spans = untrusted.mappings(untrusted.mapping(trace).get("spans"))
        processes = untrusted.mapping(untrusted.mapping(trace).get("processes"))
        by_id = {untrusted.text(s.get("spanID")): s for s in spans}
        for span in spans:
            try:
                key = (
                    int(untrusted.text(span.get("traceID")), 16),
                    untrusted.text(span.get("spanID")),
                )
            except ValueError:
                continue
            if key in seen:
                continue
            seen.add(key)
            trace_ids.add(key[0])
            tags = untrusted.tags(span)
            topic = tags.get(sc.MESSAGING_DESTINATION_NAME)
            kind = tags.get("span.kind")
            if not isinstance(topic, str) or kind not in ("producer", "consumer"):
                continue
            if kind == "consumer" and tags.get(sc.MESSAGING_OPERATION_TYPE) != sc.OPERATION_PROCESS:
                continue
            service = untrusted.service(span, processes)
            direction: Direction = SENDS if kind == "producer" else CONSUMES
            tally = tallies.setdefault((service, topic, direction), _Tally())
            seconds = _seconds(span.get("duration") or 0)
            error = _is_error(tags)
            if direction == CONSUMES:
                group = tags.get(sc.MESSAGING_CONSUMER_GROUP_NAME)
                tally.group = tally.group or (group if isinstance(group, str) else None)
                if sc.MESSAGING_BATCH_MESSAGE_COUNT in tags:
                    count = _count(tags[sc.MESSAGING_BATCH_MESSAGE_COUNT])
                    tally.batch_messages += count
                    tally.batch_durations.append(seconds)
                    tally.batch_errors += count if error else 0
                    continue
            elif _continues_failed_process(span, by_id):
                tally.dead_letter = True
            tally.durations.append(seconds)
            tally.errors += error
    edges = []
    for (service, topic, direction), tally in tallies.items():
        if tally.durations:
            count, durations, errors = len(tally.durations), tally.durations, tally.errors
        else:
            count, durations = tally.batch_messages, tally.batch_durations
            errors = tally.batch_errors
        edges.append(
            Edge(
                service=service,
                topic=topic,
                direction=direction,
                group=tally.group,
                spans=count,
                per_second=count / window_seconds,
                p95_seconds=p95(durations),
                error_ratio=errors / count if count else None,
                dead_letter=tally.dead_letter,
            )
        )
    return Topology(
        edges=tuple(edges),
        window_seconds=window_seconds,
        traces=len(trace_ids),
        services=tuple(sorted({e.service for e in edges})),
        topics=tuple(sorted({e.topic for e in edges})),
    )


def only_topics(topology: Topology, pattern: re.Pattern[str]) -> Topology:
    """``topology`` with only the edges of topics ``pattern`` finds (``re.search``)."""
    edges = tuple(e for e in topology.edges if pattern.search(e.topic))
    return replace(
        topology,
        edges=edges,
        services=tuple(sorted({e.service for e in edges})),
        topics=tuple(sorted({e.topic for e in edges})),
    )


def _continues_failed_process(span: Mapping[str, Any], by_id: Mapping[str, Any]) -> bool:
    for reference in untrusted.mappings(span.get("references")):
        other = by_id.get(untrusted.text(reference.get("spanID")))
        if other is None:
            continue
        tags = untrusted.tags(other)
        if tags.get("span.kind") == "consumer" and _is_error(tags):
            return True
    return False


_BY: Final = "job, messaging_destination_name"


def with_prometheus(topology: Topology, query: PromQuery) -> Topology:
    """``topology`` with Prometheus's figures on every edge it has series for.

    Series are matched by ``job`` (the service's ``service.name``) and
    ``messaging_destination_name``. A series' count in the window is its last value less its
    value at the window's start (all of it when the series began in the window: a restarted
    service has a new ``instance``, hence new series). Consume edges take the rate of
    ``messaging_client_consumed_messages_total``, the p95 of
    ``messaging_process_duration_seconds`` and the share of its observations with an
    ``error_type``; send edges take the rate of ``messaging_client_sent_messages_total``, the p95
    of ``messaging_client_operation_duration_seconds`` and its error share. All over the
    topology's window, at the time ``query`` evaluates (the window's end). A topic with
    ``kafkascope_messages_dead_lettered_total`` series is a dead-letter topic of its senders.
    """
    window = f"{max(1, round(topology.window_seconds))}s"

    def by_series(promql: str) -> dict[tuple[str, str], float]:
        found: dict[tuple[str, str], float] = {}
        for series in query(promql):
            if not isinstance(series, Mapping):
                continue
            labels = untrusted.mapping(series.get("metric"))
            try:
                value = float(series["value"][1])
            except (KeyError, IndexError, TypeError, ValueError, OverflowError):
                continue
            if math.isfinite(value):
                key = (
                    untrusted.text(labels.get("job")),
                    untrusted.text(labels.get("messaging_destination_name")),
                )
                found[key] = value
        return found

    def increase(selector: str, by: str = _BY) -> str:
        # What each series counted in the window: its last value less its value at the window's
        # start, or all of it when the series began inside the window (rate() and increase()
        # drop a new series' first value, which for a short-lived or bursty service is most).
        last = f"last_over_time({selector}[{window}])"
        return f"sum by ({by}) ({last} - ({selector} offset {window} or {last} * 0))"

    def rate(metric: str, matcher: str = "") -> dict[tuple[str, str], float]:
        counted = by_series(increase(metric + matcher))
        return {key: value / topology.window_seconds for key, value in counted.items()}

    def quantile(metric: str) -> dict[tuple[str, str], float]:
        return by_series(f"histogram_quantile(0.95, {increase(metric + '_bucket', 'le, ' + _BY)})")

    figures = {
        CONSUMES: (
            rate("messaging_client_consumed_messages_total"),
            quantile("messaging_process_duration_seconds"),
            rate("messaging_process_duration_seconds_count"),
            rate("messaging_process_duration_seconds_count", '{error_type!=""}'),
        ),
        SENDS: (
            rate("messaging_client_sent_messages_total"),
            quantile("messaging_client_operation_duration_seconds"),
            rate("messaging_client_operation_duration_seconds_count"),
            rate("messaging_client_operation_duration_seconds_count", '{error_type!=""}'),
        ),
    }
    dead = rate("kafkascope_messages_dead_lettered_total")
    dead_topics = {topic for (_, topic), value in dead.items() if value > 0}
    edges = []
    for edge in topology.edges:
        key = (edge.service, edge.topic)
        messages, p95s, observed, failed = figures[edge.direction]
        dead_letter = edge.dead_letter or (edge.direction == SENDS and edge.topic in dead_topics)
        if key not in messages:
            edges.append(replace(edge, dead_letter=dead_letter))
            continue
        edges.append(
            replace(
                edge,
                per_second=messages[key],
                p95_seconds=p95s.get(key, edge.p95_seconds),
                error_ratio=failed.get(key, 0.0) / observed[key]
                if observed.get(key)
                else edge.error_ratio,
                dead_letter=dead_letter,
                figures_from="prometheus",
            )
        )
    return replace(topology, edges=tuple(edges))
