"""A span put into an OpenTelemetry context in one step, as ``trace.set_span_in_context`` does.

``set_span_in_context(span, parent)`` returns a copy of ``parent`` (a ``Context``, a ``dict``)
with the span under the API's span key, through two calls: about 750 callgrind instructions of
an unsampled message's work. The per-message paths build the same ``Context`` themselves, with
the key learnt from ``set_span_in_context``'s own result when this module is imported, and
checked there against ``get_current_span``. An API that stores the span some other way fails
the check: :data:`SPAN_KEY` is then None and :func:`with_span` calls the API.
"""

from __future__ import annotations

from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span


def _learn_key() -> str | None:
    """The one key ``set_span_in_context`` adds to a context for its span, when a plain
    ``Context`` holding the span under that key alone is what the API reads back."""
    probe = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    parent = Context({"kafkascope.probe": probe})
    made = trace.set_span_in_context(probe, parent)
    added = [key for key in made if key not in parent]
    if type(made) is not Context or len(made) != 2 or len(added) != 1:
        return None
    key = added[0]
    if made[key] is not probe or trace.get_current_span(Context({key: probe})) is not probe:
        return None
    return key


SPAN_KEY: Final = _learn_key()
"""The API's key for the current span in a ``Context``; None when it could not be learnt."""


def with_span(span: Span, parent: Context) -> Context:
    """What ``trace.set_span_in_context(span, parent)`` returns (a new context: ``parent`` is
    not changed). The per-message paths write this out in place, for its call."""
    if SPAN_KEY is None:
        return trace.set_span_in_context(span, parent)
    return Context({**parent, SPAN_KEY: span}) if parent else Context({SPAN_KEY: span})
