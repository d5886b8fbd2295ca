// Command sla runs the HashInsight sla service: monthly SLA reports, certificates on Base L2, verification, reconciliation and Merkle anchors.
package main

import (
	"os"

	"github.com/hashinsight/platform/pkg/service"
	"github.com/hashinsight/platform/services/sla/internal/app"
)

func main() {
	os.Exit(service.Main(app.Spec(), app.Register))
}
