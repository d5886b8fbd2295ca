package app_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashinsight/platform/pkg/service/servicetest"
	"github.com/hashinsight/platform/services/auth/internal/app"
	"github.com/hashinsight/platform/services/auth/internal/password"
)

// TestMain serves as a password hash worker when the auth service under test starts this test
// binary as one (PASSWORD_HASHING=workers, the default), as the auth binary's main does.
func TestMain(m *testing.M) {
	if password.IsWorkerProcess() {
		os.Exit(password.RunWorkerProcess())
	}
	servicetest.Main(m)
}

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
