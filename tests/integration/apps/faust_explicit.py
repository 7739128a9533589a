"""The Faust app of ``faust_app.py``, instrumented in code instead of by
``opentelemetry-instrument``: ``kafkascope.faust.instrument_app`` with a tracer provider of
its own that prints each span to the console.

Usage: faust_explicit.py BOOTSTRAP PREFIX COUNT
"""

import faust_app  # type: ignore[import-not-found]  # beside this file (apps/ on PYTHONPATH)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import kafkascope.faust

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
kafkascope.faust.instrument_app(faust_app.app, tracer_provider=provider)

if __name__ == "__main__":
    faust_app.app.main()
