package loadbalancingexporter

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.uber.org/zap"
)

var componentType = component.MustNewType("loadbalancing")

// NewFactory returns the factory of the "loadbalancing" exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		componentType,
		createDefaultConfig,
		exporter.WithTraces(createTraces, component.StabilityLevelDevelopment),
	)
}

func createDefaultConfig() component.Config {
	otlp := otlpexporter.NewFactory().CreateDefaultConfig().(*otlpexporter.Config)
	return &Config{
		RoutingKey: "traceID",
		Protocol:   ProtocolConfig{OTLP: OTLPSettings(*otlp)},
	}
}

func createTraces(
	ctx context.Context,
	set exporter.Settings,
	cfg component.Config,
) (exporter.Traces, error) {
	config := cfg.(*Config)
	otlpFactory := otlpexporter.NewFactory()
	hosts := config.Resolver.Static.Hostnames
	backends := make([]backend, 0, len(hosts))
	for i, host := range hosts {
		backendCfg := otlpexporter.Config(config.Protocol.OTLP) // a copy per backend
		backendCfg.ClientConfig.Endpoint = host
		backendSet := set
		backendSet.ID = component.NewIDWithName(otlpFactory.Type(), fmt.Sprintf("%s_backend_%d", set.ID.String(), i))
		backendSet.Logger = set.Logger.With(zap.String("backend", host))
		traces, err := otlpFactory.CreateTraces(ctx, backendSet, &backendCfg)
		if err != nil {
			return nil, fmt.Errorf("backend %s: %w", host, err)
		}
		backends = append(backends, backend{host: host, traces: traces})
	}
	return &traceExporter{backends: backends, logger: set.Logger}, nil
}
