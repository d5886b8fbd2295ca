package profitability

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/platform"
	"github.com/hashinsight/platform/services/mining/internal/profitability/calc"
	"github.com/hashinsight/platform/services/mining/internal/profitability/market"
)

// inputs are the resolved market figures and parameters of one request.
type inputs struct {
	calc      *calc.Calculator
	snapshot  market.Snapshot
	hashprice string
}

// resolve fills the defaults of p, applies o over the latest market snapshot and builds the
// calculator.
func (a *API) resolve(ctx context.Context, p *miningv1.ProfitabilityParams, o *miningv1.MarketOverride) (*inputs, error) {
	params, err := a.params(p)
	if err != nil {
		return nil, err
	}
	snap := a.marketWith(ctx, o)
	c, err := calc.New(snap.Market, params)
	if err != nil {
		return nil, domainErr(err)
	}
	return &inputs{calc: c, snapshot: snap, hashprice: calc.FormatHashprice(c.Hashprice())}, nil
}

// params parses p; empty fields take the defaults (electricity from the configuration, pool fee
// 0 %, uptime 100 %).
func (a *API) params(p *miningv1.ProfitabilityParams) (calc.Params, error) {
	out := calc.Params{
		ElectricityUSDPerKWh: a.defaultElec,
		UptimePercent:        calc.DecimalFromUnits(100 * calc.Scale),
	}
	for _, f := range []struct {
		field string
		value string
		into  *calc.Decimal
	}{
		{"params.electricity_usd_per_kwh", p.GetElectricityUsdPerKwh(), &out.ElectricityUSDPerKWh},
		{"params.pool_fee_percent", p.GetPoolFeePercent(), &out.PoolFeePercent},
		{"params.uptime_percent", p.GetUptimePercent(), &out.UptimePercent},
	} {
		if f.value == "" {
			continue
		}
		d, err := calc.ParseDecimal(f.value)
		if err != nil {
			return calc.Params{}, platform.InvalidField(f.field, err.Error())
		}
		*f.into = d
	}
	const hundred = 100 * calc.Scale
	if out.PoolFeePercent.Units() > hundred {
		return calc.Params{}, platform.InvalidField("params.pool_fee_percent", "must be at most 100")
	}
	if out.UptimePercent.Units() > hundred {
		return calc.Params{}, platform.InvalidField("params.uptime_percent", "must be at most 100")
	}
	return out, nil
}

// marketWith returns the latest snapshot with o's figures in place. Source says "request" when
// o replaces every figure (as_of is then now), "request (over <source>)" when it replaces some.
func (a *API) marketWith(ctx context.Context, o *miningv1.MarketOverride) market.Snapshot {
	full := o != nil && o.BtcPriceUsdCents != nil && o.Difficulty != nil && o.BlockSubsidySats != nil && o.AvgFeesPerBlockSats != nil
	var s market.Snapshot
	if !full {
		s = a.market.Latest(ctx)
	}
	if o == nil || (o.BtcPriceUsdCents == nil && o.Difficulty == nil && o.BlockSubsidySats == nil && o.AvgFeesPerBlockSats == nil) {
		return s
	}
	if o.BtcPriceUsdCents != nil {
		s.Market.BTCPriceCents = o.GetBtcPriceUsdCents()
	}
	if o.Difficulty != nil {
		s.Market.Difficulty = o.GetDifficulty()
		s.NetworkHashrateEHs = market.NetworkHashrateEHs(s.Market.Difficulty)
	}
	if o.BlockSubsidySats != nil {
		s.Market.BlockSubsidySats = o.GetBlockSubsidySats()
	}
	if o.AvgFeesPerBlockSats != nil {
		s.Market.AvgFeesPerBlockSats = o.GetAvgFeesPerBlockSats()
	}
	if full {
		s.Source, s.AsOf = market.SourceRequest, time.Now()
	} else {
		s.Source = market.SourceRequest + " (over " + s.Source + ")"
	}
	return s
}

// domainErr turns a calc refusal into the field error the API reports.
func domainErr(err error) error {
	var fe *calc.FieldError
	if errors.As(err, &fe) {
		return platform.InvalidField(fe.Field, fe.Reason)
	}
	return err
}

// toMarketInputs converts the snapshot used.
func toMarketInputs(s market.Snapshot) *miningv1.MarketInputs {
	out := &miningv1.MarketInputs{
		BtcPriceUsdCents:    s.Market.BTCPriceCents,
		Difficulty:          s.Market.Difficulty,
		BlockSubsidySats:    s.Market.BlockSubsidySats,
		AvgFeesPerBlockSats: s.Market.AvgFeesPerBlockSats,
		NetworkHashrateEhs:  s.NetworkHashrateEHs,
		Source:              s.Source,
	}
	if !s.AsOf.IsZero() {
		out.AsOf = timestamppb.New(s.AsOf)
	}
	return out
}

// toParams converts the parameters used, defaults filled in.
func toParams(p calc.Params) *miningv1.ProfitabilityParams {
	return &miningv1.ProfitabilityParams{
		ElectricityUsdPerKwh: p.ElectricityUSDPerKWh.String(),
		PoolFeePercent:       p.PoolFeePercent.String(),
		UptimePercent:        p.UptimePercent.String(),
	}
}

// toResult converts one miner's result. The break-even figures are left empty where they are
// undefined: electricity when the miner uses no energy (0 W or 0 % uptime), BTC price when it
// earns no bitcoin (100 % pool fee or 0 % uptime).
func (in *inputs) toResult(minerID string, h, w float64, r calc.Result) *miningv1.ProfitabilityResult {
	out := &miningv1.ProfitabilityResult{
		MinerId:                 minerID,
		HashrateTh:              h,
		PowerW:                  w,
		GrossBtcPerDaySats:      r.GrossSats,
		GrossBtcPerDay:          calc.FormatBTC(r.GrossBTC),
		NetBtcPerDaySats:        r.NetSats,
		NetBtcPerDay:            calc.FormatBTC(r.NetBTC),
		RevenueUsdCentsPerDay:   r.RevenueCents,
		PowerCostUsdCentsPerDay: r.PowerCostCents,
		ProfitUsdCentsPerDay:    r.ProfitCents,
		HashpriceUsdPerThDay:    in.hashprice,
	}
	if v, ok := in.calc.BreakEvenElectricity(w, r); ok {
		out.BreakEvenElectricityUsdPerKwh = calc.FormatElectricity(v)
	}
	if v, ok := in.calc.BreakEvenBTCPrice(w, r); ok {
		out.BreakEvenBtcPriceUsd = calc.FormatUSD(v)
	}
	return out
}

// toTotals converts batch totals.
func toTotals(t calc.Totals) *miningv1.ProfitabilityTotals {
	return &miningv1.ProfitabilityTotals{
		MinerCount:              t.Miners,
		ProfitableCount:         t.Profitable,
		TotalHashrateTh:         t.HashrateTH,
		TotalPowerW:             t.PowerW,
		GrossBtcPerDaySats:      t.GrossSats,
		NetBtcPerDaySats:        t.NetSats,
		RevenueUsdCentsPerDay:   t.RevenueCents,
		PowerCostUsdCentsPerDay: t.PowerCostCents,
		ProfitUsdCentsPerDay:    t.ProfitCents,
	}
}
