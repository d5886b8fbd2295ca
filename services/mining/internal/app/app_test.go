package app_test

import (
	"testing"

	"github.com/hashinsight/platform/pkg/service/servicetest"
	"github.com/hashinsight/platform/services/mining/internal/app"
)

func TestMain(m *testing.M) { servicetest.Main(m) }

// TestConformance starts the real binary's wiring over loopback mTLS against a real Postgres and
// checks the platform guarantees: refused callers, health, reflection, config errors, idempotent
// migrations and that no RPC answers an empty request with invented data.
func TestConformance(t *testing.T) {
	cfg, err := app.LoadConfig(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Conformance(t, app.Spec(), app.Register(cfg))
}
