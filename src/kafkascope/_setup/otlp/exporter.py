""":class:`DirectOTLPSpanExporter`: the SDK's ``SpanExporter`` interface, spans encoded by
:class:`~kafkascope._setup.otlp.encoder.SpanEncoder` and sent by
:class:`~kafkascope._setup.otlp.transport.Transport`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, TypeVar

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from kafkascope._setup.otlp import settings as _settings
from kafkascope._setup.otlp.encoder import Run, SpanEncoder

if TYPE_CHECKING:
    from kafkascope._setup.otlp.transport import Transport

_logger = logging.getLogger(__name__)

_Batch = TypeVar("_Batch", Sequence[ReadableSpan], Sequence[Run])

MAX_REQUEST_BYTES: Final = 4 * 1024 * 1024
"""The largest request sent: gRPC servers' default limit on a received message, the
Collector's OTLP receiver among them. A larger batch is sent as several requests."""


def _spans_halves(
    spans: Sequence[ReadableSpan], half: int
) -> tuple[Sequence[ReadableSpan], Sequence[ReadableSpan]]:
    return spans[:half], spans[half:]


def _runs_halves(runs: Sequence[Run], half: int) -> tuple[Sequence[Run], Sequence[Run]]:
    """``runs`` parted after their first ``half`` spans."""
    first: list[Run] = []
    second: list[Run] = []
    left = half  # spans still to put in the first part
    for run in runs:
        fields = run[2]
        if left >= len(fields):
            first.append(run)
            left -= len(fields)
        elif left:
            first.append((run[0], run[1], fields[:left]))
            second.append((run[0], run[1], fields[left:]))
            left = 0
        else:
            second.append(run)
    return first, second


class DirectOTLPSpanExporter(SpanExporter):
    """An OTLP span exporter that writes the protobuf bytes itself.

    It sends exactly the bytes the SDK's OTLP exporters send (the SDK encoder's output, byte
    for byte) at a fraction of the encoding cost, over gRPC or HTTP/protobuf, and honours the
    same ``OTEL_EXPORTER_OTLP_*`` variables (``TRACES_`` ones first): ``ENDPOINT``,
    ``PROTOCOL``, ``HEADERS``, ``TIMEOUT``, ``COMPRESSION``, ``INSECURE``, ``CERTIFICATE``,
    ``CLIENT_KEY``, ``CLIENT_CERTIFICATE``, with the SDK's retries and backoff. A batch whose
    request would exceed :data:`MAX_REQUEST_BYTES` (4 MiB: gRPC servers, the Collector's
    receiver among them, refuse a larger one by default) goes as several requests within it.
    ``configure()`` uses it for OTLP traces; add it to your own provider with a
    ``BatchSpanProcessor``, or select it under ``opentelemetry-instrument`` with
    ``OTEL_TRACES_EXPORTER=kafkascope_otlp``.

    Args:
        endpoint: the URL (for HTTP, the full ``.../v1/traces`` URL); the variables otherwise.
        protocol: ``grpc`` or ``http/protobuf``.
        headers: headers (gRPC metadata) sent with each export.
        timeout: seconds for one export, retries included.
        compression: ``gzip``, ``deflate`` or ``none``.
        insecure: gRPC without TLS (an ``https`` endpoint always uses TLS).
        certificate_file: CA certificate (PEM) to trust.
        client_key_file: client private key (PEM) for mutual TLS.
        client_certificate_file: client certificate chain (PEM) for mutual TLS.

    Raises:
        ConfigurationError: a bad argument or variable, named in the message.
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        protocol: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        compression: str | None = None,
        insecure: bool | None = None,
        certificate_file: str | None = None,
        client_key_file: str | None = None,
        client_certificate_file: str | None = None,
    ) -> None:
        self.settings = _settings.resolve(
            os.environ,
            protocol=protocol,
            endpoint=endpoint,
            headers=headers,
            timeout=timeout,
            compression=compression,
            insecure=insecure,
            certificate_file=certificate_file,
            client_key_file=client_key_file,
            client_certificate_file=client_certificate_file,
        )
        # grpc and requests are imported when an exporter is made, not with kafkascope.
        from kafkascope._setup.otlp.transport import Transport

        self._encoder = SpanEncoder()
        self._transport: Transport = Transport(self.settings)
        self._shut = False

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The serialized ``ExportTraceServiceRequest`` this exporter sends for ``spans``."""
        return self._encoder.encode(spans)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode and send ``spans``; never raises."""
        return self._send(self._encoder.encode, _spans_halves, spans, len(spans))

    def export_runs(self, runs: Sequence[Run], count: int) -> SpanExportResult:
        """Send ``count`` spans already encoded, in runs of one resource and scope (what
        :class:`~kafkascope._setup.otlp.processor.EncodingSpanProcessor` queues); never
        raises."""
        return self._send(self._encoder.encode_runs, _runs_halves, runs, count)

    def _send(
        self,
        encode: Callable[[_Batch], bytes],
        halves: Callable[[_Batch, int], tuple[_Batch, _Batch]],
        batch: _Batch,
        count: int,
    ) -> SpanExportResult:
        if self._shut:
            return SpanExportResult.FAILURE
        try:
            data = encode(batch)
            if len(data) > MAX_REQUEST_BYTES and count > 1:
                # The server would refuse it (RESOURCE_EXHAUSTED, retried in vain): two halves.
                half = count // 2
                first, second = halves(batch, half)
                sent = self._send(encode, halves, first, half) is SpanExportResult.SUCCESS
                if self._send(encode, halves, second, count - half) is SpanExportResult.FAILURE:
                    sent = False
            else:
                sent = self._transport.send(data)
        except Exception:
            _logger.exception("kafkascope: exporting %d spans failed", count)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS if sent else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Stop: an export waiting to retry gives up at once; later exports fail."""
        if not self._shut:
            self._shut = True
            self._transport.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here (the span processor holds the spans): True."""
        return True
