// A trace-ID load-balancing exporter for otelcol-kafkascope (see doc.go). Built into the
// collector by scripts/build_collector.sh through the "path:" entry of builder-config.yaml.
module example.com/otelcol-kafkascope/loadbalancingexporter

go 1.25.0

require (
	go.opentelemetry.io/collector/component v1.61.0
	go.opentelemetry.io/collector/consumer v1.61.0
	go.opentelemetry.io/collector/exporter v1.61.0
	go.opentelemetry.io/collector/exporter/otlpexporter v0.155.0
	go.opentelemetry.io/collector/pdata v1.61.0
	go.uber.org/zap v1.28.0
)
