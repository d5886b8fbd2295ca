// Package profitability computes the daily economics of miners (DESIGN.md §5) and the fleet
// summary, with market inputs from analytics or the bundled offline snapshot.
//
// The arithmetic (and its rounding rules) is in the calc sub-package; the market figures come
// from the market sub-package; this package reads miners from Postgres under the caller's tenant
// scope and speaks the API.
package profitability

import (
	"context"
	"fmt"
	"time"

	"github.com/hashinsight/platform/pkg/breaker"
	"github.com/hashinsight/platform/pkg/grpcclient"
	"github.com/hashinsight/platform/pkg/mtls"
	analyticsv1 "github.com/hashinsight/platform/proto/hashinsight/analytics/v1"
	"github.com/hashinsight/platform/services/mining/internal/platform"
	"github.com/hashinsight/platform/services/mining/internal/profitability/calc"
	"github.com/hashinsight/platform/services/mining/internal/profitability/market"
)

// Analytics client settings: a short deadline (a calculation must not wait on analytics; the
// offline snapshot answers instead), a breaker that stops asking for a while after three
// failures in a row, and a snapshot reused for 30 s.
const (
	analyticsTimeout   = time.Second
	analyticsTTL       = 30 * time.Second
	breakerName        = "analytics_market_data"
	breakerFailures    = 3
	breakerOpenTimeout = 30 * time.Second
)

// API serves CalculateProfitability, BatchProfitability and GetFleetSummary.
type API struct {
	d           *platform.Deps
	market      *market.Provider
	defaultElec calc.Decimal
}

// New returns the profitability API on d. The analytics connection is made lazily (nothing is
// dialled before the first calculation) and closed when ctx ends.
func New(ctx context.Context, d *platform.Deps) (*API, error) {
	elec, err := calc.ParseDecimal(d.Config.DefaultElectricityUSDPerKWh)
	if err != nil {
		return nil, fmt.Errorf("DEFAULT_ELECTRICITY_USD_PER_KWH %q: %w", d.Config.DefaultElectricityUSDPerKWh, err)
	}
	opts := market.Options{Timeout: analyticsTimeout, TTL: analyticsTTL, Logger: d.Logger}
	if d.Runtime != nil && d.Runtime.TLS != nil && d.Config.AnalyticsGRPCAddr != "" {
		conn, err := grpcclient.Dial(ctx, d.Config.AnalyticsGRPCAddr, d.Runtime.TLS, mtls.Service("analytics"),
			grpcclient.WithDefaultTimeout(analyticsTimeout))
		if err != nil {
			return nil, fmt.Errorf("analytics client: %w", err)
		}
		context.AfterFunc(ctx, func() { _ = conn.Close() })
		client := analyticsv1.NewAnalyticsServiceClient(conn)
		opts.Fetch = func(ctx context.Context) (*analyticsv1.MarketSnapshot, error) {
			resp, err := client.GetLatestMarketData(ctx, &analyticsv1.GetLatestMarketDataRequest{})
			return resp.GetSnapshot(), err
		}
		reg, err := breaker.NewRegistry("mining", d.Runtime.Registry, d.Logger)
		if err != nil { // the collector is registered already (another registry): skip the gauge
			reg, _ = breaker.NewRegistry("mining", nil, d.Logger)
		}
		opts.Breaker = reg.Get(breakerName, breaker.Settings{FailureThreshold: breakerFailures, RecoveryTimeout: breakerOpenTimeout})
	}
	p, err := market.NewProvider(opts)
	if err != nil {
		return nil, err
	}
	return &API{d: d, market: p, defaultElec: elec}, nil
}
