"""Where a decorated handler's record is among its arguments.

The handler's signature is read once, at decoration: a function that cannot be given a record
is refused then. At each call the record is the first positional argument that is one (after
``self``); failing that, the keyword argument of the first parameter, in the signature's order,
given a record (any keyword for ``**kwargs``). A handler called without a record runs untraced
and says so once, in a warning naming it, never per message.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from kafkascope._adapters.records import (
    RecordAdapter,
    adapter_for,
    record_argument,
)
from kafkascope._core import errors as _errors

logger = logging.getLogger("kafkascope")

_RECEIVERS: Final = frozenset({"self", "cls"})
_NAMED: Final = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or repr(func)


def _parameters(func: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """The handler's parameters, ``self`` or ``cls`` first left out; None when unknown."""
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # a builtin or extension callable without a signature
        return None
    if parameters and parameters[0].name in _RECEIVERS:
        return parameters[1:]
    return parameters


def check_takes_an_argument(func: Callable[..., Any], decorator: str, what: str) -> None:
    """Refuse a function that has no parameter to receive ``what`` (``"the record"``).

    Raises:
        TypeError: naming the function and the decorator.
    """
    if _parameters(func) == []:
        raise TypeError(
            f"@{decorator} cannot trace {_name(func)}(): it takes no argument, so it cannot be "
            f"given {what}; the handler must take {what} as its first argument (after self)"
        )


Found = tuple[object, RecordAdapter]
"""A handler's record and the adapter that reads it."""


def _adapter(value: object) -> RecordAdapter | None:
    try:
        return adapter_for(value)
    except Exception:  # an object whose attribute access raises is not a record
        return None


class RecordArgument:
    """Finds the record among one handler's arguments; built once per decorated handler."""

    __slots__ = ("_any_keyword", "_handler", "_lock", "_names", "_warned")

    def __init__(self, func: Callable[..., Any]) -> None:
        parameters = _parameters(func)
        self._handler = _name(func)
        self._names: tuple[str, ...] = tuple(p.name for p in parameters or () if p.kind in _NAMED)
        self._any_keyword = parameters is None or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
        )
        self._warned = False
        self._lock = threading.Lock()

    def find(self, args: tuple[Any, ...], kwargs: Mapping[str, object]) -> Found | None:
        """The record ``args``/``kwargs`` carry, with its adapter (looked up once: the span
        reads the record through it); None (warning once) when they carry none. (A first
        argument of a named-tuple record type is found before this is called:
        :func:`~kafkascope._consume.single.starter`.)"""
        record: object = record_argument(args)
        adapter = _adapter(record)
        if adapter is not None:
            return record, adapter
        try:
            for name in self._names:
                if name in kwargs and (adapter := _adapter(record := kwargs[name])) is not None:
                    return record, adapter
            if self._any_keyword:
                for value in kwargs.values():
                    if (adapter := _adapter(value)) is not None:
                        return value, adapter
            self._warn(args, kwargs)
        except Exception as exc:
            _errors.report("handler record lookup", exc)
        return None

    def _warn(self, args: tuple[Any, ...], kwargs: Mapping[str, object]) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        # Type names only: a non-record argument may well be a message body.
        given = [type(a).__name__ for a in args]
        given += [f"{key}={type(value).__name__}" for key, value in kwargs.items()]
        keyword = f" or by keyword as {self._names[0]!r}" if self._names else ""
        logger.warning(
            "kafkascope: @traced_handler %s was called without a Kafka record (arguments: %s), "
            "so the call runs untraced; pass a kafka-python, confluent-kafka or aiokafka record "
            "(or one of a type given to register_record_adapter) as its first argument (after "
            "self)%s. Further calls of this handler without a record are not logged.",
            self._handler,
            ", ".join(given) or "none",
            keyword,
        )
