// Command mining runs the HashInsight mining service: fleet inventory, bulk import, telemetry ingest, uptime and profitability.
package main

import (
	"os"

	"github.com/hashinsight/platform/pkg/service"
	"github.com/hashinsight/platform/services/mining/internal/app"
)

func main() {
	os.Exit(service.Main(app.Spec(), app.Register))
}
