"""The span assertions of :mod:`kafkascope.testing`: one trace, a parent, a link, the messaging
conventions' attributes; each failure names the spans it saw."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from kafkascope._core import semconv as sc


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _describe(span: ReadableSpan) -> str:
    ctx = span.get_span_context()
    parent = span.parent
    return (
        f"{span.name!r} (trace {_hex(ctx.trace_id, 32) if ctx else '?'}, "
        f"span {_hex(ctx.span_id, 16) if ctx else '?'}, "
        f"parent {_hex(parent.span_id, 16) if parent else None})"
    )


def assert_same_trace(*spans: ReadableSpan) -> None:
    """All ``spans`` (two or more) belong to one trace.

    Args:
        spans: the spans, e.g. a producer's send span and a consumer's process span.

    Raises:
        AssertionError: fewer than two spans, or they span several traces.
    """
    if len(spans) < 2:
        raise AssertionError(
            f"assert_same_trace needs two spans or more, got {len(spans)}"
            + "".join(f": {_describe(s)}" for s in spans)
        )
    traces = {ctx.trace_id for s in spans if (ctx := s.get_span_context()) is not None}
    if len(traces) != 1:
        raise AssertionError(
            "spans are not in one trace: " + "; ".join(_describe(s) for s in spans)
        )


def assert_parent(child: ReadableSpan, parent: ReadableSpan) -> None:
    """``child``'s parent is ``parent``.

    Args:
        child: the span whose parent is checked.
        parent: the span it should be the child of.

    Raises:
        AssertionError: it is not.
    """
    pctx = parent.get_span_context()
    if child.parent is None or pctx is None or child.parent.span_id != pctx.span_id:
        raise AssertionError(f"{_describe(child)} is not a child of {_describe(parent)}")


def assert_linked(span: ReadableSpan, target: ReadableSpan) -> None:
    """``span`` has a link to ``target``.

    Args:
        span: the linking span (e.g. a batch's process span).
        target: the span it should link to.

    Raises:
        AssertionError: it has no such link.
    """
    tctx = target.get_span_context()
    ids = [(link.context.trace_id, link.context.span_id) for link in span.links]
    if tctx is None or (tctx.trace_id, tctx.span_id) not in ids:
        found = [f"{_hex(t, 32)}/{_hex(s, 16)}" for t, s in ids]
        raise AssertionError(
            f"{_describe(span)} has no link to {_describe(target)}; links: {found}"
        )


_REQUIRED: dict[str, tuple[SpanKind, tuple[str, ...]]] = {
    sc.OPERATION_PROCESS: (
        SpanKind.CONSUMER,
        (sc.MESSAGING_SYSTEM, sc.MESSAGING_OPERATION_NAME, sc.MESSAGING_OPERATION_TYPE),
    ),
    sc.OPERATION_SEND: (
        SpanKind.PRODUCER,
        (
            sc.MESSAGING_SYSTEM,
            sc.MESSAGING_OPERATION_NAME,
            sc.MESSAGING_OPERATION_TYPE,
            sc.MESSAGING_DESTINATION_NAME,
        ),
    ),
}


_OPERATIONS: Final = " or ".join(map(repr, _REQUIRED))


def assert_messaging_attributes(
    span: ReadableSpan,
    *,
    operation: str = sc.OPERATION_PROCESS,
    expected: Mapping[str, Any] | None = None,
) -> None:
    """``span`` has the kind, name and attributes the messaging conventions require for a
    Kafka ``process`` or ``send`` span, and every attribute in ``expected``.

    Args:
        span: a finished span, e.g. ``capotel.span("process orders")``.
        operation: ``"process"`` or ``"send"``.
        expected: further attributes the span must carry, with their values.

    Raises:
        AssertionError: the span lacks one of them, or has another kind or name.
        ValueError: ``operation`` is neither ``"process"`` nor ``"send"``.
    """
    if operation not in _REQUIRED:
        raise ValueError(
            f"assert_messaging_attributes cannot check operation={operation!r}: kafkascope "
            f"makes process and send spans, so operation must be {_OPERATIONS}"
        )
    kind, required = _REQUIRED[operation]
    attrs = dict(span.attributes or {})
    problems: list[str] = []
    if span.kind != kind:
        problems.append(f"kind {span.kind.name}, expected {kind.name}")
    problems.extend(f"missing {key}" for key in required if key not in attrs)
    if attrs.get(sc.MESSAGING_SYSTEM) not in (None, sc.KAFKA):
        problems.append(f"{sc.MESSAGING_SYSTEM}={attrs[sc.MESSAGING_SYSTEM]!r}")
    for key in (sc.MESSAGING_OPERATION_NAME, sc.MESSAGING_OPERATION_TYPE):
        if key in attrs and attrs[key] != operation:
            problems.append(f"{key}={attrs[key]!r}, expected {operation!r}")
    topic = attrs.get(sc.MESSAGING_DESTINATION_NAME)
    expected_name = f"{operation} {topic}" if topic else operation
    if span.name != expected_name:
        problems.append(f"name {span.name!r}, expected {expected_name!r}")
    for key, value in (expected or {}).items():
        if attrs.get(key) != value:
            problems.append(f"{key}={attrs.get(key)!r}, expected {value!r}")
    if problems:
        raise AssertionError(
            f"span {span.name!r} breaks the messaging conventions: {'; '.join(problems)}; "
            f"attributes: {attrs}"
        )
