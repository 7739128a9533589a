"""``@traced_handler``, ``@traced_batch_handler`` and ``process_span``: the consume side."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, ParamSpec, TypeAlias, TypeVar, overload

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.trace import Span, TracerProvider

from kafkascope._consume.batch import begin_batch
from kafkascope._consume.handler_args import RecordArgument, check_takes_an_argument
from kafkascope._consume.options import ProcessOptions
from kafkascope._consume.scope import ProcessScope
from kafkascope._consume.single import begin, starter
from kafkascope._core.settings import ParentPolicy, check_bool

P = ParamSpec("P")
R = TypeVar("R")


def _check_function(func: object, decorator: str, what: str) -> None:
    if not callable(func):
        raise TypeError(f"@{decorator} needs a function, got {func!r}")
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise TypeError(
            f"@{decorator} cannot wrap the generator function {func!r}: the span would end "
            "before the generator runs; decorate the function that consumes it instead"
        )
    check_takes_an_argument(func, decorator, what)


def _batch_from(args: tuple[Any, ...]) -> Any:
    for arg in args[:2]:
        if isinstance(arg, list | tuple | dict):
            return arg
    return args[0] if args else ()


_Start: TypeAlias = Callable[[tuple[Any, ...], Mapping[str, Any]], ProcessScope | None]
"""Opens the span of one call from its positional and keyword arguments."""


def _wrap(func: Callable[P, R], start: _Start) -> Callable[P, R]:
    if inspect.iscoroutinefunction(func):
        async_func: Callable[P, Awaitable[Any]] = func

        @functools.wraps(func)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            scope = start(args, kwargs)
            if scope is None:
                return await async_func(*args, **kwargs)
            try:
                result = await async_func(*args, **kwargs)
            except BaseException as exc:
                scope.finish(exc)
                raise
            scope.finish(None)
            return result

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        scope = start(args, kwargs)
        if scope is None:
            return func(*args, **kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            scope.finish(exc)
            raise
        scope.finish(None)
        return result

    return wrapper


@overload
def traced_handler(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def traced_handler(
    *,
    group: str | None = None,
    parent: ParentPolicy | None = None,
    server: str | None = None,
    capture_key: bool | None = None,
    capture_headers: str | Sequence[str] | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def traced_handler(
    func: Callable[P, R] | None = None,
    /,
    *,
    group: str | None = None,
    parent: ParentPolicy | None = None,
    server: str | None = None,
    capture_key: bool | None = None,
    capture_headers: str | Sequence[str] | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Trace a message handler: one ``process {topic}`` CONSUMER span per call, current while
    the handler runs, plus the messaging metrics.

    Use bare (``@traced_handler``) or with options (``@traced_handler(group="billing")``), on
    plain or ``async def`` handlers whose first argument (after ``self`` for methods) is a record
    of kafka-python, confluent-kafka, aiokafka or any client registered with
    :func:`register_record_adapter`; the record may also be passed by keyword. A call without a
    record runs the handler untraced, with one warning per handler on the ``kafkascope`` logger.
    The handler's exceptions are recorded on the span and re-raised unchanged; kafkascope's own
    failures never reach the handler.

    Args:
        func: the handler, when used bare (``@traced_handler``).
        group: the consumer group, recorded as ``messaging.consumer.group.name``.
        parent: ``"producer"`` (the producer's span is the parent), ``"links"`` (a new trace
            linked to the producer) or ``"ambient"`` (the current span is the parent). Default:
            the configured policy, ``"producer"`` unless changed.
        server: ``"host:port"`` of the broker, recorded as ``server.address``/``server.port``.
        capture_key: record the UTF-8 message key (default: the configured setting).
        capture_headers: header names or globs (``!`` excludes) to put on the span as
            ``messaging.header.<name>`` (default: the configured setting; ``[]`` for none).
        tracer_provider: default, the global one.
        meter_provider: default, the global one.

    Raises:
        ValueError: an unknown parent policy or a bad server port.
        TypeError: an option of the wrong type, a generator function, or a function that takes
            no argument (so no record).

    Returns:
        The traced handler (bare use), or a decorator that makes one.

    Examples:
        ```python
        @kafkascope.traced_handler(group="billing")
        def charge(record):
            log.info("charging %s", record.key)  # carries the message's trace id
        ```
    """
    options = ProcessOptions(
        group=group,
        parent=parent,
        server=server,
        capture_key=capture_key,
        capture_headers=capture_headers,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        _check_function(fn, "traced_handler", "the record")
        return _wrap(fn, starter(options, RecordArgument(fn).find))

    return decorate(func) if func is not None else decorate


@overload
def traced_batch_handler(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def traced_batch_handler(
    *,
    group: str | None = None,
    server: str | None = None,
    metrics: bool = True,
    capture_headers: str | Sequence[str] | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def traced_batch_handler(
    func: Callable[P, R] | None = None,
    /,
    *,
    group: str | None = None,
    server: str | None = None,
    metrics: bool = True,
    capture_headers: str | Sequence[str] | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Trace a handler that takes a batch: a list of records or ``poll()``'s mapping.

    One ``process`` CONSUMER span covers the batch, with one link per message carrying that
    message's topic, partition and offset, ``messaging.batch.message_count``, and the
    destination name when all records share one topic. The span's parent is the current span
    (a batch has no single producer to continue).

    Args:
        func: the handler, when used bare (``@traced_batch_handler``).
        group: the consumer group.
        server: ``"host:port"`` of the broker.
        metrics: record the messaging metrics for the batch; pass False when each message is
            also handled in its own :func:`process_span`, so no message is counted twice.
        capture_headers: header names or globs to put on each message's link as
            ``messaging.header.<name>`` (default: the configured setting; ``[]`` for none).
        tracer_provider: default, the global one.
        meter_provider: default, the global one.

    Returns:
        The traced handler (bare use), or a decorator that makes one.
    """
    options = _batch_options(
        group, server, metrics, capture_headers, tracer_provider, meter_provider
    )

    def start(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> ProcessScope | None:
        return begin_batch(options, _batch_from(args))

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        _check_function(fn, "traced_batch_handler", "the batch")
        return _wrap(fn, start)

    return decorate(func) if func is not None else decorate


class ProcessSpan:
    """Context manager form of :func:`traced_handler`; see :func:`process_span`."""

    __slots__ = ("_batch", "_options", "_records", "_scope")

    def __init__(self, options: ProcessOptions, records: Any, *, batch: bool) -> None:
        self._options = options
        self._records = records
        self._batch = batch
        self._scope: ProcessScope | None = None

    def __enter__(self) -> Span:
        if self._batch:
            self._scope = begin_batch(self._options, self._records)
        else:
            self._scope = begin(self._options, self._records)
        return self._scope.span if self._scope is not None else trace.INVALID_SPAN

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._scope is not None:
            self._scope.finish(exc)
            self._scope = None

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def process_span(
    record: Any,
    *,
    group: str | None = None,
    parent: ParentPolicy | None = None,
    server: str | None = None,
    capture_key: bool | None = None,
    capture_headers: str | Sequence[str] | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> ProcessSpan:
    """The process span of one record as a context manager (``with`` or ``async with``).

    The span is current inside the block and yielded to it; an exception leaving the block is
    recorded and propagates unchanged. Options are those of :func:`traced_handler`.

    Args:
        record: the record being processed, of any supported client.
        group: the consumer group, recorded as ``messaging.consumer.group.name``.
        parent: ``"producer"``, ``"links"`` or ``"ambient"`` (default: the configured policy).
        server: ``"host:port"`` of the broker.
        capture_key: record the UTF-8 message key (default: the configured setting).
        capture_headers: header names or globs (``!`` excludes) to put on the span as
            ``messaging.header.<name>`` (default: the configured setting; ``[]`` for none).
        tracer_provider: default, the global one.
        meter_provider: default, the global one.

    Returns:
        A context manager (``with`` or ``async with``) yielding the process span.

    Examples:
        ```python
        for record in consumer:
            with kafkascope.process_span(record, group="billing") as span:
                span.set_attribute("app.order_id", order_id(record))
                handle(record)
        ```
    """
    options = ProcessOptions(
        group=group,
        parent=parent,
        server=server,
        capture_key=capture_key,
        capture_headers=capture_headers,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    return ProcessSpan(options, record, batch=False)


def process_batch_span(
    records: Iterable[Any],
    *,
    group: str | None = None,
    server: str | None = None,
    metrics: bool = True,
    capture_headers: str | Sequence[str] | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> ProcessSpan:
    """The process span of a batch as a context manager; see :func:`traced_batch_handler`.

    Args:
        records: a list of records or ``poll()``'s mapping of partitions to records.
        group: the consumer group.
        server: ``"host:port"`` of the broker.
        metrics: record the messaging metrics for the batch (False when each message also gets
            its own :func:`process_span`).
        capture_headers: header names or globs to put on each message's link.
        tracer_provider: default, the global one.
        meter_provider: default, the global one.

    Returns:
        A context manager (``with`` or ``async with``) yielding the batch's span.

    Examples:
        ```python
        with kafkascope.process_batch_span(consumer.poll(timeout_ms=500), group="billing"):
            ...
        ```
    """
    options = _batch_options(
        group, server, metrics, capture_headers, tracer_provider, meter_provider
    )
    return ProcessSpan(options, records, batch=True)


def _batch_options(
    group: str | None,
    server: str | None,
    metrics: bool,
    capture_headers: str | Sequence[str] | None,
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None,
) -> ProcessOptions:
    if not check_bool(metrics, "metrics"):
        meter_provider = NoOpMeterProvider()
    return ProcessOptions(
        group=group,
        server=server,
        capture_headers=capture_headers,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
