"""One warning, not one per export attempt, while the telemetry backend is down.

The OTLP exporters log every failed or retried export. With a backend down for an hour that is
hundreds of identical lines; :func:`quiet_exporter_logs` (applied by ``configure()``) lets the
first of each kind through and then at most one per interval, saying how many were held back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

EXPORTER_LOGGERS: Final = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "kafkascope._setup.otlp.transport",
    "kafkascope._setup.otlp.exporter",
)
INTERVAL_SECONDS: Final = 300.0


class RepeatFilter(logging.Filter):
    """Passes the first WARNING-or-worse record of each kind (logger and message template),
    then one per ``interval`` seconds, noting how many were suppressed meanwhile."""

    def __init__(
        self, interval: float = INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._last: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Forget every kind seen: the next record of each kind passes again."""
        with self._lock:
            self._last.clear()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg)[:60])
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last[0] < self.interval:
                self._last[key] = (last[0], last[1] + 1)
                return False
            held = last[1] if last is not None else 0
            self._last[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} similar messages suppressed by kafkascope)"
        return True


_installed: RepeatFilter | None = None


def quiet_exporter_logs(interval: float = INTERVAL_SECONDS) -> RepeatFilter:
    """Install the :class:`RepeatFilter` on the OTLP exporters' loggers (once)."""
    global _installed
    if _installed is None:
        _installed = RepeatFilter(interval)
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).addFilter(_installed)
    return _installed
