package loadbalancingexporter

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/exporter/otlpexporter"
)

// Config is the configuration of the exporter (a subset of the contrib exporter's).
type Config struct {
	// RoutingKey must be "traceID" (the default).
	RoutingKey string         `mapstructure:"routing_key"`
	Protocol   ProtocolConfig `mapstructure:"protocol"`
	Resolver   ResolverConfig `mapstructure:"resolver"`
}

// ProtocolConfig holds the settings of the exporter used towards every backend.
type ProtocolConfig struct {
	OTLP OTLPSettings `mapstructure:"otlp"`
}

// OTLPSettings are otlp_grpc exporter settings without their endpoint, which is set per
// backend: a type of its own so that otlpexporter.Config's check for an endpoint does not run.
type OTLPSettings otlpexporter.Config

// ResolverConfig says where the backends are.
type ResolverConfig struct {
	Static *StaticResolver `mapstructure:"static"`
}

// StaticResolver is a fixed list of backends, each "host:port" of an OTLP gRPC receiver.
type StaticResolver struct {
	Hostnames []string `mapstructure:"hostnames"`
}

// Validate checks the parts this implementation supports.
func (c *Config) Validate() error {
	if c.RoutingKey != "" && c.RoutingKey != "traceID" {
		return fmt.Errorf("routing_key %q is not supported; only \"traceID\" is", c.RoutingKey)
	}
	if c.Resolver.Static == nil || len(c.Resolver.Static.Hostnames) == 0 {
		return errors.New("resolver.static.hostnames must list at least one backend")
	}
	seen := map[string]bool{}
	for _, host := range c.Resolver.Static.Hostnames {
		if host == "" {
			return errors.New("resolver.static.hostnames has an empty entry")
		}
		if seen[host] {
			return fmt.Errorf("resolver.static.hostnames lists %q twice", host)
		}
		seen[host] = true
	}
	return nil
}
