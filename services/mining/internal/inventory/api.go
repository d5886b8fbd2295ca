// Package inventory is the fleet inventory of the mining service: miners (create, get, list,
// update, delete, with tenancy) and the model catalogue, read through the miner cache.
package inventory

import (
	"context"

	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// API serves the inventory RPCs of MiningService.
type API struct {
	d *platform.Deps
}

// New returns the inventory API on d.
func New(_ context.Context, d *platform.Deps) (*API, error) {
	return &API{d: d}, nil
}
