"""kafkascope's own options: defaults, ``OTEL_PYTHON_KAFKASCOPE_*`` variables, validation.

Handlers read the current settings at message time, so ``configure()`` may run after the
decorators were applied at import time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, TypeAlias

from kafkascope._core.errors import ConfigurationError
from kafkascope._core.header_capture import HeaderCapture, parse_header_name, parse_patterns

ParentPolicy: TypeAlias = Literal["producer", "links", "ambient"]
PARENT_POLICIES: Final[tuple[ParentPolicy, ...]] = ("producer", "links", "ambient")
KeyHook: TypeAlias = Callable[[str], str | None]
"""Called with a decoded message key; returns what to record, or None to record nothing."""

ENV_PARENT: Final = "OTEL_PYTHON_KAFKASCOPE_PARENT"
ENV_CAPTURE_KEY: Final = "OTEL_PYTHON_KAFKASCOPE_CAPTURE_KEY"
ENV_TRUST_BAGGAGE: Final = "OTEL_PYTHON_KAFKASCOPE_TRUST_BAGGAGE"
ENV_LAG: Final = "OTEL_PYTHON_KAFKASCOPE_LAG"
ENV_POISON_ATTEMPTS: Final = "OTEL_PYTHON_KAFKASCOPE_POISON_ATTEMPTS"
ENV_KEEP_CONTRIB: Final = "OTEL_PYTHON_KAFKASCOPE_KEEP_CONTRIB"
ENV_SPAN_TIMINGS: Final = "OTEL_PYTHON_KAFKASCOPE_SPAN_TIMINGS"
ENV_CLIENT_METRICS: Final = "OTEL_PYTHON_KAFKASCOPE_CLIENT_METRICS"
ENV_COMMIT_SPANS: Final = "OTEL_PYTHON_KAFKASCOPE_COMMIT_SPANS"
ENV_CAPTURE_HEADERS: Final = "OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS"
ENV_CONVERSATION_ID_HEADER: Final = "OTEL_PYTHON_KAFKASCOPE_CONVERSATION_ID_HEADER"
ENV_CAPTURE_SIZES: Final = "OTEL_PYTHON_KAFKASCOPE_CAPTURE_SIZES"
ENV_OTLP_SPAN_EXPORTER: Final = "OTEL_PYTHON_KAFKASCOPE_OTLP_SPAN_EXPORTER"
"""``kafkascope`` (the direct exporter, the default) or ``sdk``: read by ``configure()``."""

_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})


def check_parent(value: object, setting: str = "parent") -> ParentPolicy:
    """Validate a parent policy, naming the setting in the error."""
    if value not in PARENT_POLICIES:
        raise ConfigurationError(
            setting,
            f"{setting}={value!r} is not a parent policy; use one of {', '.join(PARENT_POLICIES)}",
        )
    return value


def check_group(value: object, setting: str = "group") -> str | None:
    """Validate a consumer group name."""
    if value is not None and (not isinstance(value, str) or not value):
        raise TypeError(f"{setting} must be a non-empty str or None, got {value!r}")
    return value


def check_bool(value: object, setting: str) -> bool:
    """Validate a boolean option."""
    if not isinstance(value, bool):
        raise TypeError(f"{setting} must be True or False, got {value!r}")
    return value


def check_capture_headers(value: object, setting: str = "capture_headers") -> HeaderCapture:
    """Validate header names or globs to capture (a list, or a comma-separated string); an
    empty list captures nothing."""
    return parse_patterns(value, setting) or HeaderCapture(())


def check_header_name(value: object, setting: str = "conversation_id_header") -> str | None:
    """Validate one exact header name (lower-cased); None for none."""
    return parse_header_name(value, setting)


def env_capture_headers(
    env: Mapping[str, str], name: str, default: HeaderCapture | None
) -> HeaderCapture | None:
    """Read header patterns; a pattern that is not one is an error."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return parse_patterns(raw, name)


def env_header_name(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    """Read one exact header name."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return parse_header_name(raw, name)


def check_attempts(value: object, setting: str = "poison_attempts") -> int:
    """Validate the number of failed attempts in a row that make a message poison (>= 1)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(
            setting, f"{setting}={value!r} is not a whole number of attempts >= 1"
        )
    return value


def env_attempts(env: Mapping[str, str], name: str, default: int) -> int:
    """Read a number of attempts; a value that is not one is an error."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigurationError(name, f"{name}={raw!r} is not a whole number of attempts >= 1")
    return value


def check_key_hook(value: object, setting: str = "key_hook") -> KeyHook | None:
    """Validate the key redaction hook."""
    if value is not None and not callable(value):
        raise TypeError(f"{setting} must be callable or None, got {value!r}")
    return value


def check_providers(tracer_provider: object, meter_provider: object) -> None:
    """Validate the optional ``tracer_provider=`` / ``meter_provider=`` options."""
    if tracer_provider is not None and not hasattr(tracer_provider, "get_tracer"):
        raise TypeError(f"tracer_provider must be a TracerProvider, got {tracer_provider!r}")
    if meter_provider is not None and not hasattr(meter_provider, "get_meter"):
        raise TypeError(f"meter_provider must be a MeterProvider, got {meter_provider!r}")


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """Read a boolean variable strictly: a value that is not a boolean is an error."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(name, f"{name}={raw!r} is not a boolean; use true or false")


def env_parent(env: Mapping[str, str], name: str, default: ParentPolicy) -> ParentPolicy:
    """Read a parent policy (any case); a value that is not one is an error."""
    raw = env.get(name, "")
    if raw.strip() == "":
        return default
    text = raw.strip().lower()
    for policy in PARENT_POLICIES:
        if text == policy:
            return policy
    raise ConfigurationError(
        name, f"{name}={raw!r} is not a parent policy; use one of {', '.join(PARENT_POLICIES)}"
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Defaults for every handler and producer that does not override them."""

    parent: ParentPolicy = "producer"
    """Default parent policy of process spans: ``producer``, ``links`` or ``ambient``."""
    capture_key: bool = True
    """Record UTF-8 message keys as ``messaging.kafka.message.key``."""
    key_hook: KeyHook | None = None
    """Called with each decoded key; returns what to record, or None to record nothing."""
    trust_baggage: bool = True
    """Accept inbound ``baggage`` headers (off for topics fed by untrusted producers)."""
    lag: bool = True
    """Report the lag gauges of consumers instrumented by ``opentelemetry-instrument``."""
    poison_attempts: int = 3
    """Failed attempts in a row at one (topic, partition, offset) that make it a poison
    message."""
    keep_contrib: bool = False
    """Leave contrib's Kafka instrumentations active beside the zero-code instrumentation
    (both sets of spans) instead of taking over from them."""
    span_timings: bool = False
    """Also put the time in queue (and its timestamp type) and the pipeline latency on process
    spans; their histograms carry them either way."""
    client_metrics: bool = True
    """Report the client statistics (``kafkascope.client.*``) of clients instrumented by
    ``opentelemetry-instrument`` and of producers wrapped by kafkascope."""
    commit_spans: bool = True
    """A ``commit {topic}`` span and a ``kafkascope.consumer.commits`` count for each offset
    commit of an instrumented consumer (the application's and the client's auto-commits)."""

    capture_headers: HeaderCapture | None = None
    """Headers (names or globs, ``!`` excludes) put on send and process spans as
    ``messaging.header.<name>``; none unless named."""
    conversation_id_header: str | None = None
    """The header recorded as ``messaging.message.conversation_id`` (lower case)."""
    capture_sizes: bool = False
    """Put ``messaging.message.body.size`` on spans and record the body-size histogram."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``OTEL_PYTHON_KAFKASCOPE_*`` variables.

        Raises:
            ConfigurationError: a bad value; the message names the variable.
        """
        return cls(**_read_env(os.environ if env is None else env, on_bad=None))

    @classmethod
    def from_env_forgiving(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``OTEL_PYTHON_KAFKASCOPE_*`` variables, where nothing may raise.

        Each bad variable is ignored on its own, and reported once (a warning naming it and its
        value): an option that widens what is recorded (key capture, inbound baggage) falls to
        its narrowest choice, the others to their defaults.
        """
        return cls(**_read_env(os.environ if env is None else env, on_bad=_report_bad))


_Reader: TypeAlias = Callable[[Mapping[str, str], str, Any], Any]
_ENV: Final[tuple[tuple[str, str, _Reader, object, object], ...]] = (
    # field, variable, reader, default when unset, fallback when the value is bad
    ("parent", ENV_PARENT, env_parent, "producer", "producer"),
    ("capture_key", ENV_CAPTURE_KEY, env_bool, True, False),
    ("trust_baggage", ENV_TRUST_BAGGAGE, env_bool, True, False),
    ("lag", ENV_LAG, env_bool, True, True),
    ("poison_attempts", ENV_POISON_ATTEMPTS, env_attempts, 3, 3),
    ("keep_contrib", ENV_KEEP_CONTRIB, env_bool, False, False),
    ("span_timings", ENV_SPAN_TIMINGS, env_bool, False, False),
    ("client_metrics", ENV_CLIENT_METRICS, env_bool, True, True),
    ("commit_spans", ENV_COMMIT_SPANS, env_bool, True, True),
    ("capture_headers", ENV_CAPTURE_HEADERS, env_capture_headers, None, None),
    ("conversation_id_header", ENV_CONVERSATION_ID_HEADER, env_header_name, None, None),
    ("capture_sizes", ENV_CAPTURE_SIZES, env_bool, False, False),
)
"""How each ``OTEL_PYTHON_KAFKASCOPE_*`` variable is read. The fallback of ``capture_key`` and
``trust_baggage`` is off: a typo must never record more than the operator asked for."""

_FALLBACK_MEANS: Final = {
    "capture_key": "message keys are not recorded",
    "trust_baggage": "inbound baggage is ignored",
    "capture_headers": "no header is captured",
    "conversation_id_header": "no conversation id is recorded",
}


def _read_env(
    env: Mapping[str, str], on_bad: Callable[[ConfigurationError, str, object], None] | None
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field_name, variable, reader, default, fallback in _ENV:
        try:
            values[field_name] = reader(env, variable, default)
        except ConfigurationError as exc:
            if on_bad is None:
                raise
            on_bad(exc, field_name, fallback)
            values[field_name] = fallback
    return values


_reported: set[str] = set()
_reported_lock = threading.Lock()


def _report_bad(error: ConfigurationError, field_name: str, fallback: object) -> None:
    message = str(error)
    with _reported_lock:
        if message in _reported:
            return
        _reported.add(message)
    means = _FALLBACK_MEANS.get(field_name, f"{field_name} is {fallback!r} (the default)")
    logging.getLogger("kafkascope").warning(
        "kafkascope: %s. Until it is fixed, %s.", message, means
    )


def forget_reported() -> None:
    """Forget which bad variables were reported (for tests)."""
    with _reported_lock:
        _reported.clear()


in_force: Settings | None = None
"""The settings in force once read (None before): what :func:`current` returns. The
per-message paths read it first, for the call."""


def current() -> Settings:
    """The settings in force; read from the environment on first use.

    Read at message time (a service without ``configure()``), a bad variable must not break
    the consumer, so it is reported and ignored rather than raised.
    """
    global in_force
    if in_force is None:
        in_force = Settings.from_env_forgiving()
    return in_force


def update(**changes: object) -> Settings:
    """Replace some settings (validated by the caller) and return the new ones."""
    global in_force
    in_force = replace(current(), **changes)  # type: ignore[arg-type]
    return in_force


def reset(settings: Settings | None = None) -> None:
    """Forget the settings (next use reads the environment again), or set them outright."""
    global in_force
    in_force = settings
