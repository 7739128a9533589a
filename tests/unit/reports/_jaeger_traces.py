"""Traces in the shape Jaeger's ``/api/traces`` returns, built by hand for the topology tests:
``tags`` as ``{key, type, value}``, ``duration`` in microseconds, ``processes`` naming each
span's service, ``references`` to parents and links."""

from __future__ import annotations

from itertools import count
from typing import Any

from kafkascope._reports.topology import Topology, topology_from_jaeger

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
_ids = count(1)


def tag(key: str, value: Any) -> dict[str, Any]:
    kind = "bool" if isinstance(value, bool) else "int64" if isinstance(value, int) else "string"
    return {"key": key, "type": kind, "value": value}


def span(
    service: str,
    kind: str,
    topic: str | None,
    *,
    operation: str | None = None,
    ms: float = 1.0,
    error: bool = False,
    group: str | None = None,
    batch: int | None = None,
    refs: list[tuple[str, str]] = (),  # type: ignore[assignment]
    span_id: str | None = None,
    trace_id: str = TRACE_ID,
) -> dict[str, Any]:
    """One span as Jaeger returns it; ``service`` is its processID (see :func:`trace`)."""
    operation = operation or ("send" if kind == "producer" else "process")
    tags = [tag("span.kind", kind), tag("messaging.system", "kafka")]
    if topic is not None:
        tags.append(tag("messaging.destination.name", topic))
    tags.append(tag("messaging.operation.type", operation))
    if group is not None:
        tags.append(tag("messaging.consumer.group.name", group))
    if batch is not None:
        tags.append(tag("messaging.batch.message_count", batch))
    if error:
        tags += [tag("error", True), tag("otel.status_code", "ERROR")]
    return {
        "traceID": trace_id,
        "spanID": span_id or f"{next(_ids):016x}",
        "operationName": f"{operation} {topic}",
        "references": [
            {"refType": ref, "traceID": trace_id, "spanID": parent} for ref, parent in refs
        ],
        "startTime": 1795581595745942,
        "duration": round(ms * 1000),
        "tags": tags,
        "logs": [],
        "processID": service,
        "warnings": None,
    }


def trace(*spans: dict[str, Any]) -> dict[str, Any]:
    services = sorted({s["processID"] for s in spans})
    return {
        "traceID": TRACE_ID,
        "spans": list(spans),
        "processes": {name: {"serviceName": name, "tags": []} for name in services},
        "warnings": None,
    }


def small() -> Topology:
    """shop -> [orders] -> billing, billing's failures -> [orders.dlq]; the spans come in the
    reverse order of the map, as Jaeger's answer may list them."""
    ok = span("billing", "consumer", "orders", group="billing", ms=4)
    failed = span("billing", "consumer", "orders", group="billing", ms=6, error=True)
    dead_letter = span(
        "billing", "producer", "orders.dlq", ms=1, refs=[("CHILD_OF", failed["spanID"])]
    )
    sends = [span("shop", "producer", "orders", ms=2) for _ in range(2)]
    return topology_from_jaeger([trace(dead_letter, ok, failed, *sends)], window_seconds=10)
