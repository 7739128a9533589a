"""Record headers: the shapes the clients hand them in, and the names of kafkascope's own
headers, each defined here once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, TypeAlias

HeaderValue: TypeAlias = bytes | bytearray | memoryview | str | None
Headers: TypeAlias = (
    Iterable[tuple[str | bytes, HeaderValue]]
    | Mapping[str, HeaderValue]
    | Mapping[bytes, HeaderValue]
    | Mapping[str | bytes, HeaderValue]
    | None
)
"""A list of ``(name, value)`` pairs (kafka-python, aiokafka, confluent-kafka) or a mapping;
names ``str`` or ``bytes``, values ``bytes``, ``str`` or ``None``."""

PIPELINE: Final = "kafkascope-pipeline-start"
"""The pipeline stamp, a chain's start: ``<epoch milliseconds>;<origin topic>`` in ASCII."""
PIPELINE_BYTES: Final = PIPELINE.encode("ascii")
ATTEMPT: Final = "kafkascope-attempt"
"""A retried message's attempt number."""
ATTEMPT_BYTES: Final = ATTEMPT.encode("ascii")
PREVIOUS_ATTEMPT: Final = "kafkascope-previous-attempt"
"""The ``traceparent`` of the previous attempt's process span."""
PREVIOUS_ATTEMPT_BYTES: Final = PREVIOUS_ATTEMPT.encode("ascii")
DEAD_LETTER_PREFIX: Final = "kafkascope.dlq."
"""Prefix of the headers :func:`kafkascope.dead_letter` adds."""
