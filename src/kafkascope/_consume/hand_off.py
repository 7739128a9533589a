"""Hand-offs: work a handler passes to a thread keeps the message's context.

``ThreadPoolExecutor.submit``, ``threading.Thread`` and ``loop.run_in_executor`` run their
callable in the worker thread's own context, so the process span (and the message that log
records name) is lost there. :func:`hand_off` captures the caller's context when it wraps;
:class:`HandOffExecutor` does the same for every callable submitted to an executor.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")


def hand_off(fn: Callable[_P, _T], /) -> Callable[_P, _T]:
    """Wrap ``fn`` so that it runs in the context current now, wherever it is called later.

    Call it inside a handler, where the message's process span is current, and pass what it
    returns to a thread pool, a thread or ``loop.run_in_executor``: spans started in ``fn``
    are children of the process span (also once the handler has returned and its span has
    ended), and log records logged in ``fn`` carry the message's trace id and ``messaging.*``
    fields. Every context variable is carried, not only OpenTelemetry's; each call runs in its
    own copy, so the wrapper may run in several threads at once.

    Args:
        fn: a plain callable (a coroutine function is refused: ``asyncio.create_task``
            already copies the context into the task it starts).

    Returns:
        A callable with ``fn``'s signature and name.

    Raises:
        TypeError: ``fn`` is a coroutine function.

    Examples:
        ```python
        @traced_handler(group="billing")
        def handle(record):
            pool.submit(hand_off(charge), record.value)
        ```
    """
    if inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"hand_off({fn.__qualname__}): a coroutine function runs in the task that awaits "
            "it; asyncio.create_task copies the context already"
        )
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def in_context(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        return captured.copy().run(fn, *args, **kwargs)

    return in_context


class HandOffExecutor(Executor):
    """An executor whose submitted callables run in the submitter's context.

    Wraps any ``concurrent.futures`` executor (a ``ThreadPoolExecutor`` usually): ``submit``
    (and ``map``, which submits) passes each callable through :func:`hand_off` first, so work
    submitted from a handler belongs to the message's trace. Give it to
    ``loop.run_in_executor`` to carry the context there too. Shutting it down shuts the
    wrapped executor down.

    Args:
        executor: the executor that runs the work.

    Examples:
        ```python
        pool = HandOffExecutor(ThreadPoolExecutor(max_workers=4))
        await loop.run_in_executor(pool, resize, image)
        ```
    """

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Schedule ``fn(*args, **kwargs)`` in the wrapped executor, in the current context."""
        # A fresh copy per submission is entered once only: its own run() is the wrapper.
        run: Callable[..., _T] = contextvars.copy_context().run
        return self.executor.submit(run, fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the wrapped executor down."""
        self.executor.shutdown(wait=wait, cancel_futures=cancel_futures)
