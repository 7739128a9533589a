""":class:`Telemetry`, what ``configure()`` returns: the providers, and a shutdown that an
unreachable backend cannot stretch past its bound."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

logger = logging.getLogger("kafkascope")

NOTICE_AFTER_S: Final = 1.0
"""A shutdown still waiting after this long says so, with what it waits for."""


@dataclass
class Telemetry:
    """What :func:`configure` set up: the providers, and their flush and shutdown."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider | None
    _shut: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export everything pending; True when every provider finished in time."""
        ok = self.tracer_provider.force_flush(timeout_millis)
        ok = self.meter_provider.force_flush(timeout_millis) and ok
        if self.logger_provider is not None:
            ok = self.logger_provider.force_flush(timeout_millis) and ok
        return ok

    def shutdown(self, timeout_millis: int = 10_000) -> bool:
        """Flush and stop every provider within ``timeout_millis``; later calls do nothing.

        The providers export their last data side by side, each with the whole budget. An
        unreachable backend cannot hold the process: a wait longer than a second is announced
        on stderr, and at the deadline the rest is abandoned (and said so). Returns True when
        everything finished in time.
        """
        with self._lock:
            if self._shut:
                return True
            self._shut = True
        deadline = time.monotonic() + timeout_millis / 1000
        jobs: dict[str, Callable[[], object]] = {
            "traces": self.tracer_provider.shutdown,
            "metrics": partial(self.meter_provider.shutdown, timeout_millis=timeout_millis),
        }
        if self.logger_provider is not None:
            jobs["logs"] = self.logger_provider.shutdown
        workers = {
            signal: threading.Thread(
                target=_shut_one,
                args=(signal, job),
                name=f"kafkascope-shutdown-{signal}",
                daemon=True,  # abandoned at the deadline, it must not hold the exit
            )
            for signal, job in jobs.items()
        }
        for worker in workers.values():
            worker.start()
        pending = _join(workers, min(deadline, time.monotonic() + NOTICE_AFTER_S))
        if pending and deadline > time.monotonic():
            logger.warning(
                "kafkascope: waiting up to %.1f s more for the telemetry backend (%s still "
                "exporting); is it reachable?",
                deadline - time.monotonic(),
                ", ".join(pending),
            )
            pending = _join(workers, deadline)
        if pending:
            logger.warning(
                "kafkascope: telemetry shutdown did not finish within %d ms; pending %s dropped",
                timeout_millis,
                ", ".join(pending),
            )
            return False
        return True


def _shut_one(signal: str, job: Callable[[], object]) -> None:
    try:
        job()
    except Exception as exc:  # a provider's failure must not become a thread traceback
        logger.warning("kafkascope: shutting down the %s provider failed", signal, exc_info=exc)


def _join(workers: dict[str, threading.Thread], until: float) -> list[str]:
    """Wait for the workers until the monotonic time ``until``; the signals still running."""
    for worker in workers.values():
        worker.join(max(0.0, until - time.monotonic()))
    return [signal for signal, worker in workers.items() if worker.is_alive()]
