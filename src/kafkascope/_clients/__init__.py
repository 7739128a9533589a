"""One module per Kafka client: its traced producer and its zero-code hooks, nothing else.

Each module offers ``instrument(tracker)`` and ``uninstrument()`` for
:class:`~kafkascope.instrumentor.KafkascopeInstrumentor`.
"""
