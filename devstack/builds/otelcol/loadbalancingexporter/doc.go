// Package loadbalancingexporter sends every span of a trace to the same backend Collector.
//
// It stands in for the contrib loadbalancingexporter, which the Go module proxy reachable from
// kafkascope's build machines does not serve (no version of
// github.com/open-telemetry/opentelemetry-collector-contrib/exporter/loadbalancingexporter is
// listed there). It registers the same component type, "loadbalancing", and accepts the subset
// of that exporter's configuration used by collector/gateway/agent.yaml, so the same file runs
// on otelcol-kafkascope and on the otelcol-contrib image:
//
//	loadbalancing:
//	  routing_key: traceID          # the only key supported here (and the contrib default)
//	  protocol:
//	    otlp: { ... }               # any otlp_grpc exporter settings; endpoint is set per backend
//	  resolver:
//	    static:
//	      hostnames: [gw-1:4317, gw-2:4317]
//
// Backends are chosen by rendezvous hashing of the trace ID over the host names: a trace's
// spans go to one backend whichever agent sends them, and removing a backend moves only the
// traces that hashed to it. Each backend gets its own otlp_grpc exporter (with its own queue
// and retries). Only traces are supported: metrics need no trace-complete routing.
package loadbalancingexporter
