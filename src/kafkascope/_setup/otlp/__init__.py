"""The direct OTLP span exporter: spans encoded straight to protobuf bytes, sent over gRPC
or HTTP."""
