"""A handler's process-span options: validated once, with the attribute sets its messages share.

:class:`ProcessOptions` is built when a handler is decorated (or a consumer instrumented);
:func:`~kafkascope._consume.single.begin` and
:func:`~kafkascope._consume.batch.begin_batch` open a process span with them.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from opentelemetry.util.types import AttributeValue

from kafkascope._core import metrics as _metrics
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope._core.header_capture import HeaderCapture
from kafkascope._core.settings import ParentPolicy
from kafkascope._core.telemetry import messaging_attributes, parse_server
from kafkascope._propagation.poison import Attempts

_MAX_CACHED: Final = 4096
"""Topics, and partitions per topic, whose attributes a handler keeps (beyond: built each
time)."""


class ProcessOptions:
    """A handler's options, validated once when the handler is decorated."""

    __slots__ = (
        "attempts",
        "capture_headers",
        "capture_key",
        "client_id",
        "group",
        "instruments",
        "meter_provider",
        "parent",
        "server_address",
        "server_port",
        "span_starts",
        "streams_by_topic",
        "tracer_provider",
    )

    def __init__(
        self,
        *,
        group: str | None = None,
        parent: ParentPolicy | None = None,
        server: str | None = None,
        capture_key: bool | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        client_id: str | None = None,
        capture_headers: object = None,
    ) -> None:
        self.client_id = client_id if isinstance(client_id, str) and client_id else None
        self.group = _settings.check_group(group)
        self.parent = _settings.check_parent(parent) if parent is not None else None
        self.server_address, self.server_port = parse_server(server)
        self.capture_key = (
            _settings.check_bool(capture_key, "capture_key") if capture_key is not None else None
        )
        self.capture_headers: HeaderCapture | None = (
            _settings.check_capture_headers(capture_headers)
            if capture_headers is not None
            else None
        )
        _settings.check_providers(tracer_provider, meter_provider)
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.attempts = Attempts(self.group, meter_provider)
        self.span_starts: dict[
            str | None, dict[int | None, tuple[str, dict[str, AttributeValue]]]
        ] = {}
        """What :meth:`span_start` has built, per topic then partition (what every message of
        it shares). The per-message paths read it before calling :meth:`span_start`, for the
        call."""
        self.streams_by_topic: dict[str | None, _metrics.ProcessStreams] = {}
        """What :meth:`streams` has built, per topic, for :attr:`instruments`."""
        self.instruments: _metrics.MessagingMetrics | None = None
        """The instruments :attr:`streams_by_topic` belong to. The per-message paths read both
        before calling :meth:`streams`, for the call."""

    def span_base(self, topic: str | None, partition: int | None) -> dict[str, AttributeValue]:
        """The span attributes every message of ``topic`` and ``partition`` starts with (shared:
        not to be modified)."""
        return self.span_start(topic, partition)[1]

    def span_start(
        self, topic: str | None, partition: int | None
    ) -> tuple[str, dict[str, AttributeValue]]:
        """The process span's name and :meth:`span_base`, for a message of ``topic`` and
        ``partition``: one lookup per message."""
        by_partition = self.span_starts.get(topic)
        if by_partition is None:
            by_partition = {}
            if len(self.span_starts) < _MAX_CACHED:
                self.span_starts[topic] = by_partition
        found = by_partition.get(partition)
        if found is None:
            found = (
                sc.process_span_name(topic),
                messaging_attributes(
                    sc.OPERATION_PROCESS,
                    topic=topic,
                    partition=partition,
                    group=self.group,
                    server_address=self.server_address,
                    server_port=self.server_port,
                    client_id=self.client_id,
                ),
            )
            if len(by_partition) < _MAX_CACHED:
                by_partition[partition] = found
        return found

    def streams(
        self, instruments: _metrics.MessagingMetrics, topic: str | None
    ) -> _metrics.ProcessStreams:
        """The metric attribute sets of this handler's messages on ``topic``."""
        if instruments is not self.instruments:
            self.streams_by_topic = {}  # another meter provider: its own instruments
            self.instruments = instruments
        found = self.streams_by_topic.get(topic)
        if found is None:
            found = instruments.process_streams(
                topic, self.group, self.server_address, self.server_port
            )
            if len(self.streams_by_topic) < _MAX_CACHED:
                self.streams_by_topic[topic] = found
        return found
