"""What kafkascope does with its own failures: log each kind once, never raise into user code;
and the error a bad setting raises at configuration time.

Under kafkascope's own test suite ``strict`` mode re-raises instead, so our bugs stay loud there.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("kafkascope")


class ConfigurationError(ValueError):
    """A bad value in an option or an ``OTEL_*`` variable, raised at configuration time.

    The message starts with the setting and its value (``OTEL_TRACES_SAMPLER='bogus' ...``);
    :attr:`setting` names the option or variable alone.

    Args:
        setting: the option or variable, e.g. ``OTEL_TRACES_SAMPLER`` or ``poison_attempts``.
        message: the error's message, naming the setting and its value.
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


_reported: set[str] = set()
_lock = threading.Lock()
_strict = False


def set_strict(strict: bool) -> bool:
    """Re-raise internal errors instead of logging them; returns the previous setting."""
    global _strict
    previous, _strict = _strict, strict
    return previous


def report(where: str, exc: BaseException) -> None:
    """Log an internal failure at ``where`` once per distinct place and exception type."""
    if _strict:
        raise exc
    key = f"{where}:{type(exc).__qualname__}"
    with _lock:
        if key in _reported:
            return
        _reported.add(key)
    logger.warning(
        "kafkascope: instrumentation error in %s, telemetry for this message is incomplete "
        "(further errors of this kind are not logged)",
        where,
        exc_info=exc,
    )


def reset_reported() -> None:
    """Forget which failures were logged (for tests)."""
    with _lock:
        _reported.clear()
