package breaker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/breaker"
)

var errBoom = errors.New("boom")

func newRegistry(t *testing.T) (*breaker.Registry, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	r, err := breaker.NewRegistry("mining", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, reg
}

func fail(context.Context) error    { return errBoom }
func succeed(context.Context) error { return nil }

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before deadline")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTransitions(t *testing.T) {
	r, reg := newRegistry(t)
	ctx := context.Background()
	b := r.Get("external_api", breaker.Settings{FailureThreshold: 3, RecoveryTimeout: 50 * time.Millisecond})
	if b2 := r.Get("external_api", breaker.Settings{FailureThreshold: 99}); b2 != b {
		t.Fatal("Get returned a different breaker for the same name")
	}

	steps := []struct {
		name      string
		fn        func(context.Context) error
		wantErr   error
		wantState breaker.State
	}{
		{"success keeps closed", succeed, nil, breaker.Closed},
		{"failure 1", fail, errBoom, breaker.Closed},
		{"failure 2", fail, errBoom, breaker.Closed},
		{"failure 3 opens", fail, errBoom, breaker.Open},
		{"open rejects without calling", func(context.Context) error { panic("must not run") }, breaker.ErrOpen, breaker.Open},
	}
	for _, s := range steps {
		if err := b.Execute(ctx, s.fn); !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.wantErr)
		}
		if got := b.State(); got != s.wantState {
			t.Fatalf("%s: state = %s, want %s", s.name, got, s.wantState)
		}
	}
	if v := testutil.ToFloat64(r); v != 2 {
		t.Errorf("gauge = %v, want 2 (open)", v)
	}

	// After the recovery timeout the breaker lets a trial call through.
	eventually(t, 2*time.Second, func() bool { return b.State() == breaker.HalfOpen })
	if v := testutil.ToFloat64(r); v != 1 {
		t.Errorf("gauge = %v, want 1 (half-open)", v)
	}
	// A failed trial re-opens it.
	if err := b.Execute(ctx, fail); !errors.Is(err, errBoom) || b.State() != breaker.Open {
		t.Fatalf("failed trial: err = %v state = %s", err, b.State())
	}
	eventually(t, 2*time.Second, func() bool { return b.State() == breaker.HalfOpen })
	// A successful trial closes it.
	if err := b.Execute(ctx, succeed); err != nil || b.State() != breaker.Closed {
		t.Fatalf("good trial: err = %v state = %s", err, b.State())
	}
	want := `
# HELP hashinsight_circuit_breaker_state Circuit breaker state (0 closed, 1 half-open, 2 open).
# TYPE hashinsight_circuit_breaker_state gauge
hashinsight_circuit_breaker_state{name="external_api",service="mining"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	st := r.Stats()["external_api"]
	// 7 calls: 1 ok, 3 failed, 1 rejected, 1 failed trial, 1 ok trial.
	if st.TotalCalls != 7 || st.RejectedCalls != 1 || st.FailureCount != 0 || st.SuccessRate != "28.6%" || st.State != breaker.Closed {
		t.Errorf("stats = %+v", st)
	}
}

func TestStatsJSON(t *testing.T) {
	r, _ := newRegistry(t)
	ctx := context.Background()
	db := r.Get("database_queries", breaker.Settings{})
	for range 998 {
		_ = db.Execute(ctx, succeed)
	}
	_ = db.Execute(ctx, fail)
	_ = db.Execute(ctx, fail)
	b, err := json.Marshal(r.Stats())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"database_queries":{"state":"closed","failure_count":2,"total_calls":1000,"success_rate":"99.8%","rejected_calls":0}}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
}

func TestClassification(t *testing.T) {
	r, _ := newRegistry(t)
	notFound := status.Error(codes.NotFound, "no such miner")
	b := r.Get("db", breaker.Settings{
		FailureThreshold: 1,
		IsFailure:        func(err error) bool { return err != nil && status.Code(err) != codes.NotFound },
	})
	ctx := context.Background()
	tests := []struct {
		name string
		err  error
	}{
		{"not found counts as success", notFound},
		{"context canceled is excluded", context.Canceled},
		{"grpc canceled is excluded", status.Error(codes.Canceled, "gone")},
	}
	for _, tt := range tests {
		if err := b.Execute(ctx, func(context.Context) error { return tt.err }); !errors.Is(err, tt.err) {
			t.Fatalf("%s: err = %v", tt.name, err)
		}
		if b.State() != breaker.Closed {
			t.Fatalf("%s: breaker opened", tt.name)
		}
	}
	if st := b.Stats(); st.TotalCalls != 1 || st.SuccessRate != "100.0%" {
		t.Errorf("stats = %+v", st)
	}
	// A done context is returned as is and not counted.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Execute(cctx, fail); !errors.Is(err, context.Canceled) || b.Stats().TotalCalls != 1 {
		t.Fatalf("done ctx: err = %v stats = %+v", err, b.Stats())
	}
}

func TestDo(t *testing.T) {
	r, _ := newRegistry(t)
	got, err := breaker.Do(context.Background(), r.Get("x", breaker.Settings{}), func(context.Context) (int, error) { return 42, nil })
	if err != nil || got != 42 {
		t.Fatalf("Do = %v, %v", got, err)
	}
}

func TestHalfOpenLimit(t *testing.T) {
	r, _ := newRegistry(t)
	b := r.Get("x", breaker.Settings{FailureThreshold: 1, RecoveryTimeout: 20 * time.Millisecond})
	ctx := context.Background()
	_ = b.Execute(ctx, fail)
	eventually(t, 2*time.Second, func() bool { return b.State() == breaker.HalfOpen })
	release := make(chan struct{})
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- b.Execute(ctx, func(context.Context) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	if err := b.Execute(ctx, succeed); !errors.Is(err, breaker.ErrTooManyRequests) {
		t.Errorf("second trial: err = %v, want ErrTooManyRequests", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b.State() != breaker.Closed {
		t.Fatalf("state = %s", b.State())
	}
}
