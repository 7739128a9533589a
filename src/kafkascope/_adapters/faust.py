"""Reading Faust's objects (never importing Faust): its ``Message``, whose timestamp is in
seconds, and the app settings a process span names (group, bootstrap server, client id)."""

from __future__ import annotations

from typing import Any

from kafkascope._adapters.consumer import text
from kafkascope._adapters.records import RecordView, adapt_attributes

_MAX_SECONDS = 2**53 / 1000.0
"""Past this a float timestamp has lost its milliseconds (and is no real time anyway)."""


def message_view(message: Any) -> RecordView:
    """A Faust ``faust.types.tuples.Message``: read as aiokafka's record, with its
    ``timestamp`` (seconds, a float) turned into milliseconds."""
    record = adapt_attributes(message)
    try:
        stamp = message.timestamp
    except Exception:  # a field that cannot be read is unknown
        stamp = None
    if type(stamp) is float or type(stamp) is int:
        record.timestamp_ms = round(stamp * 1000.0) if 0 <= stamp < _MAX_SECONDS else None
    return record


def _attribute(obj: object, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def settings_of(app: Any) -> tuple[str | None, str | None, str | None]:
    """``(group, "host:port", client id)`` of a Faust app: its ``id`` is the consumer group,
    the first ``broker`` URL (``kafka://host:port``) the server, ``broker_client_id`` the
    client id; None for what is unreadable."""
    conf = _attribute(app, "conf")
    brokers = _attribute(conf, "broker")
    first = brokers[0] if isinstance(brokers, list | tuple) and brokers else brokers
    host, port = text(_attribute(first, "host")), _attribute(first, "port")
    server = f"{host}:{port}" if host is not None and type(port) is int else None
    return text(_attribute(conf, "id")), server, text(_attribute(conf, "broker_client_id"))
