// Package otel sets up OpenTelemetry tracing for a HashInsight process: an SDK tracer provider with
// the service's resource, an OTLP/gRPC exporter when OTEL_EXPORTER_OTLP_ENDPOINT is set, and W3C
// Trace Context + Baggage propagation so a trace follows a request gateway → services → Postgres/Redis.
//
// Setup installs the provider and propagator as OpenTelemetry's process-wide globals. That is the
// one deliberate exception to the no-globals rule: the instrumentation libraries we use (otelgrpc,
// otelpgx, redisotel) read otel.GetTracerProvider and otel.GetTextMapPropagator by design, so main
// calls Setup once, early, and nothing else sets them.
package otel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"google.golang.org/grpc/credentials"
)

// Setup builds the tracer provider for service at version and installs it, with the W3C
// tracecontext+baggage propagator, as the OpenTelemetry globals.
//
// endpoint is OTEL_EXPORTER_OTLP_ENDPOINT: empty means no exporter. Spans are then never sampled:
// the SDK still gives every span a valid span context (a fresh trace id at the root, the caller's
// trace id below a propagated traceparent), so logs get trace ids and traceparent is propagated,
// but nothing is recorded — no attributes, events or timings are collected only to be dropped,
// which is most of the tracing cost per request. (The propagated flags say "not sampled", so
// every process of a mesh should share one OTEL_EXPORTER_OTLP_ENDPOINT setting.) "http://host:4317"
// exports over plaintext gRPC; "https://host:4317" or a bare "host:4317" exports over TLS with the
// system roots. The exporter connects lazily: an unreachable collector does not fail Setup.
//
// The returned shutdown flushes pending spans and stops the provider; call it once on exit with a
// bounded context.
func Setup(ctx context.Context, service, version, endpoint string) (shutdown func(context.Context) error, err error) {
	if strings.TrimSpace(service) == "" {
		return nil, errors.New("otel: service name is required")
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil {
		return nil, fmt.Errorf("otel: build resource: %w", err)
	}

	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if endpoint = strings.TrimSpace(endpoint); endpoint != "" {
		exp, err := newExporter(ctx, endpoint)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	} else {
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	tp := sdktrace.NewTracerProvider(opts...)

	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator())

	return func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("otel: shutdown tracer provider: %w", err)
		}
		return nil
	}, nil
}

// Propagator is the mesh's propagator: W3C Trace Context and W3C Baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

func newExporter(ctx context.Context, endpoint string) (sdktrace.SpanExporter, error) {
	hostport, insecure, err := parseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(hostport)}
	if insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	} else {
		// Explicit, so OTEL_EXPORTER_OTLP_INSECURE cannot silently downgrade an https endpoint.
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewClientTLSFromCert(nil, "")))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otel: create OTLP exporter: %w", err)
	}
	return exp, nil
}

// parseEndpoint returns the host:port to dial and whether to dial it without TLS (only for an
// explicit http:// scheme).
func parseEndpoint(endpoint string) (hostport string, insecure bool, err error) {
	if !strings.Contains(endpoint, "://") {
		if _, _, err := net.SplitHostPort(endpoint); err != nil {
			return "", false, fmt.Errorf("otel: endpoint %q: want host:port or an http(s) URL: %w", endpoint, err)
		}
		return endpoint, false, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false, fmt.Errorf("otel: endpoint: %w", err)
	}
	if u.Host == "" {
		return "", false, fmt.Errorf("otel: endpoint %q has no host", endpoint)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "4317")
	}
	switch u.Scheme {
	case "http":
		return host, true, nil
	case "https":
		return host, false, nil
	}
	return "", false, fmt.Errorf("otel: endpoint scheme %q: want http or https", u.Scheme)
}
