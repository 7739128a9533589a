"""Faust, explicitly: process spans for a ``faust.App``'s agents without
``opentelemetry-instrument`` (which adds them to every app on its own).

.. code-block:: python

    import faust
    import kafkascope.faust

    app = faust.App("billing", broker="kafka://localhost:9092")
    kafkascope.faust.instrument_app(app)

Importing this module imports Faust (``faust-streaming``).
"""

from __future__ import annotations

from kafkascope._clients.faust import KafkascopeSensor, instrument_app

__all__ = ["KafkascopeSensor", "instrument_app"]
