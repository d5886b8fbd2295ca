// Package importer imports miners in bulk from CSV: every bad row reported, all-or-nothing,
// COPY into a staging table and one set-based insert or upsert.
package importer

import (
	"context"

	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// API serves ImportMiners and ImportMinersCsv.
type API struct {
	d *platform.Deps
}

// New returns the import API on d.
func New(_ context.Context, d *platform.Deps) (*API, error) {
	return &API{d: d}, nil
}
