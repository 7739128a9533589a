"""One bounded wait for everything the servers, tests and benchmarks wait for.

``wait_until(predicate, timeout, what)`` replaces the hand-written
``deadline = time.monotonic() + t; while ...`` loops: it checks ``predicate`` until it gives
something truthy and returns that, or raises :class:`TimeoutError` naming ``what`` and the
timeout. Tests import it from here (tests may import devstack; devstack never imports tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_INTERVAL = 0.05
"""Seconds between two checks when no ``step`` is given: short next to every wait we do."""


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str | Callable[[], str],
    *,
    step: Callable[[], object] | None = None,
    interval: float = POLL_INTERVAL,
) -> T:
    """Check ``predicate`` until it returns something truthy; return that value.

    The predicate is checked at once, then after each ``step()`` (a consumer's ``poll`` that
    waits itself, say) or, without a step, after sleeping ``interval`` seconds. It is checked
    once more after the deadline has passed, so a step that outlasts the deadline is not wasted.
    Exceptions of the predicate and the step propagate unchanged. A found value that may be
    falsy (``0``, an empty dict, a confluent-kafka ``Message`` with an empty value, whose
    ``len()`` is 0) must be wrapped, in a one-item list say.

    Args:
        predicate: Called with no arguments; a truthy result ends the wait.
        timeout: Seconds to keep checking.
        what: What is awaited, for the error (``"an assignment"`` reads "waited 30s for an
            assignment"); or a function giving it when the wait expires, to say what was
            last seen.
        step: Called between two checks instead of sleeping.
        interval: Seconds slept between two checks when there is no ``step``.

    Returns:
        The predicate's first truthy result.

    Raises:
        TimeoutError: ``timeout`` seconds passed without a truthy result; the message names
            ``what`` and the timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        expired = time.monotonic() >= deadline
        found = predicate()
        if found:
            return found
        if expired:
            described = what if isinstance(what, str) else what()
            raise TimeoutError(f"waited {timeout:g}s for {described}")
        if step is None:
            time.sleep(interval)
        else:
            step()
