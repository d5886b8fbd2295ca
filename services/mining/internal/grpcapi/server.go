// Package grpcapi composes the MiningService implementation from the service's parts. Each part
// implements its own RPCs; an RPC no part implements answers UNIMPLEMENTED.
package grpcapi

import (
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/importer"
	"github.com/hashinsight/platform/services/mining/internal/inventory"
	"github.com/hashinsight/platform/services/mining/internal/profitability"
	"github.com/hashinsight/platform/services/mining/internal/telemetry"
	"github.com/hashinsight/platform/services/mining/internal/uptime"
)

// The parts, under names that are distinct embedded fields.
type (
	inventoryAPI     = inventory.API
	importAPI        = importer.API
	profitabilityAPI = profitability.API
	telemetryAPI     = telemetry.API
	uptimeAPI        = uptime.API
)

// Server is the MiningService. The parts' methods are promoted from depth 1; the generated
// UNIMPLEMENTED defaults sit at depth 2, so a part's method always wins over them.
type Server struct {
	unimplemented
	*inventoryAPI
	*importAPI
	*profitabilityAPI
	*telemetryAPI
	*uptimeAPI
}

type unimplemented struct {
	miningv1.UnimplementedMiningServiceServer
}

// Parts are the parts of a Server.
type Parts struct {
	Inventory     *inventory.API
	Import        *importer.API
	Profitability *profitability.API
	Telemetry     *telemetry.API
	Uptime        *uptime.API
}

// New composes the Server from p; every part is required.
func New(p Parts) *Server {
	return &Server{
		inventoryAPI:     p.Inventory,
		importAPI:        p.Import,
		profitabilityAPI: p.Profitability,
		telemetryAPI:     p.Telemetry,
		uptimeAPI:        p.Uptime,
	}
}

var _ miningv1.MiningServiceServer = (*Server)(nil)
