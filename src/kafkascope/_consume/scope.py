"""What every process span's scope shares: the open span, the context it made current, the
records it processes, and how it restores the context and records sizes when it finishes.

:mod:`~kafkascope._consume.single` opens one for a message, :mod:`~kafkascope._consume.batch`
one for a batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextvars import Token

from opentelemetry import context as otel_context
from opentelemetry import metrics as otel_metrics
from opentelemetry.context import Context
from opentelemetry.trace import Span

from kafkascope._adapters.records import RecordView
from kafkascope._consume.options import ProcessOptions
from kafkascope._core import errors as _errors
from kafkascope._core import metrics as _metrics
from kafkascope._core import semconv as sc
from kafkascope._core import sizes as _sizes
from kafkascope._core import telemetry as _telemetry
from kafkascope._core.message import Processing, current_message
from kafkascope._core.telemetry import record_error
from kafkascope._propagation.poison import History


def time_in_queue(record: RecordView, now_ms: float) -> float | None:
    """Seconds from ``record``'s timestamp to ``now_ms`` (never negative); None without one."""
    if record.timestamp_ms is None:
        return None
    waited = (now_ms - record.timestamp_ms) / 1000.0
    return waited if waited > 0.0 else 0.0  # without max(): a builtin call costs ~1k


def timestamp_type(record: RecordView) -> str:
    """Which clock ``record``'s timestamp is from: the producer's or the broker's."""
    return sc.TIMESTAMP_LOG_APPEND_TIME if record.log_append_time else sc.TIMESTAMP_CREATE_TIME


class ProcessScope(ABC):
    """One open process span: current in the context until :meth:`finish`. A message's
    (:class:`~kafkascope._consume.single.MessageScope`) or a batch's
    (:class:`~kafkascope._consume.batch.BatchScope`) gives what it measures."""

    __slots__ = (
        "_context",
        "_history",
        "_message_token",
        "_options",
        "_records",
        "_sampled",
        "_start",
        "_start_ms",
        "_token",
        "_topic",
        "sizes",
        "span",
    )

    _options: ProcessOptions
    _records: Sequence[RecordView]
    span: Span
    """The process span (non-recording when not sampled)."""
    sizes: Sequence[int | None] | None
    """Each record's body size, when sizes are captured."""
    _start: float  # perf_counter at the start
    _start_ms: float  # wall clock at the start, epoch ms
    _topic: str | None  # None: a batch of several topics
    _context: Context  # the context made current: the parent with the span
    _token: Token[Context]
    _message_token: Token[Processing | None]
    _history: History | None  # a message's retries so far (None: a first attempt, a batch)
    _sampled: bool | None  # sampled (exemplars)? None: ask the span; False: dropped, no end()

    @property
    def records(self) -> Sequence[RecordView]:
        """The records this span processes."""
        return self._records

    def finish(self, exc: BaseException | None) -> None:
        """Record the handler's outcome (``exc``: what it raised), restore the context, end
        the span and measure what it processed. Never raises."""
        error_type: str | None = None
        try:
            # A first attempt that succeeded has no outcome to record or track (the common case).
            if exc is not None or self._history is not None:
                error_type = self._outcome(exc)
        except Exception as internal:
            _errors.report("process span error", internal)
        finally:
            # Make current again what was current before the span.
            try:
                current_message.reset(self._message_token)
            except ValueError:
                current_message.set(None)  # reset from another context (async generators)
            otel_context.detach(self._token)
        try:
            if self._sampled is not False:
                self.span.end()
            if self.sizes is not None:
                self._observe_sizes()
            meter_provider = self._options.meter_provider
            # _metrics.for_provider(), its last answer read here for the call.
            if meter_provider is None:
                meter_provider = otel_metrics.get_meter_provider()
            last = _metrics.cache.last
            instruments = (
                last[1]
                if last is not None and last[0] is meter_provider
                else _metrics.for_provider(meter_provider)
            )
            if not instruments.noop:
                self._measure(instruments, error_type)
        except Exception as internal:
            _errors.report("process span end", internal)

    def _outcome(self, exc: BaseException | None) -> str | None:
        """Record ``exc`` (None: success) on the span; its error type, which the metrics get
        even when recording it on the span failed."""
        if exc is None:
            return None
        error_type = _telemetry.error_type(exc)
        try:
            record_error(self.span, exc, error_type)
        except Exception as internal:
            _errors.report("process span error", internal)
        return error_type

    @abstractmethod
    def _measure(self, instruments: _metrics.MessagingMetrics, error_type: str | None) -> None:
        """Record the metrics of what the span processed in ``instruments``, with its outcome's
        ``error_type`` (the body sizes are recorded before)."""

    def _observe_sizes(self) -> None:
        options = self._options
        histogram = _sizes.for_provider(options.meter_provider)
        if histogram.noop or self.sizes is None:
            return
        for record, size in zip(self._records, self.sizes, strict=True):
            if size is not None:
                histogram.record(
                    size, sc.OPERATION_PROCESS, record.topic, options.group, self._context
                )
