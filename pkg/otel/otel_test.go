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
	if !sc.IsValid() || sc.IsSampled() || span.IsRecording() {
		t.Fatalf("span context = %+v (recording %v), want valid (for log correlation), neither sampled nor recording",
			sc, span.IsRecording())
	}
	_, other := gotel.Tracer("test").Start(context.Background(), "other")
	if other.SpanContext().TraceID() == sc.TraceID() {
		t.Error("two root spans share a trace id")
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
	want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-00"
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
	// A span below the propagated context (the next process's server span) keeps the trace id,
	// so its log lines correlate with the caller's, and does not record either.
	_, child := gotel.Tracer("test").Start(trace.ContextWithRemoteSpanContext(context.Background(), remote), "server")
	if csc := child.SpanContext(); csc.TraceID() != sc.TraceID() || csc.SpanID() == sc.SpanID() || !csc.IsValid() || child.IsRecording() {
		t.Errorf("child span context = %+v (recording %v), want the same trace, a new span id, not recording", csc, child.IsRecording())
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
