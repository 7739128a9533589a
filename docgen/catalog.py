"""The instruments kafkascope creates, read from the code that creates them.

Each container of instruments is built on a meter provider that records the ``create_*`` calls
(name, kind, unit, description, advised buckets), so the reference cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics

from kafkascope._core import metrics as core_metrics
from kafkascope._core import semconv as sc
from kafkascope._core import sizes
from kafkascope._observe import client_statistics, lag, rebalances
from kafkascope._produce import transactions
from kafkascope._propagation import pipeline, poison
from kafkascope._setup import span_queue


@dataclass(frozen=True)
class Instrument:
    """One instrument as the code creates it."""

    name: str
    instrument: str
    unit: str
    description: str
    buckets: tuple[float, ...] | None


class _RecordingMeter(metrics.NoOpMeter):
    def __init__(self, created: list[Instrument]) -> None:
        super().__init__("kafkascope")
        self._created = created

    def _note(self, kind: str, name: str, unit: str, description: str, buckets: Any) -> None:
        bounds = tuple(buckets) if buckets is not None else None
        self._created.append(Instrument(name, kind, unit, description, bounds))

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Any:
        self._note("counter", name, unit, description, None)
        return super().create_counter(name, unit, description)

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> Any:
        self._note("histogram", name, unit, description, explicit_bucket_boundaries_advisory)
        return super().create_histogram(name, unit, description)

    def create_observable_counter(
        self, name: str, callbacks: Any = None, unit: str = "", description: str = ""
    ) -> Any:
        self._note("counter", name, unit, description, None)
        return super().create_observable_counter(name, callbacks, unit, description)

    def create_observable_gauge(
        self, name: str, callbacks: Any = None, unit: str = "", description: str = ""
    ) -> Any:
        self._note("gauge", name, unit, description, None)
        return super().create_observable_gauge(name, callbacks, unit, description)


class _RecordingMeterProvider(metrics.MeterProvider):
    def __init__(self) -> None:
        self.created: list[Instrument] = []

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> metrics.Meter:
        return _RecordingMeter(self.created)


_CONTAINERS: tuple[Callable[[metrics.MeterProvider], object], ...] = (
    core_metrics.MessagingMetrics,
    pipeline._Instruments,
    poison._Instruments,
    lag._Registry,
    rebalances._Instruments,
    client_statistics._Registry,
    span_queue.dropped_counter,
    transactions._Instruments,
    sizes.BodySizes,
)


def instruments() -> list[Instrument]:
    """Every instrument kafkascope creates, in the order its containers create them."""
    provider = _RecordingMeterProvider()
    for container in _CONTAINERS:
        container(provider)
    return provider.created


def conventions_metric_attributes() -> dict[str, tuple[str, ...]]:
    """The attribute keys the conventions' messaging metrics can carry, from the code that
    builds them (every optional value given; ``error.type`` only on a failure)."""
    built = core_metrics.MessagingMetrics(metrics.NoOpMeterProvider())
    process_failed = built.attributes_of("process", "t", "g", "E", "host", 9092)[1] or {}
    process_ok = built.attributes_of("process", "t", "g", None, "host", 9092)[1] or {}
    send_failed = built.send_stream("t", "host", 9092, "E")[1] or {}
    return {
        sc.METRIC_PROCESS_DURATION: tuple(process_failed),
        sc.METRIC_CLIENT_CONSUMED_MESSAGES: tuple(process_ok),
        sc.METRIC_CLIENT_OPERATION_DURATION: tuple(send_failed),
        sc.METRIC_CLIENT_SENT_MESSAGES: tuple(send_failed),
    }
