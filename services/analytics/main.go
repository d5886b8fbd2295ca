// Command analytics runs the HashInsight analytics service: market data collection, dashboards and fleet/financial reports.
package main

import (
	"os"

	"github.com/hashinsight/platform/pkg/service"
	"github.com/hashinsight/platform/services/analytics/internal/app"
)

func main() {
	os.Exit(service.Main(app.Spec(), app.Register))
}
