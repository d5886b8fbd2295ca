package otel_test

import (
	"context"
	"net"
	"testing"
	"time"

	gotel "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	hotel "github.com/hashinsight/platform/pkg/otel"
)

func TestSetupWithoutExporter(t *testing.T) {
	ctx := context.Background()
	shutdown, err := hotel.Setup(ctx, "mining", "v0.0.0-test", "")
	if err != nil {
		t.Fatalf("Setup() = %v", err)
	}

	ctx, span := gotel.Tracer("test").Start(ctx, "op")
	sc := span.SpanContext()
	if !sc.IsValid() || !sc.IsSampled() {
		t.Fatalf("span context = %+v, want valid and sampled (for log correlation)", sc)
	}

	member, err := baggage.NewMember("tenant", "c42")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	ctx = baggage.ContextWithBaggage(ctx, bag)

	carrier := propagation.MapCarrier{}
	gotel.GetTextMapPropagator().Inject(ctx, carrier)
	want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
	if got := carrier.Get("traceparent"); got != want {
		t.Errorf("traceparent = %q, want %q", got, want)
	}
	if got := carrier.Get("baggage"); got != "tenant=c42" {
		t.Errorf("baggage = %q, want tenant=c42", got)
	}

	// The receiving side continues the same trace.
	remote := trace.SpanContextFromContext(gotel.GetTextMapPropagator().Extract(context.Background(), carrier))
	if remote.TraceID() != sc.TraceID() || !remote.IsRemote() {
		t.Errorf("extracted span context = %+v", remote)
	}
	span.End()

	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		t.Errorf("shutdown() = %v", err)
	}
}

func TestSetupWithExporter(t *testing.T) {
	// A port with nothing listening: the exporter connects lazily, so Setup must still succeed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	for _, ep := range []string{"http://" + addr, "https://" + addr, addr} {
		shutdown, err := hotel.Setup(context.Background(), "gateway", "v1", ep)
		if err != nil {
			t.Fatalf("Setup(%q) = %v", ep, err)
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := shutdown(sctx); err != nil {
			t.Errorf("shutdown(%q) = %v", ep, err)
		}
		cancel()
	}
}

func TestSetupRejects(t *testing.T) {
	tests := []struct{ service, endpoint string }{
		{"", ""},
		{"auth", "ftp://collector:4317"},
		{"auth", "collector"},
		{"auth", "http://"},
	}
	for _, tt := range tests {
		if _, err := hotel.Setup(context.Background(), tt.service, "v1", tt.endpoint); err == nil {
			t.Errorf("Setup(%q, %q) = nil error, want error", tt.service, tt.endpoint)
		}
	}
}
