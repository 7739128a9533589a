"""The push pipelines of ``configure()`` with kafkascope's per-message histograms aggregated in
process (``_core/histograms.py``): each push reader's exporter is wrapped in
:class:`PreAggregatingExporter`, which adds those histograms' points to every export.

An exporter wrapper is the public route the installed SDK offers: its ``MetricExporter``
constructor takes the preferred temporality, and ``export`` receives the public
``MetricsData`` classes; the SDK has no public ``MetricProducer`` to hand points to a reader.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from typing import Any, Final

from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    Counter,
    ExemplarFilter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    TraceBasedExemplarFilter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from kafkascope._core import errors as _errors
from kafkascope._core import metrics as _metrics
from kafkascope._core import semconv as sc
from kafkascope._core.errors import ConfigurationError
from kafkascope._core.histograms import HistogramTable, PreAggregation
from kafkascope._version import __version__

Temporalities = dict[type, AggregationTemporality]

_CUMULATIVE: Final = AggregationTemporality.CUMULATIVE
_DELTA: Final = AggregationTemporality.DELTA
_TEMPORALITY: Final = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
_EXEMPLAR_FILTER: Final = "OTEL_METRICS_EXEMPLAR_FILTER"
_EXEMPLAR_FILTERS: Final[Mapping[str, Callable[[], ExemplarFilter]]] = {
    "trace_based": TraceBasedExemplarFilter,
    "always_on": AlwaysOnExemplarFilter,
    "always_off": AlwaysOffExemplarFilter,
}
_INSTRUMENTS: Final = (
    Counter,
    UpDownCounter,
    Histogram,
    ObservableCounter,
    ObservableUpDownCounter,
    ObservableGauge,
)
# The instruments each preference makes delta, as the SDK's OTLP metric exporter documents
# them; every other instrument stays cumulative.
_DELTA_INSTRUMENTS: Final[Mapping[str, tuple[type, ...]]] = {
    "CUMULATIVE": (),
    "DELTA": (Counter, Histogram, ObservableCounter),
    "LOWMEMORY": (Counter, Histogram),
}


def otlp_temporalities(env: Mapping[str, str]) -> Temporalities:
    """The temporality of each instrument kind for an OTLP metric exporter, from
    ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` (``cumulative``, ``delta`` or
    ``lowmemory``, any case; cumulative when unset).

    Raises:
        ConfigurationError: another value.
    """
    raw = env.get(_TEMPORALITY, "")
    preference = raw.strip().upper() or "CUMULATIVE"
    delta = _DELTA_INSTRUMENTS.get(preference)
    if delta is None:
        raise ConfigurationError(
            _TEMPORALITY, f"{_TEMPORALITY}={raw!r} is not one of cumulative, delta, lowmemory"
        )
    return {kind: _DELTA if kind in delta else _CUMULATIVE for kind in _INSTRUMENTS}


def console_temporalities() -> Temporalities:
    """The console exporter's: cumulative for every instrument, whatever the variables say."""
    return dict.fromkeys(_INSTRUMENTS, _CUMULATIVE)


def exemplar_filter(env: Mapping[str, str]) -> ExemplarFilter:
    """``OTEL_METRICS_EXEMPLAR_FILTER`` as the SDK reads it (``trace_based`` when unset).

    Raises:
        ConfigurationError: another value.
    """
    raw = env.get(_EXEMPLAR_FILTER, "trace_based")
    chosen = _EXEMPLAR_FILTERS.get(raw)
    if chosen is None:
        raise ConfigurationError(
            _EXEMPLAR_FILTER,
            f"{_EXEMPLAR_FILTER}={raw!r} is not one of {', '.join(_EXEMPLAR_FILTERS)}",
        )
    return chosen()


def explicit_histograms(env: Mapping[str, str]) -> bool:
    """Whether an OTLP exporter aggregates histograms into explicit buckets (not exponential)."""
    return (
        env.get("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION")
        != "base2_exponential_bucket_histogram"
    )


def sdk_disabled(env: Mapping[str, str] = os.environ) -> bool:
    """``OTEL_SDK_DISABLED=true``: the SDK's meters record nothing, so neither do we."""
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def wrap(
    exporters: Sequence[tuple[MetricExporter, Temporalities]],
    exemplar_filter: ExemplarFilter,
    resource: Resource,
) -> tuple[PreAggregation, list[MetricExporter]]:
    """kafkascope's per-message histograms aggregated for each of ``exporters`` (with its
    temporalities): the aggregation to register on the meter provider, and the exporters to
    give its push readers."""
    pre_aggregation = PreAggregation(
        _metrics.PRE_AGGREGATED,
        [temporalities[Histogram] for _, temporalities in exporters],
        exemplar_filter,
    )
    wrapped: list[MetricExporter] = [
        PreAggregatingExporter(exporter, tables, temporalities, resource)
        for (exporter, temporalities), tables in zip(exporters, pre_aggregation.tables, strict=True)
    ]
    return pre_aggregation, wrapped


class PreAggregatingExporter(MetricExporter):
    """A push reader's exporter with kafkascope's pre-aggregated histograms added to each
    export, in the ``kafkascope`` scope, with the reader's temporality."""

    def __init__(
        self,
        exporter: MetricExporter,
        tables: Sequence[HistogramTable],
        temporalities: Temporalities,
        resource: Resource,
    ) -> None:
        super().__init__(preferred_temporality=temporalities)
        self.exporter = exporter
        self._tables = tuple(tables)
        self._resource = resource
        self._scope = InstrumentationScope("kafkascope", __version__, schema_url=sc.SCHEMA_URL)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Export ``metrics_data`` with the pre-aggregated histograms through the exporter."""
        try:
            metrics_data = self._with_histograms(metrics_data)
        except Exception as exc:  # never lose the SDK's metrics to our own failure
            _errors.report("pre-aggregated histograms", exc)
        return self.exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Flush the exporter."""
        return self.exporter.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Shut the exporter down."""
        self.exporter.shutdown(timeout_millis=timeout_millis, **kwargs)

    def _with_histograms(self, metrics_data: MetricsData) -> MetricsData:
        now = time_ns()
        ours = []
        for table in self._tables:
            points = table.collect(now)
            if points:
                spec = table.spec
                data = HistogramData(data_points=points, aggregation_temporality=table.temporality)
                ours.append(Metric(spec.name, spec.description, spec.unit, data))
        if not ours:
            return metrics_data
        resources = list(metrics_data.resource_metrics)
        if not resources:
            resources = [ResourceMetrics(self._resource, [], self._resource.schema_url)]
        first = resources[0]
        scopes = list(first.scope_metrics)
        for position, scope in enumerate(scopes):
            if scope.scope == self._scope:
                scopes[position] = ScopeMetrics(
                    scope.scope, [*scope.metrics, *ours], scope.schema_url
                )
                break
        else:
            scopes.append(ScopeMetrics(self._scope, ours, sc.SCHEMA_URL))
        resources[0] = ResourceMetrics(first.resource, scopes, first.schema_url)
        return MetricsData(resources)
