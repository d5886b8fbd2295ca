// Package inventory is the fleet inventory of the mining service: miners (create, get, list,
// update, delete, with tenancy) and the model catalogue, read through the miner and model caches.
package inventory

import (
	"context"

	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// API serves the inventory RPCs of MiningService. Its exported methods are exactly those RPCs.
type API struct {
	d      *platform.Deps
	miners *minerStore
	models *modelStore
}

// New returns the inventory API on d.
func New(_ context.Context, d *platform.Deps) (*API, error) {
	return &API{d: d, miners: &minerStore{db: d.DB}, models: &modelStore{db: d.DB}}, nil
}
