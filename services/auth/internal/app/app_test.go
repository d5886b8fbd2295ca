package app_test

import (
	"path/filepath"
	"testing"

	"github.com/hashinsight/platform/pkg/service/servicetest"
	"github.com/hashinsight/platform/services/auth/internal/app"
)

func TestMain(m *testing.M) { servicetest.Main(m) }

// TestConformance starts the real binary's wiring over loopback mTLS against a real Postgres and
// checks the platform guarantees: refused callers, health, reflection, config errors, idempotent
// migrations and that no RPC answers an empty request with invented data. GetSigningKeys is the
// one method for which an empty request is complete: it lists the public keys.
func TestConformance(t *testing.T) {
	cfg, err := app.LoadConfig(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Conformance(t, app.Spec(), app.Register(cfg),
		servicetest.AllowEmptySuccess("/hashinsight.auth.v1.AuthService/GetSigningKeys"),
		servicetest.WithEnv(map[string]string{"AUDIT_LOG_PATH": filepath.Join(t.TempDir(), "audit.jsonl")}),
	)
}
