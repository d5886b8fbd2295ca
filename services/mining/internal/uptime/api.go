// Package uptime derives 5-minute uptime windows from telemetry and attributes downtime causes.
package uptime

import (
	"context"

	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// API serves GetMinerUptime, GetUptime, SetDowntimeCause and ListDowntimeCauses.
type API struct {
	d *platform.Deps
}

// New returns the uptime API on d.
func New(_ context.Context, d *platform.Deps) (*API, error) {
	return &API{d: d}, nil
}
