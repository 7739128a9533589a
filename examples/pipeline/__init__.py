"""A real pipeline of four services, each its own process, connected by Kafka topics.

::

    orders ──{P}orders──▶ enricher ──{P}orders.enriched──▶ billing ──{P}orders.dlq──▶ audit
                                                   └──────────────────────────────────▶ audit

- ``orders`` places orders with :class:`kafkascope.TracedProducer` after
  :func:`kafkascope.configure`;
- ``enricher`` handles each order in :func:`kafkascope.process_span`, looks the customer up in a
  nested function that makes its own span, and produces the enriched order downstream;
- ``billing`` consumes in batches with :func:`kafkascope.traced_batch_handler`, charges each
  order in its own process span, and sends every declined one to the dead-letter topic;
- ``audit`` is an unmodified kafka-python consumer (no kafkascope or OpenTelemetry import) run
  under ``opentelemetry-instrument``: it records every enriched order and every dead letter.

Every service exports traces, metrics and logs over OTLP to the stack's Collector, configured
only through the standard ``OTEL_*`` variables that :mod:`examples.pipeline.launcher` sets.
``python -m examples.pipeline`` (``bash scripts/demo.sh``) runs it all against a real stack.
"""
