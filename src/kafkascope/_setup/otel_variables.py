"""The standard ``OTEL_*`` variables ``configure()`` honours besides the exporters' own: the
sampler, the resource attributes and the export intervals and timeouts, checked up front.

Left to the SDK, a bad value is a warning (or an error naming no variable) and a silent default;
here it is a :class:`~kafkascope._errors.ConfigurationError` naming the variable, at start-up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Final

from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)

from kafkascope._core.errors import ConfigurationError
from kafkascope._core.presampling import Deciders

SAMPLER: Final = "OTEL_TRACES_SAMPLER"
SAMPLER_ARG: Final = "OTEL_TRACES_SAMPLER_ARG"
RESOURCE_ATTRIBUTES: Final = "OTEL_RESOURCE_ATTRIBUTES"
METRIC_EXPORT_INTERVAL: Final = "OTEL_METRIC_EXPORT_INTERVAL"
METRIC_EXPORT_TIMEOUT: Final = "OTEL_METRIC_EXPORT_TIMEOUT"
OTLP_TIMEOUTS: Final = (
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
)

_FIXED_SAMPLERS: Final[dict[str, Sampler]] = {
    "always_on": ALWAYS_ON,
    "always_off": ALWAYS_OFF,
    "parentbased_always_on": DEFAULT_ON,
    "parentbased_always_off": DEFAULT_OFF,
}
_RATIO_SAMPLERS: Final[dict[str, Callable[[float], Sampler]]] = {
    "traceidratio": TraceIdRatioBased,
    "parentbased_traceidratio": ParentBasedTraceIdRatio,
}


def sampler(env: Mapping[str, str]) -> Sampler:
    """The sampler ``OTEL_TRACES_SAMPLER`` (and ``_ARG``, a ratio from 0 to 1, default 1)
    names; ``parentbased_always_on`` when unset."""
    name, ratio = _sampler_choice(env)
    if ratio is None:
        return _FIXED_SAMPLERS[name]
    return _RATIO_SAMPLERS[name](ratio)


def sampler_deciders(env: Mapping[str, str]) -> Deciders:
    """What decides each kind of span the sampler of :func:`sampler` may drop."""
    name, ratio = _sampler_choice(env)
    if name == "always_off":
        return Deciders(ALWAYS_OFF, ALWAYS_OFF, ALWAYS_OFF)
    ratio_sampler = TraceIdRatioBased(ratio) if ratio is not None and ratio < 1.0 else None
    if not name.startswith("parentbased_"):  # always_on, traceidratio
        return Deciders(ratio_sampler, ratio_sampler, ratio_sampler)
    # A parent-based sampler's default delegates: a sampled parent's span is kept, an
    # unsampled one's dropped, a root decided by the root sampler.
    root = ALWAYS_OFF if name == "parentbased_always_off" else ratio_sampler
    return Deciders(root, None, ALWAYS_OFF)


def _sampler_choice(env: Mapping[str, str]) -> tuple[str, float | None]:
    """The sampler's name and, for the ratio samplers, its ratio."""
    raw = env.get(SAMPLER, "")
    name = raw.strip().lower() or "parentbased_always_on"
    if name in _FIXED_SAMPLERS:
        return name, None
    if name not in _RATIO_SAMPLERS:
        names = ", ".join([*_FIXED_SAMPLERS, *_RATIO_SAMPLERS])
        raise ConfigurationError(SAMPLER, f"{SAMPLER}={raw!r} is not a sampler; use one of {names}")
    arg = env.get(SAMPLER_ARG, "")
    try:
        ratio = float(arg) if arg.strip() else 1.0
    except ValueError:
        ratio = math.nan
    if not 0.0 <= ratio <= 1.0:
        raise ConfigurationError(
            SAMPLER_ARG,
            f"{SAMPLER_ARG}={arg!r} is not a sampling ratio from 0 to 1 (for {SAMPLER}={raw!r})",
        )
    return name, ratio


def check_resource_attributes(env: Mapping[str, str]) -> None:
    """``OTEL_RESOURCE_ATTRIBUTES`` is a comma-separated list of ``key=value`` with non-empty
    keys (values are percent-decoded by the SDK, which reads the variable itself)."""
    raw = env.get(RESOURCE_ATTRIBUTES, "")
    if not raw.strip():
        return
    for entry in raw.split(","):
        key, equals, _ = entry.partition("=")
        if not equals or not key.strip():
            raise ConfigurationError(
                RESOURCE_ATTRIBUTES,
                f"{RESOURCE_ATTRIBUTES}={raw!r} is not a comma-separated list of key=value "
                f"(entry {entry!r})",
            )


def positive_number(env: Mapping[str, str], name: str, unit: str) -> float | None:
    """A variable that must be a positive number of ``unit``; None when unset."""
    raw = env.get(name, "")
    if not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise ConfigurationError(name, f"{name}={raw!r} is not a positive number of {unit}")
    return value


def check_intervals(env: Mapping[str, str]) -> float | None:
    """Check the export intervals and timeouts; returns ``OTEL_METRIC_EXPORT_INTERVAL`` in
    milliseconds, or None when unset."""
    positive_number(env, METRIC_EXPORT_TIMEOUT, "milliseconds")
    for name in OTLP_TIMEOUTS:
        positive_number(env, name, "seconds")
    return positive_number(env, METRIC_EXPORT_INTERVAL, "milliseconds")


HONOURED: Final[tuple[tuple[str, str], ...]] = (
    ("OTEL_SERVICE_NAME", "`service.name`, unless `configure(service_name=...)` gives it"),
    (RESOURCE_ATTRIBUTES, "extra resource attributes, `key=value,...` (checked: non-empty keys)"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP endpoint of every signal (checked: an http(s) URL)"),
    (
        "OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT",
        "OTLP endpoint of one signal (checked like the above)",
    ),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "`grpc` (default) or `http/protobuf`"),
    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "the protocol of spans (checked like the above)"),
    (
        "OTEL_EXPORTER_OTLP_{,TRACES_}{HEADERS,COMPRESSION,INSECURE,CERTIFICATE,CLIENT_KEY,"
        "CLIENT_CERTIFICATE}",
        "headers, `gzip`/`deflate`/`none`, gRPC without TLS, CA and client TLS files of the "
        "span exporter (the `TRACES_` one first; checked), and of the SDK's metric and log "
        "exporters (which read their own per-signal ones)",
    ),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "export timeout of every signal (positive seconds)"),
    (
        "OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_TIMEOUT",
        "export timeout of one signal (positive seconds)",
    ),
    (
        "OTEL_{TRACES,METRICS,LOGS}_EXPORTER",
        "`otlp` (default), `console`, a list such as `console,otlp`, or `none`",
    ),
    (SAMPLER, "the sampler: one of the six built-in ones (default `parentbased_always_on`)"),
    (SAMPLER_ARG, "the ratio of the ratio samplers, from 0 to 1 (default 1)"),
    (
        "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED",
        "the SDK's own span metrics (`true`): every span then goes through the SDK's "
        "`start_span`, which counts dropped ones too, rather than the sampler being asked first",
    ),
    (METRIC_EXPORT_INTERVAL, "metric export interval (positive milliseconds)"),
    (METRIC_EXPORT_TIMEOUT, "metric export timeout (positive milliseconds)"),
    ("OTEL_PROPAGATORS", "the propagators headers are injected and extracted with (SDK default)"),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "spans queued for export at most (positive; default 16,384)"),
    (
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "spans per export (positive, <= the queue; default 4,096 in front of kafkascope's OTLP "
        "exporter, 1,024 in front of any other)",
    ),
    (
        "OTEL_BSP_SCHEDULE_DELAY",
        "longest wait before queued spans are exported (ms; default 1,000)",
    ),
    ("OTEL_BSP_EXPORT_TIMEOUT", "span export timeout (positive milliseconds; default 30,000)"),
    (
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
        "`cumulative` (default), `delta` or `lowmemory`, applied as the SDK's OTLP exporter does",
    ),
    (
        "OTEL_METRICS_EXEMPLAR_FILTER",
        "`trace_based` (default), `always_on` or `always_off`",
    ),
    (
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
        "`explicit_bucket_histogram` (default) or `base2_exponential_bucket_histogram`",
    ),
    ("OTEL_SDK_DISABLED", "`true` turns the SDK off (the SDK reads it)"),
)
"""The standard variables ``configure()`` honours, with what each sets (the reference page of
the documentation is generated from this table)."""
