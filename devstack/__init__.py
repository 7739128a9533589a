"""Real servers for kafkascope's demo and tests: Kafka, Prometheus, the Collector, Jaeger.

Each server runs as its own process bound to 127.0.0.1 on free ports, waits for readiness within a
bounded time and is stopped by its own PID. Nothing here is part of the kafkascope package.
"""
