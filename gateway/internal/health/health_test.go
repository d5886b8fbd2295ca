package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

// fakeHealth answers Check with a fixed status or error; block waits for
// the context instead.
type fakeHealth struct {
	healthpb.HealthClient
	st    healthpb.HealthCheckResponse_ServingStatus
	err   error
	block bool
}

func (f fakeHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest, _ ...grpc.CallOption) (*healthpb.HealthCheckResponse, error) {
	if f.block {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	return &healthpb.HealthCheckResponse{Status: f.st}, nil
}

var (
	serving    = fakeHealth{st: healthpb.HealthCheckResponse_SERVING}
	notServing = fakeHealth{st: healthpb.HealthCheckResponse_NOT_SERVING}
)

func TestCheck(t *testing.T) {
	down := errors.New("down")
	tests := []struct {
		name         string
		db           Pinger
		cache        Pinger
		redis        bool
		backends     map[string]healthpb.HealthClient
		wantStatus   string
		wantHTTP     int
		wantDB       string
		wantCache    string
		wantServices map[string]string
	}{
		{"all good, memory cache", pinger{}, nil, false, map[string]healthpb.HealthClient{"auth": serving, "mining": serving},
			StatusHealthy, 200, DatabaseConnected, CacheMemory, map[string]string{"auth": "SERVING", "mining": "SERVING"}},
		{"redis available", pinger{}, pinger{}, true, map[string]healthpb.HealthClient{"auth": serving},
			StatusHealthy, 200, DatabaseConnected, CacheAvailable, nil},
		{"redis down is degraded", pinger{}, pinger{down}, true, map[string]healthpb.HealthClient{"auth": serving},
			StatusDegraded, 200, DatabaseConnected, CacheUnavailable, nil},
		{"database down", pinger{down}, nil, false, map[string]healthpb.HealthClient{"auth": serving},
			StatusUnhealthy, 503, DatabaseDisconnected, CacheMemory, nil},
		{"no database configured", nil, nil, false, nil,
			StatusUnhealthy, 503, DatabaseDisconnected, CacheMemory, nil},
		{"backend not serving", pinger{}, nil, false, map[string]healthpb.HealthClient{"auth": serving, "sla": notServing},
			StatusUnhealthy, 503, DatabaseConnected, CacheMemory, map[string]string{"auth": "SERVING", "sla": "NOT_SERVING"}},
		{"backend unreachable", pinger{}, nil, false, map[string]healthpb.HealthClient{"billing": fakeHealth{err: status.Error(codes.Unavailable, "refused")}},
			StatusUnhealthy, 503, DatabaseConnected, CacheMemory, map[string]string{"billing": StatusUnreachable}},
		{"backend hangs", pinger{}, nil, false, map[string]healthpb.HealthClient{"analytics": fakeHealth{block: true}},
			StatusUnhealthy, 503, DatabaseConnected, CacheMemory, map[string]string{"analytics": StatusUnreachable}},
		{"service unknown", pinger{}, nil, false, map[string]healthpb.HealthClient{"auth": fakeHealth{err: status.Error(codes.NotFound, "unknown service")}},
			StatusUnhealthy, 503, DatabaseConnected, CacheMemory, map[string]string{"auth": "SERVICE_UNKNOWN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var bs []Backend
			for name, c := range tt.backends {
				bs = append(bs, Backend{Name: name, Client: c})
			}
			now := time.Date(2025, 10, 3, 12, 0, 0, 0, time.UTC)
			c := New(Options{
				Version: "2.0.0", Database: tt.db, Cache: tt.cache, RedisConfigured: tt.redis,
				Backends: bs, Timeout: 50 * time.Millisecond, Now: func() time.Time { return now },
			})
			w := httptest.NewRecorder()
			c.DetailedHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/health/detailed", nil))
			if w.Code != tt.wantHTTP {
				t.Errorf("HTTP %d, want %d", w.Code, tt.wantHTTP)
			}
			var rep Report
			if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Status != tt.wantStatus || rep.Database != tt.wantDB || rep.Cache != tt.wantCache ||
				rep.Version != "2.0.0" || rep.Timestamp != "2025-10-03T12:00:00Z" {
				t.Errorf("report = %+v", rep)
			}
			if len(rep.Services) != len(tt.backends) {
				t.Errorf("services = %v", rep.Services)
			}
			for name, want := range tt.wantServices {
				if got := rep.Services[name].Status; got != want {
					t.Errorf("%s = %s, want %s", name, got, want)
				}
			}
		})
	}
}

func TestLive(t *testing.T) {
	// Liveness never runs a check: a dead database does not matter.
	c := New(Options{Version: "v9", Database: pinger{errors.New("down")}})
	w := httptest.NewRecorder()
	c.LiveHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/health", nil))
	var live Live
	if err := json.Unmarshal(w.Body.Bytes(), &live); err != nil {
		t.Fatal(err)
	}
	if w.Code != 200 || live.Status != StatusHealthy || live.Version != "v9" || live.Timestamp == "" {
		t.Errorf("%d %+v", w.Code, live)
	}
}
