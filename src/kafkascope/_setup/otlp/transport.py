"""Sending encoded ``ExportTraceServiceRequest`` bytes over gRPC or HTTP, with the SDK exporters'
retries: retryable gRPC codes and HTTP 429, 502, 503, 504 (and connection errors) are tried
again after ``2**attempt`` seconds with +/-20 % jitter (or the server's retry delay), at most six
times, never past the timeout, and not at all once :meth:`Transport.shutdown` is called."""

from __future__ import annotations

import gzip
import logging
import random
import threading
import time
import zlib
from pathlib import Path
from typing import Final, Protocol

import grpc
import requests

from kafkascope._core.errors import ConfigurationError
from kafkascope._setup.otlp.settings import ExporterSettings

_logger = logging.getLogger(__name__)

GRPC_METHOD: Final = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
MAX_ATTEMPTS: Final = 6
RETRYABLE_CODES: Final = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
RETRYABLE_STATUSES: Final = frozenset({429, 502, 503, 504})
_USER_AGENT: Final = "kafkascope-otlp-exporter"


class Attempt(Protocol):
    """One send: None on success, else (retryable, server's delay or None, description)."""

    def __call__(self, data: bytes, timeout: float) -> tuple[bool, float | None, str] | None: ...


def _read(path: str | None, setting: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(setting, f"{setting}={path!r} cannot be read: {exc}") from exc


class Transport:
    """Sends bytes to the endpoint the settings name, retrying as the SDK's exporters do."""

    def __init__(self, settings: ExporterSettings) -> None:
        self.settings = settings
        self._shutdown = threading.Event()
        self._root = _read(settings.certificate_file, "OTEL_EXPORTER_OTLP_CERTIFICATE")
        self._key = _read(settings.client_key_file, "OTEL_EXPORTER_OTLP_CLIENT_KEY")
        self._chain = _read(
            settings.client_certificate_file, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
        )
        self._channel: grpc.Channel | None = None
        self._session: requests.Session | None = None
        self._call: grpc.UnaryUnaryMultiCallable | None = None
        self._attempt: Attempt
        if settings.protocol == "grpc":
            self._open_channel()
            self._attempt = self._grpc_attempt
        else:
            self._session = requests.Session()
            self._attempt = self._http_attempt
            self._http_headers = {
                "user-agent": _USER_AGENT,
                **dict(settings.headers),
                "content-type": "application/x-protobuf",
            }
            if settings.compression != "none":
                self._http_headers["content-encoding"] = settings.compression

    def _open_channel(self) -> None:
        settings = self.settings
        compression = {
            "gzip": grpc.Compression.Gzip,
            "deflate": grpc.Compression.Deflate,
            "none": grpc.Compression.NoCompression,
        }[settings.compression]
        if settings.insecure:
            channel = grpc.insecure_channel(settings.endpoint, compression=compression)
        else:
            credentials = grpc.ssl_channel_credentials(self._root, self._key, self._chain)
            channel = grpc.secure_channel(settings.endpoint, credentials, compression=compression)
        self._channel = channel
        # A bytes pass-through: the request is already serialized, the response is not read.
        self._call = channel.unary_unary(
            GRPC_METHOD, request_serializer=None, response_deserializer=None
        )

    def _grpc_attempt(self, data: bytes, timeout: float) -> tuple[bool, float | None, str] | None:
        assert self._call is not None
        try:
            self._call(data, metadata=self.settings.headers, timeout=timeout)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
            delay = _retry_delay(error)
            if code is grpc.StatusCode.UNAVAILABLE and self._channel is not None:
                # As the SDK does: a fresh channel, so a restarted collector is reconnected.
                self._channel.close()
                self._open_channel()
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            return code in RETRYABLE_CODES, delay, f"gRPC {code.name}: {details}"
        return None

    def _http_attempt(self, data: bytes, timeout: float) -> tuple[bool, float | None, str] | None:
        assert self._session is not None
        settings = self.settings
        if settings.compression == "gzip":
            data = gzip.compress(data)
        elif settings.compression == "deflate":
            data = zlib.compress(data)
        verify: bool | str = settings.certificate_file or True
        cert = None
        if settings.client_certificate_file and settings.client_key_file:
            cert = (settings.client_certificate_file, settings.client_key_file)
        try:
            response = self._session.post(
                settings.endpoint,
                data=data,
                headers=self._http_headers,
                timeout=timeout,
                verify=verify,
                cert=cert,
            )
        except requests.ConnectionError as error:
            return True, None, f"connection error: {error}"
        except requests.RequestException as error:
            return False, None, f"request failed: {error}"
        if response.ok:
            return None
        delay = _retry_after(response.headers.get("retry-after"))
        status = response.status_code
        return status in RETRYABLE_STATUSES, delay, f"HTTP {status}: {response.text[:200]}"

    def send(self, data: bytes) -> bool:
        """Send ``data``, retrying transient failures; True once the endpoint accepted it."""
        deadline = time.monotonic() + self.settings.timeout
        for attempt in range(MAX_ATTEMPTS):
            if self._shutdown.is_set():
                return False
            failure = self._attempt(data, max(deadline - time.monotonic(), 0.001))
            if failure is None:
                return True
            retryable, delay, description = failure
            backoff = delay if delay is not None else 2**attempt * random.uniform(0.8, 1.2)
            if (
                not retryable
                or attempt + 1 == MAX_ATTEMPTS
                or backoff > deadline - time.monotonic()
                or self._shutdown.is_set()
            ):
                _logger.error(
                    "kafkascope: failed to export spans to %s: %s",
                    self.settings.endpoint,
                    description,
                )
                return False
            _logger.warning(
                "kafkascope: transient error exporting spans to %s, retrying in %.2fs: %s",
                self.settings.endpoint,
                backoff,
                description,
            )
            if self._shutdown.wait(backoff):
                return False
        return False

    def shutdown(self) -> None:
        """Stop retrying and close the connection."""
        self._shutdown.set()
        if self._channel is not None:
            self._channel.close()
        if self._session is not None:
            self._session.close()


def _retry_delay(error: grpc.RpcError) -> float | None:
    """The server's ``google.rpc.RetryInfo`` delay, when it sent one."""
    if not isinstance(error, grpc.Call):
        return None
    for key, value in error.trailing_metadata() or ():
        if key == "google.rpc.retryinfo-bin" and isinstance(value, bytes):
            from google.rpc.error_details_pb2 import RetryInfo

            info = RetryInfo()
            info.ParseFromString(value)
            return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None


def _retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (the date form is not honoured: backoff applies)."""
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None
