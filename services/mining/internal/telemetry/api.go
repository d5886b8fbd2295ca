// Package telemetry ingests miner telemetry: uploads of the HashInsight Remote edge collector and
// streams of internal collectors, stored idempotently in a time-partitioned table.
package telemetry

import (
	"context"

	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// API serves UploadCollectorBatch and RecordTelemetry.
type API struct {
	d *platform.Deps
}

// New returns the telemetry API on d.
func New(_ context.Context, d *platform.Deps) (*API, error) {
	return &API{d: d}, nil
}
