"""What kafkascope does with its own failures: log each kind once, never raise into user code.

Under kafkascope's own test suite ``strict`` mode re-raises instead, so our bugs stay loud there.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("kafkascope")

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
