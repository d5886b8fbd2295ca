// Command billing runs the HashInsight billing service: customers (CRM), plans, subscriptions, invoices and payments.
package main

import (
	"os"

	"github.com/hashinsight/platform/pkg/service"
	"github.com/hashinsight/platform/services/billing/internal/app"
)

func main() {
	os.Exit(service.Main(app.Spec(), app.Register))
}
