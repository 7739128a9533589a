"""confluent-kafka's commits: ``Consumer.commit`` (the application's) and librdkafka's own
auto-commits, which only its ``on_commit`` callback reports.

A synchronous commit's span lasts the call; its offsets are those it returns (or those passed,
when it fails). librdkafka reports an asynchronous commit's outcome and offsets to ``on_commit``,
served by a later ``poll()``: kafkascope's instrumented ``Consumer`` configures an ``on_commit``
that ends the spans of the application's asynchronous commits in the order they were made, makes
a span for each report beyond them (an auto-commit: one per ``auto.commit.interval.ms`` with
something to commit), and then calls the application's own ``on_commit`` with the same
arguments.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from kafkascope._adapters import offsets as _offsets
from kafkascope._adapters.confluent import error_name, exception_of, kafka_error_name
from kafkascope._consume.commit import CommitScope
from kafkascope._consume.tracker import ConsumerTracker, Describe
from kafkascope._core import errors as _errors
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings

OnCommit = Callable[[Any, Any], object]
"""``(err, partitions)``: confluent-kafka's offset commit callback."""


class CommitReports:
    """The ``on_commit`` kafkascope configures: ends the spans of the asynchronous commits,
    makes those of the auto-commits, then calls the application's ``on_commit``."""

    def __init__(
        self, tracker: ConsumerTracker, describe: Describe, callback: OnCommit | None
    ) -> None:
        self._tracker = tracker
        self._describe = describe
        self._callback = callback
        self._consumer: weakref.ref[Any] | None = None
        self.pending: deque[CommitScope] = deque()
        """The application's asynchronous commits not reported yet, oldest first."""

    def attach(self, consumer: Any) -> None:
        """The consumer whose reports these are (after it was made)."""
        self._consumer = weakref.ref(consumer)

    def __call__(self, err: Any, partitions: Any) -> None:
        try:
            self._report(err, partitions)
        except Exception as exc:
            _errors.report("commit report", exc)
        if self._callback is not None:
            self._callback(err, partitions)  # its exceptions surface from poll(), as without us

    def _report(self, err: Any, partitions: Any) -> None:
        if self.pending:
            scope: CommitScope | None = self.pending.popleft()
        else:
            consumer = self._consumer() if self._consumer is not None else None
            if consumer is None:
                return
            scope = self._tracker.commit_scope(consumer, self._describe, sc.COMMIT_AUTO)
        if scope is None:
            return
        committed = _offsets.from_partitions(partitions)
        if err is None:
            scope.finish(None, offsets=committed)
        else:
            scope.finish(exception_of(err), kafka_error_name(err), offsets=committed or None)


def with_reports(
    tracker: ConsumerTracker, describe: Describe, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any], CommitReports | None]:
    """A ``Consumer``'s arguments with kafkascope's ``on_commit`` in its configuration (the
    application's is chained); unchanged when commit spans are off. Never raises."""
    try:
        return _with_reports(tracker, describe, args, kwargs)
    except Exception as exc:
        _errors.report("instrumented confluent-kafka consumer", exc)
        return args, kwargs, None


def _with_reports(
    tracker: ConsumerTracker, describe: Describe, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any], CommitReports | None]:
    if not _settings.current().commit_spans:
        return args, kwargs, None
    if "on_commit" in kwargs:
        reports = CommitReports(tracker, describe, kwargs["on_commit"])
        return args, {**kwargs, "on_commit": reports}, reports
    if args and isinstance(args[0], dict):
        reports = CommitReports(tracker, describe, args[0].get("on_commit"))
        return ({**args[0], "on_commit": reports}, *args[1:]), kwargs, reports
    reports = CommitReports(tracker, describe, None)
    return args, {**kwargs, "on_commit": reports}, reports


def attach(reports: CommitReports | None, consumer: Any) -> CommitReports | None:
    """``reports``, now reporting ``consumer``'s commits."""
    if reports is not None:
        reports.attach(consumer)
    return reports


def commit(
    tracker: ConsumerTracker,
    describe: Describe,
    consumer: Any,
    call: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """The instrumented ``Consumer.commit``: the open process span ends (as at any call into
    the consumer), then the commit runs in its span."""

    def traced(*a: Any, **k: Any) -> Any:
        reports = getattr(consumer, "_kafkascope_reports", None)
        return traced_commit(tracker, describe, consumer, reports, call, a, k)

    return tracker.call(consumer, None, describe, traced, args, kwargs)


_ARGUMENTS = ("message", "offsets", "asynchronous")


def traced_commit(
    tracker: ConsumerTracker,
    describe: Describe,
    consumer: Any,
    reports: CommitReports | None,
    call: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """``Consumer.commit(*args, **kwargs)`` with its commit span."""
    given = dict(zip(_ARGUMENTS, args, strict=False)) | kwargs
    asynchronous = given.get("asynchronous", True)
    if asynchronous and reports is None:
        return call(*args, **kwargs)  # nothing would report its outcome
    scope = tracker.commit_scope(consumer, describe, sc.COMMIT_APPLICATION)
    if scope is None:
        return call(*args, **kwargs)
    committed: list[_offsets.Committed] | None = None
    if given.get("message") is not None:
        committed = _offsets.from_message(given["message"])
    elif given.get("offsets") is not None:
        committed = _offsets.from_partitions(given["offsets"])
    scope.offsets = committed
    if asynchronous and reports is not None:
        reports.pending.append(scope)
    try:
        result = call(*args, **kwargs)
    except BaseException as exc:
        if asynchronous and reports is not None and scope in reports.pending:
            reports.pending.remove(scope)
        scope.finish(exc, error_name(exc))
        raise
    if not asynchronous:
        scope.finish(None, offsets=_offsets.from_partitions(result) or committed)
    return result
