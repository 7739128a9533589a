"""One warning when protobuf runs its pure-Python backend, which makes the SDK's OTLP encoders
(metrics, logs, and spans with ``otlp_span_exporter="sdk"``) several times slower."""

from __future__ import annotations

import logging
import threading

_warned = False
_lock = threading.Lock()


def backend() -> str:
    """protobuf's backend: ``upb``, ``cpp`` or ``python`` (``unknown`` if it cannot say)."""
    try:
        from google.protobuf.internal import api_implementation

        return str(api_implementation.Type())
    except Exception:  # a protobuf without this module: nothing to warn about
        return "unknown"


def warn_if_pure_python() -> None:
    """Log one warning per process if protobuf runs its pure-Python backend."""
    global _warned
    with _lock:
        if _warned or backend() != "python":
            return
        _warned = True
    logging.getLogger("kafkascope").warning(
        "kafkascope: protobuf runs its pure-Python backend (PROTOCOL_BUFFERS_PYTHON_"
        "IMPLEMENTATION=python, or no binary protobuf wheel for this platform): the SDK's OTLP "
        "encoding of metrics and logs is several times slower. Unset the variable or install "
        "a protobuf wheel with the upb backend."
    )
