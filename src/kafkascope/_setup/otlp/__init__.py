"""The direct OTLP span exporter: spans encoded straight to protobuf bytes (in ``configure()``,
when each span ends), queued as bytes, sent over gRPC or HTTP."""
