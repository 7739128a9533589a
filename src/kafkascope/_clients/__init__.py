"""Wrapping each Kafka client: one module per client with its traced producer and its zero-code
hooks (``instrument(tracker)`` and ``uninstrument()`` for the instrumentor)."""
