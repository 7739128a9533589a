"""``configure()``: tracer, meter and logger providers with exporters, from arguments and
the standard ``OTEL_*`` variables, validated up front."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from typing import Final

from opentelemetry import _logs, trace
from opentelemetry import metrics as otel_metrics
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
)
from opentelemetry.sdk.environment_variables import OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.util.types import AttributeValue

from kafkascope._core import histograms as _histograms
from kafkascope._core import presampling as _presampling
from kafkascope._core import settings as _settings
from kafkascope._core.header_capture import parse_patterns
from kafkascope._core.presampling import DecidingIdGenerator, Presampler
from kafkascope._core.settings import KeyHook, ParentPolicy
from kafkascope._setup import capture as _capture
from kafkascope._setup import exporters as _exporters
from kafkascope._setup import otel_variables as _otel_variables
from kafkascope._setup import preaggregation as _preaggregation
from kafkascope._setup.exporters import OtlpSpanExporter, Protocol
from kafkascope._setup.logs import instrument_logging
from kafkascope._setup.otlp.processor import span_processor
from kafkascope._setup.protobuf_backend import warn_if_pure_python
from kafkascope._setup.quiet_exporters import quiet_exporter_logs
from kafkascope._setup.shutdown import Telemetry
from kafkascope._setup.span_queue import sizing

__all__ = ["Telemetry", "configure"]


_configured: Telemetry | None = None
_configure_lock = threading.Lock()


def configure(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    protocol: Protocol | None = None,
    traces: bool = True,
    metrics: bool = True,
    logs: bool = False,
    export_interval_ms: int | None = None,
    resource_attributes: Mapping[str, AttributeValue] | None = None,
    parent: ParentPolicy | None = None,
    capture_key: bool | None = None,
    key_hook: KeyHook | None = None,
    trust_baggage: bool | None = None,
    poison_attempts: int | None = None,
    client_metrics: bool | None = None,
    commit_spans: bool | None = None,
    capture_headers: str | Sequence[str] | None = None,
    conversation_id_header: str | None = None,
    capture_sizes: bool | None = None,
    set_global: bool = True,
    handle_sigterm: bool = True,
    quiet_exporter_errors: bool = True,
    span_exporter: SpanExporter | None = None,
    metric_readers: tuple[MetricReader, ...] = (),
    log_exporter: LogRecordExporter | None = None,
    otlp_span_exporter: OtlpSpanExporter | None = None,
) -> Telemetry:
    """Set up OpenTelemetry for a Kafka service in one call.

    Creates tracer, meter and (with ``logs=True``) logger providers with OTLP exporters and
    makes them global. The standard variables apply where an argument is not given:
    ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_ENDPOINT`` (and the
    per-signal ones), ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``grpc`` or ``http/protobuf``),
    ``OTEL_EXPORTER_OTLP_TIMEOUT`` (and per signal), ``OTEL_TRACES_SAMPLER``/``_ARG``,
    ``OTEL_METRIC_EXPORT_INTERVAL``/``_TIMEOUT``, ``OTEL_BSP_*`` (the span queue, batch size,
    schedule delay and export timeout; sized for a consumer's rates when unset, see
    :mod:`~kafkascope._setup.span_queue`), ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER``
    (``otlp``, ``console``, a comma-separated list of both, or ``none``), and kafkascope's
    ``OTEL_PYTHON_KAFKASCOPE_*``. Every value is checked here, so a bad one fails at start-up
    naming the setting rather than at the first message or at exit. Spans the export queue
    cannot take are counted in the ``kafkascope.spans.dropped`` metric and announced by one
    warning, never logged one by one.

    Calling it again returns the providers of the first call (nothing is exported twice); pass
    ``set_global=False`` for independent providers that are not made global. Either way
    :meth:`Telemetry.shutdown` runs at exit, bounded at 10 s however dead the backend.

    Under pytest with kafkascope's plugin (the ``capotel`` fixture), ``configure()`` checks
    everything and applies kafkascope's options as usual but, with ``set_global``, makes the
    session's in-memory providers global instead of building exporters, so a module that
    configures at import can be tested with ``capotel``; ``pytest -p no:kafkascope`` exports
    as configured.

    Args:
        service_name: ``service.name`` (overrides ``OTEL_SERVICE_NAME``).
        endpoint: OTLP endpoint URL for all signals.
        protocol: OTLP protocol.
        traces: export traces.
        metrics: export metrics.
        logs: connect stdlib ``logging`` to OpenTelemetry logs with the messaging fields
            (with ``set_global=False``, call :func:`instrument_logging` yourself).
        export_interval_ms: metric export interval.
        resource_attributes: extra resource attributes (str keys; str, bool, int or float
            values, or sequences of them).
        parent: default parent policy of handlers (``producer``, ``links``, ``ambient``).
        capture_key: record message keys (default true).
        key_hook: called with each key; returns what to record, or None to record nothing.
        trust_baggage: accept inbound ``baggage`` headers (default true).
        poison_attempts: failed attempts in a row at one (topic, partition, offset) that make
            it a poison message (default 3, or ``OTEL_PYTHON_KAFKASCOPE_POISON_ATTEMPTS``).
        client_metrics: report the clients' own statistics (``kafkascope.client.*``: broker
            round-trip time, retries, timeouts, queues) of clients made after this call
            (default true, or ``OTEL_PYTHON_KAFKASCOPE_CLIENT_METRICS``).
        commit_spans: a ``commit {topic}`` span and a ``kafkascope.consumer.commits`` count
            for each offset commit of an instrumented consumer (default true, or
            ``OTEL_PYTHON_KAFKASCOPE_COMMIT_SPANS``).
        capture_headers: header names or globs (``!`` excludes) to put on send and process
            spans as ``messaging.header.<name>`` (default: none, or
            ``OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS``); ``[]`` for none.
        conversation_id_header: the header recorded as ``messaging.message.conversation_id``
            (default: none, or ``OTEL_PYTHON_KAFKASCOPE_CONVERSATION_ID_HEADER``).
        capture_sizes: put ``messaging.message.body.size`` on spans and record the
            ``kafkascope.message.body.size`` histogram (default false, or
            ``OTEL_PYTHON_KAFKASCOPE_CAPTURE_SIZES``).
        set_global: make the providers global.
        quiet_exporter_errors: while the backend is down, let the OTLP exporters log the
            first failure of each kind and then one per 5 minutes, not one per attempt.
        handle_sigterm: with ``set_global``, flush telemetry on SIGTERM before the process
            ends (only when SIGTERM still has its default action, from the main thread).
        span_exporter: export spans here instead of the exporter the settings choose.
        metric_readers: extra metric readers (e.g. a Prometheus reader).
        log_exporter: export logs here instead of the exporter the settings choose.
        otlp_span_exporter: ``kafkascope`` (default) exports OTLP spans with
            :class:`DirectOTLPSpanExporter`, the same bytes as the SDK's exporter at a fraction
            of the encoding cost; ``sdk`` uses the SDK's ``OTLPSpanExporter``. Defaults to
            ``OTEL_PYTHON_KAFKASCOPE_OTLP_SPAN_EXPORTER``.

    Returns:
        The providers, with ``force_flush()`` and a bounded ``shutdown()``.

    Examples:
        ```python
        kafkascope.configure("billing", logs=True)  # OTLP to OTEL_EXPORTER_OTLP_ENDPOINT
        ```

    Raises:
        ConfigurationError: a bad value, in an argument or an ``OTEL_*`` variable (a
            ``ValueError``); the message names it.
        TypeError: an argument of the wrong type; the message names it.
    """
    global _configured
    env = os.environ
    if service_name is not None and (not isinstance(service_name, str) or not service_name):
        raise TypeError(f"service_name must be a non-empty str, got {service_name!r}")
    for option, value in (
        ("traces", traces),
        ("metrics", metrics),
        ("logs", logs),
        ("set_global", set_global),
        ("handle_sigterm", handle_sigterm),
        ("quiet_exporter_errors", quiet_exporter_errors),
    ):
        _settings.check_bool(value, option)
    attributes = _check_resource_attributes(resource_attributes)
    _check_exporter(span_exporter, "span_exporter", "SpanExporter")
    _check_exporter(log_exporter, "log_exporter", "LogRecordExporter")
    extra_readers = _check_readers(metric_readers)
    plan = _exporters.plan_exporters(
        env, endpoint, protocol, traces, metrics, logs, export_interval_ms, otlp_span_exporter
    )
    sampler = _otel_variables.sampler(env)
    deciders = _otel_variables.sampler_deciders(env)
    sizing(env)  # a bad OTEL_BSP_* variable is refused here, before anything is built
    exemplar_filter = _preaggregation.exemplar_filter(env)
    otlp_temporalities = _preaggregation.otlp_temporalities(env) if "otlp" in plan.metrics else None
    if "otlp" in plan.traces + plan.metrics + plan.logs:
        warn_if_pure_python()
    _otel_variables.check_resource_attributes(env)
    base = _settings.Settings.from_env(env)
    changes: dict[str, object] = {
        "parent": _settings.check_parent(parent) if parent is not None else base.parent,
        "capture_key": _settings.check_bool(capture_key, "capture_key")
        if capture_key is not None
        else base.capture_key,
        "key_hook": _settings.check_key_hook(key_hook),
        "trust_baggage": _settings.check_bool(trust_baggage, "trust_baggage")
        if trust_baggage is not None
        else base.trust_baggage,
        "poison_attempts": _settings.check_attempts(poison_attempts)
        if poison_attempts is not None
        else base.poison_attempts,
        "client_metrics": _settings.check_bool(client_metrics, "client_metrics")
        if client_metrics is not None
        else base.client_metrics,
        "commit_spans": _settings.check_bool(commit_spans, "commit_spans")
        if commit_spans is not None
        else base.commit_spans,
        "capture_headers": parse_patterns(capture_headers, "capture_headers")
        if capture_headers is not None
        else base.capture_headers,
        "conversation_id_header": _settings.check_header_name(conversation_id_header)
        if conversation_id_header is not None
        else base.conversation_id_header,
        "capture_sizes": _settings.check_bool(capture_sizes, "capture_sizes")
        if capture_sizes is not None
        else base.capture_sizes,
    }
    with _configure_lock:
        if set_global and _configured is not None:
            logging.getLogger("kafkascope").warning(
                "kafkascope.configure() was already called; keeping the first configuration"
            )
            return _configured
        if set_global and _capture.in_pytest():
            _settings.update(**changes)
            _configured = _in_memory(logs)
            return _configured
        if service_name is not None:
            attributes[SERVICE_NAME] = service_name
        resource = Resource.create(attributes)

        readers: list[MetricReader] = list(extra_readers)
        metric_exporters = _exporters.metric_exporters(plan)
        pre_aggregation = None
        # Only where every reader is one of ours and exports explicit-bucket histograms: a
        # pull reader (Prometheus) or another extra reader gets the SDK's instruments. With
        # no reader at all (metrics=False) the histograms then cost nothing.
        if (
            not extra_readers
            and not _preaggregation.sdk_disabled(env)
            and ("otlp" not in plan.metrics or _preaggregation.explicit_histograms(env))
        ):
            chosen = [
                otlp_temporalities
                if name == "otlp" and otlp_temporalities is not None
                else _preaggregation.console_temporalities()
                for name in plan.metrics
            ]
            pre_aggregation, metric_exporters = _preaggregation.wrap(
                list(zip(metric_exporters, chosen, strict=True)), exemplar_filter, resource
            )
        readers.extend(
            PeriodicExportingMetricReader(exporter, export_interval_millis=plan.interval_ms)
            for exporter in metric_exporters
        )
        # shutdown_on_exit=False: Telemetry.shutdown, bounded, is the only shutdown at exit
        # (the SDK's own would wait again, unbounded, and warn that it ran twice).
        meter_provider = MeterProvider(
            resource=resource,
            metric_readers=readers,
            exemplar_filter=exemplar_filter,
            shutdown_on_exit=False,
        )
        if pre_aggregation is not None:
            _histograms.register(meter_provider, pre_aggregation)
        # The SDK's own span metrics count spans as they start: neither presampling nor send
        # spans made at the acknowledgement then.
        decide = not _sdk_span_metrics(env)
        ids = DecidingIdGenerator(RandomIdGenerator()) if decide else None
        tracer_provider = TracerProvider(
            resource=resource, sampler=sampler, id_generator=ids, shutdown_on_exit=False
        )
        if ids is not None:
            presampler = Presampler(deciders, ids)
            _presampling.register_sends(tracer_provider, presampler)
            if not deciders.drop_nothing:
                _presampling.register(tracer_provider, presampler)
        span_exporters = (
            [span_exporter] if span_exporter is not None else _exporters.span_exporters(plan)
        )
        for each in span_exporters:
            tracer_provider.add_span_processor(span_processor(each, env, meter_provider))

        logger_provider: LoggerProvider | None = None
        if logs:
            logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
            log_exporters = (
                [log_exporter] if log_exporter is not None else _exporters.log_exporters(plan)
            )
            for each_log_exporter in log_exporters:
                logger_provider.add_log_record_processor(BatchLogRecordProcessor(each_log_exporter))

        telemetry = Telemetry(tracer_provider, meter_provider, logger_provider)
        atexit.register(telemetry.shutdown)
        if quiet_exporter_errors:
            quiet_exporter_logs()
        _settings.update(**changes)
        if set_global:
            trace.set_tracer_provider(tracer_provider)
            otel_metrics.set_meter_provider(meter_provider)
            if logger_provider is not None:
                _logs.set_logger_provider(logger_provider)
                instrument_logging(logger_provider)
            if handle_sigterm:
                _flush_on_sigterm(telemetry)
            _configured = telemetry
        return telemetry


def _in_memory(logs: bool) -> Telemetry:
    """Under pytest with kafkascope's plugin: the session's in-memory providers that
    ``capotel`` reads, made global, in place of exporters."""
    backend = _capture.install_backend()
    if logs:
        instrument_logging(backend.logger_provider)
    logging.getLogger("kafkascope").info(
        "kafkascope.configure() under pytest: telemetry goes to capotel's in-memory providers "
        "and is not exported (run pytest with -p no:kafkascope to export as configured)"
    )
    # Shut already: the session's providers outlive this caller, and capotel reads them.
    return Telemetry(
        backend.tracer_provider,
        backend.meter_provider,
        backend.logger_provider if logs else None,
        _shut=True,
    )


def _check_resource_attributes(value: object) -> dict[str, AttributeValue]:
    """``resource_attributes``: str keys to str, bool, int or float values (or sequences)."""
    if value is None:
        return {}
    problem = _attributes_problem(value)
    if problem:
        raise TypeError(
            "resource_attributes must be a mapping of str keys to str, bool, int or float "
            f"values (or sequences of them), got {value!r} ({problem})"
        )
    assert isinstance(value, Mapping)
    return dict(value)


def _attributes_problem(value: object) -> str | None:
    if not isinstance(value, Mapping):
        return f"a {type(value).__name__}"
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            return f"key {key!r}"
        items = item if isinstance(item, list | tuple) else (item,)
        if not all(isinstance(one, str | bool | int | float) for one in items):
            return f"value of {key!r}"
    return None


def _check_exporter(value: object, option: str, kind: str) -> None:
    if value is not None and not (
        callable(getattr(value, "export", None)) and callable(getattr(value, "shutdown", None))
    ):
        raise TypeError(f"{option} must be a {kind} (export() and shutdown()), got {value!r}")


def _check_readers(value: object) -> tuple[MetricReader, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(r, MetricReader) for r in value):
        raise TypeError(f"metric_readers must be a tuple of MetricReader, got {value!r}")
    return tuple(value)


def _flush_on_sigterm(telemetry: Telemetry) -> None:
    """On SIGTERM, shut telemetry down (bounded), then die of SIGTERM as before."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # the application handles SIGTERM itself; atexit still flushes

    def on_sigterm(signum: int, frame: object) -> None:
        telemetry.shutdown(timeout_millis=_SIGTERM_FLUSH_MILLIS)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)


_SIGTERM_FLUSH_MILLIS: Final = 5_000


def _sdk_span_metrics(env: Mapping[str, str]) -> bool:
    """The SDK's own span metrics are on: they count the spans a sampler drops, so every span
    goes through the SDK's ``start_span``."""
    return env.get(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, "").strip().lower() == "true"
