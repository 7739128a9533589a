package loadbalancingexporter

import (
	"context"
	"errors"
	"hash/fnv"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

type backend struct {
	host   string
	traces exporter.Traces
}

type traceExporter struct {
	backends []backend
	logger   *zap.Logger
}

var _ exporter.Traces = (*traceExporter)(nil)

func (e *traceExporter) Start(ctx context.Context, host component.Host) error {
	for _, b := range e.backends {
		if err := b.traces.Start(ctx, host); err != nil {
			return err
		}
	}
	e.logger.Info("routing traces by trace ID", zap.Int("backends", len(e.backends)))
	return nil
}

func (e *traceExporter) Shutdown(ctx context.Context) error {
	var errs error
	for _, b := range e.backends {
		errs = errors.Join(errs, b.traces.Shutdown(ctx))
	}
	return errs
}

func (e *traceExporter) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// ConsumeTraces splits the batch by backend and hands each part to that backend's exporter.
func (e *traceExporter) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	parts := splitByBackend(td, len(e.backends), func(id pcommon.TraceID) int {
		return pick(id, e.backends)
	})
	var errs error
	for i, part := range parts {
		if part.SpanCount() == 0 {
			continue
		}
		errs = errors.Join(errs, e.backends[i].traces.ConsumeTraces(ctx, part))
	}
	return errs
}

// pick returns the backend with the highest rendezvous score for the trace ID.
func pick(id pcommon.TraceID, backends []backend) int {
	best, bestScore := 0, uint64(0)
	for i, b := range backends {
		h := fnv.New64a()
		_, _ = h.Write([]byte(b.host))
		_, _ = h.Write(id[:])
		if score := mix(h.Sum64()); i == 0 || score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// mix is the splitmix64 finalizer: FNV alone spreads host names that differ only in their
// last characters (ports) unevenly over the backends.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// splitByBackend copies each span into the part of its backend, keeping resource and scope.
func splitByBackend(td ptrace.Traces, n int, choose func(pcommon.TraceID) int) []ptrace.Traces {
	parts := make([]ptrace.Traces, n)
	for i := range parts {
		parts[i] = ptrace.NewTraces()
	}
	for _, rs := range td.ResourceSpans().All() {
		resourceCopies := make([]ptrace.ResourceSpans, n)
		made := make([]bool, n)
		for _, ss := range rs.ScopeSpans().All() {
			scopeCopies := make([]ptrace.ScopeSpans, n)
			scopeMade := make([]bool, n)
			for _, span := range ss.Spans().All() {
				i := choose(span.TraceID())
				if !made[i] {
					resourceCopies[i] = parts[i].ResourceSpans().AppendEmpty()
					rs.Resource().CopyTo(resourceCopies[i].Resource())
					resourceCopies[i].SetSchemaUrl(rs.SchemaUrl())
					made[i] = true
				}
				if !scopeMade[i] {
					scopeCopies[i] = resourceCopies[i].ScopeSpans().AppendEmpty()
					ss.Scope().CopyTo(scopeCopies[i].Scope())
					scopeCopies[i].SetSchemaUrl(ss.SchemaUrl())
					scopeMade[i] = true
				}
				span.CopyTo(scopeCopies[i].Spans().AppendEmpty())
			}
		}
	}
	return parts
}
