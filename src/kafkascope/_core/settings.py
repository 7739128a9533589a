"""kafkascope's own options: defaults, ``OTEL_PYTHON_KAFKASCOPE_*`` variables, validation.

Handlers read the current settings at message time, so ``configure()`` may run after the
decorators were applied at import time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final, Literal, TypeAlias

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

_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})


def check_parent(value: object, setting: str = "parent") -> ParentPolicy:
    """Validate a parent policy, naming the setting in the error."""
    if value not in PARENT_POLICIES:
        raise ValueError(
            f"{setting}={value!r} is not a parent policy; use one of {', '.join(PARENT_POLICIES)}"
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


def check_attempts(value: object, setting: str = "poison_attempts") -> int:
    """Validate the number of failed attempts in a row that make a message poison (>= 1)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{setting}={value!r} is not a whole number of attempts >= 1")
    return value


def env_attempts(env: Mapping[str, str], name: str, default: int) -> int:
    """Read a number of attempts; a value that is not one is an error."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number of attempts >= 1") from None
    return check_attempts(value, name)


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
    raise ValueError(f"{name}={raw!r} is not a boolean; use true or false")


@dataclass(frozen=True, slots=True)
class Settings:
    """Defaults for every handler and producer that does not override them."""

    parent: ParentPolicy = "producer"
    capture_key: bool = True
    key_hook: KeyHook | None = None
    trust_baggage: bool = True
    lag: bool = True
    poison_attempts: int = 3
    """Failed attempts in a row at one (topic, partition, offset) that make it a poison
    message."""
    keep_contrib: bool = False
    """Leave contrib's Kafka instrumentations active beside the zero-code instrumentation
    (both sets of spans) instead of taking over from them."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``OTEL_PYTHON_KAFKASCOPE_*`` variables; bad values raise ValueError."""
        env = os.environ if env is None else env
        parent_raw = env.get(ENV_PARENT, "").strip().lower() or "producer"
        return cls(
            parent=check_parent(parent_raw, ENV_PARENT),
            capture_key=env_bool(env, ENV_CAPTURE_KEY, True),
            trust_baggage=env_bool(env, ENV_TRUST_BAGGAGE, True),
            lag=env_bool(env, ENV_LAG, True),
            poison_attempts=env_attempts(env, ENV_POISON_ATTEMPTS, 3),
            keep_contrib=env_bool(env, ENV_KEEP_CONTRIB, False),
        )


_current: Settings | None = None


def current() -> Settings:
    """The settings in force; read from the environment on first use."""
    global _current
    if _current is None:
        try:
            _current = Settings.from_env()
        except ValueError:
            # At message time a bad variable must not break the consumer: configure()
            # reports it loudly; here the defaults apply.
            _current = Settings()
    return _current


def update(**changes: object) -> Settings:
    """Replace some settings (validated by the caller) and return the new ones."""
    global _current
    _current = replace(current(), **changes)  # type: ignore[arg-type]
    return _current


def reset(settings: Settings | None = None) -> None:
    """Forget the settings (next use reads the environment again), or set them outright."""
    global _current
    _current = settings
