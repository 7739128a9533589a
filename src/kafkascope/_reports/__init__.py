"""Reading telemetry back from Jaeger and Prometheus: never runs inside a service."""
