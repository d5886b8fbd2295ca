package service_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/hashinsight/platform/pkg/service"
	"github.com/hashinsight/platform/pkg/service/servicetest"
)

// TestOnStop: callbacks registered with OnStop run once, in reverse order, after the server has
// stopped and while the database pool is still open, also when Register fails after
// registering them.
func TestOnStop(t *testing.T) {
	for _, tc := range []struct {
		name        string
		registerErr error
		wantCode    int
	}{
		{"clean stop", nil, 0},
		{"register fails", errors.New("register failed"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _ := servicetest.Environment(t, spec())
			var (
				mu    sync.Mutex
				calls []string
			)
			record := func(rt *service.Runtime, name string) func() {
				return func() {
					err := rt.DB.Ping(context.Background())
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						name += " (database closed: " + err.Error() + ")"
					}
					calls = append(calls, name)
				}
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			code := service.Run(ctx, spec(), func(_ context.Context, rt *service.Runtime) error {
				rt.OnStop(record(rt, "first"))
				rt.OnStop(record(rt, "second"))
				return tc.registerErr
			}, service.Options{Environ: env, Logs: &writeLog{}, Ready: func(*service.Runtime) { cancel() }})
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d", code, tc.wantCode)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := []string{"second", "first"}; !slices.Equal(calls, want) {
				t.Fatalf("OnStop calls %q, want %q", calls, want)
			}
		})
	}
}
