// Command auth runs the HashInsight auth service: users, roles, access tokens, API keys, collector tokens and the tamper-evident audit log.
package main

import (
	"os"

	"github.com/hashinsight/platform/pkg/config"
	"github.com/hashinsight/platform/pkg/service"
	"github.com/hashinsight/platform/services/auth/internal/app"
	"github.com/hashinsight/platform/services/auth/internal/password"
)

func main() {
	// Started by this binary itself as a password hash worker (PASSWORD_HASHING=workers):
	// nothing else of the service runs in that process.
	if password.IsWorkerProcess() {
		os.Exit(password.RunWorkerProcess())
	}
	// The auth service's own variables (ACCESS_TOKEN_TTL, ...) are read once, here; an invalid
	// one exits with config.ExitCode (2) before anything starts.
	cfg, err := app.LoadConfig(nil)
	if err != nil {
		os.Exit(config.Exit(err, os.Stderr))
	}
	os.Exit(service.Main(app.Spec(), app.Register(cfg)))
}
