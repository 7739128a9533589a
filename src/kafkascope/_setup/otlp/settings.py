"""Where and how the direct exporter sends: arguments first, then the ``OTEL_EXPORTER_OTLP_*``
variables the SDK's exporters read (the per-signal ``TRACES`` one before the general one), with
the SDK's defaults. Every value is checked here, so a bad one fails at start-up naming it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlparse

from opentelemetry.util.re import parse_env_headers

from kafkascope._core.errors import ConfigurationError

PROTOCOLS: Final = ("grpc", "http/protobuf")
COMPRESSIONS: Final = ("gzip", "deflate", "none")
_DEFAULT_ENDPOINTS: Final = {
    "grpc": "http://localhost:4317",
    "http/protobuf": "http://localhost:4318",
}
_DEFAULT_TIMEOUT: Final = 10.0


@dataclass(frozen=True)
class ExporterSettings:
    """Resolved settings of one direct span exporter.

    ``endpoint`` is the full URL for HTTP (``.../v1/traces``) and the ``host:port`` target for
    gRPC; ``timeout`` is in seconds; ``compression`` is ``gzip``, ``deflate`` or ``none``.
    """

    protocol: str
    endpoint: str
    insecure: bool
    headers: tuple[tuple[str, str], ...]
    timeout: float
    compression: str
    certificate_file: str | None
    client_key_file: str | None
    client_certificate_file: str | None


def _env(env: Mapping[str, str], suffix: str) -> tuple[str, str | None]:
    """The ``TRACES`` variable if set, else the general one: (its name, its value)."""
    for name in (f"OTEL_EXPORTER_OTLP_TRACES_{suffix}", f"OTEL_EXPORTER_OTLP_{suffix}"):
        value = env.get(name, "").strip()
        if value:
            return name, value
    return f"OTEL_EXPORTER_OTLP_{suffix}", None


def check_url(value: str, setting: str) -> str:
    """``value`` if it is an http(s) URL with a host and a valid port.

    Raises:
        ConfigurationError: naming ``setting``.
    """
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigurationError(
            setting, f"{setting}={value!r} is not an http:// or https:// URL with a host"
        )
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigurationError(setting, f"{setting}={value!r} has an invalid port") from exc
    return value


def _endpoint(env: Mapping[str, str], protocol: str, endpoint: str | None) -> tuple[str, str]:
    """(the URL to use, the setting it came from)."""
    if endpoint is not None:
        return check_url(endpoint, "endpoint"), "endpoint"
    per_signal = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if per_signal:
        return check_url(per_signal, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), "per-signal"
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if base:
        check_url(base, "OTEL_EXPORTER_OTLP_ENDPOINT")
    url = base or _DEFAULT_ENDPOINTS[protocol]
    if protocol == "http/protobuf":
        url = url.rstrip("/") + "/v1/traces"
    return url, "base"


def resolve(
    env: Mapping[str, str],
    *,
    protocol: str | None = None,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    compression: str | None = None,
    insecure: bool | None = None,
    certificate_file: str | None = None,
    client_key_file: str | None = None,
    client_certificate_file: str | None = None,
) -> ExporterSettings:
    """The exporter's settings from its arguments, then ``env``.

    Raises:
        ConfigurationError: a bad argument or variable, named in the message.
    """
    setting = "protocol"
    if protocol is None:
        setting, env_protocol = _env(env, "PROTOCOL")
        protocol = env_protocol or "grpc"
    if protocol not in PROTOCOLS:
        raise ConfigurationError(
            setting, f"{setting}={protocol!r} is not one of {', '.join(PROTOCOLS)}"
        )
    url, _ = _endpoint(env, protocol, endpoint)
    parsed = urlparse(url)
    if insecure is None:
        name, raw = _env(env, "INSECURE")
        if raw is not None and raw.lower() not in ("true", "false"):
            raise ConfigurationError(name, f"{name}={raw!r} is not true or false")
        insecure = raw.lower() == "true" if raw is not None else parsed.scheme == "http"
    if parsed.scheme == "https":
        insecure = False
    if headers is None:
        raw = _env(env, "HEADERS")[1]
        headers = parse_env_headers(raw or "", liberal=True)
    if timeout is None:
        name, raw = _env(env, "TIMEOUT")
        try:
            timeout = float(raw) if raw is not None else _DEFAULT_TIMEOUT
        except ValueError:
            timeout = math.nan
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ConfigurationError(name, f"{name}={raw!r} is not a positive number of seconds")
    elif not (timeout > 0 and math.isfinite(timeout)):
        raise ConfigurationError("timeout", f"timeout={timeout!r} is not a positive number")
    setting = "compression"
    if compression is None:
        setting, env_compression = _env(env, "COMPRESSION")
        compression = (env_compression or "none").lower()
    if compression not in COMPRESSIONS:
        raise ConfigurationError(
            setting, f"{setting}={compression!r} is not one of {', '.join(COMPRESSIONS)}"
        )
    return ExporterSettings(
        protocol=protocol,
        endpoint=url if protocol == "http/protobuf" else (parsed.netloc or url),
        insecure=insecure,
        headers=tuple((key.lower(), value) for key, value in headers.items()),
        timeout=timeout,
        compression=compression,
        certificate_file=certificate_file or _env(env, "CERTIFICATE")[1],
        client_key_file=client_key_file or _env(env, "CLIENT_KEY")[1],
        client_certificate_file=client_certificate_file or _env(env, "CLIENT_CERTIFICATE")[1],
    )
