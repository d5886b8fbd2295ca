// Command mining runs the HashInsight mining service: fleet inventory, bulk import, telemetry ingest, uptime and profitability.
package main

import (
	"os"

	"github.com/hashinsight/platform/pkg/config"
	"github.com/hashinsight/platform/pkg/service"
	"github.com/hashinsight/platform/services/mining/internal/app"
)

func main() {
	// The mining service's own variables (ANALYTICS_GRPC_ADDR, ...) are read once, here; an
	// invalid one exits with config.ExitCode (2) before anything starts.
	cfg, err := app.LoadConfig(nil)
	if err != nil {
		os.Exit(config.Exit(err, os.Stderr))
	}
	os.Exit(service.Main(app.Spec(), app.Register(cfg)))
}
