// Command auth runs the HashInsight auth service: users, roles, access tokens, API keys, collector tokens and the tamper-evident audit log.
package main

import (
	"os"

	"github.com/hashinsight/platform/pkg/service"
	"github.com/hashinsight/platform/services/auth/internal/app"
)

func main() {
	os.Exit(service.Main(app.Spec(), app.Register))
}
