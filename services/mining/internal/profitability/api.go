// Package profitability computes the daily economics of miners (DESIGN.md §5) and the fleet
// summary, with market inputs from analytics or the bundled offline snapshot.
package profitability

import (
	"context"

	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// API serves CalculateProfitability, BatchProfitability and GetFleetSummary.
type API struct {
	d *platform.Deps
}

// New returns the profitability API on d.
func New(_ context.Context, d *platform.Deps) (*API, error) {
	return &API{d: d}, nil
}
