package profitability

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/platform"
	"github.com/hashinsight/platform/services/mining/internal/profitability/calc"
)

// maxResults bounds the per-miner results of one batch (as for ids and inline figures); a filter
// matching more miners must ask for totals_only.
const maxResults = 100_000

// CalculateProfitability computes the daily economics of one miner (tenancy: another tenant's
// miner is NotFound), of a catalogue model's nameplate figures, or of inline figures.
func (a *API) CalculateProfitability(ctx context.Context, req *miningv1.CalculateProfitabilityRequest) (*miningv1.CalculateProfitabilityResponse, error) {
	resp, err := a.calculate(ctx, req)
	return resp, platform.ToStatus(ctx, a.d.Logger, err)
}

func (a *API) calculate(ctx context.Context, req *miningv1.CalculateProfitabilityRequest) (*miningv1.CalculateProfitabilityResponse, error) {
	var (
		f   figures
		err error
	)
	switch s := req.GetSubject().(type) {
	case *miningv1.CalculateProfitabilityRequest_MinerId:
		f, err = a.minerFigures(ctx, platform.ScopeFrom(ctx), s.MinerId)
	case *miningv1.CalculateProfitabilityRequest_Model:
		f, err = a.modelFigures(ctx, s.Model)
	case *miningv1.CalculateProfitabilityRequest_Figures:
		f = figures{hashrate: s.Figures.GetHashrateTh(), power: s.Figures.GetPowerW()}
		err = checkFigures("figures", f.hashrate, f.power)
	default:
		err = platform.InvalidField("subject", "one of miner_id, model or figures is required")
	}
	if err != nil {
		return nil, err
	}
	in, err := a.resolve(ctx, req.GetParams(), req.GetMarket())
	if err != nil {
		return nil, err
	}
	r, err := in.calc.One(f.hashrate, f.power)
	if err != nil {
		return nil, domainErr(err)
	}
	return &miningv1.CalculateProfitabilityResponse{
		Result: in.toResult(f.id, f.hashrate, f.power, r),
		Market: toMarketInputs(in.snapshot),
		Params: toParams(in.calc.Params()),
	}, nil
}

// BatchProfitability computes many miners with one set of market inputs: by ids (request order,
// unknown or invisible ids in missing_miner_ids), by a filter over every visible miner (id
// order) or inline figures (request order).
func (a *API) BatchProfitability(ctx context.Context, req *miningv1.BatchProfitabilityRequest) (*miningv1.BatchProfitabilityResponse, error) {
	resp, err := a.batch(ctx, req)
	return resp, platform.ToStatus(ctx, a.d.Logger, err)
}

func (a *API) batch(ctx context.Context, req *miningv1.BatchProfitabilityRequest) (*miningv1.BatchProfitabilityResponse, error) {
	in, err := a.resolve(ctx, req.GetParams(), req.GetMarket())
	if err != nil {
		return nil, err
	}
	var (
		fl      *fleet
		missing []string
	)
	switch s := req.GetSelection().(type) {
	case *miningv1.BatchProfitabilityRequest_MinerIds_:
		fl, missing, err = a.byIDs(ctx, s.MinerIds.GetIds())
	case *miningv1.BatchProfitabilityRequest_Filter:
		limit := maxResults
		if req.GetTotalsOnly() {
			limit = 0
		}
		fl, err = a.minersByFilter(ctx, platform.ScopeFrom(ctx), s.Filter, !req.GetTotalsOnly(), limit)
		if errors.Is(err, errTooMany) {
			err = platform.InvalidField("totals_only",
				"more than "+strconv.Itoa(maxResults)+" miners match the filter: ask for totals_only or narrow the filter")
		}
	case *miningv1.BatchProfitabilityRequest_Inline:
		fl, err = inlineFleet(s.Inline.GetFigures())
	default:
		err = platform.InvalidField("selection", "one of miner_ids, filter or inline is required")
	}
	if err != nil {
		return nil, err
	}
	resp := &miningv1.BatchProfitabilityResponse{
		Market:          toMarketInputs(in.snapshot),
		Params:          toParams(in.calc.Params()),
		MissingMinerIds: missing,
	}
	if req.GetTotalsOnly() {
		t, err := in.calc.Sum(fl.hashrates, fl.powers, nil)
		if err != nil {
			return nil, domainErr(err)
		}
		resp.Totals = toTotals(t)
		return resp, nil
	}
	results := make([]calc.Result, len(fl.hashrates))
	t, err := in.calc.Sum(fl.hashrates, fl.powers, results)
	if err != nil {
		return nil, domainErr(err)
	}
	resp.Totals = toTotals(t)
	resp.Results = make([]*miningv1.ProfitabilityResult, len(results))
	for i, r := range results {
		id := ""
		if fl.ids != nil {
			id = fl.ids[i]
		}
		resp.Results[i] = in.toResult(id, fl.hashrates[i], fl.powers[i], r)
	}
	return resp, nil
}

// byIDs reads the requested miners in request order (a repeated id repeats its result); ids the
// caller cannot see are listed once each, in request order, as missing.
func (a *API) byIDs(ctx context.Context, ids []string) (*fleet, []string, error) {
	found, err := a.minersByID(ctx, platform.ScopeFrom(ctx), ids)
	if err != nil {
		return nil, nil, err
	}
	fl := &fleet{ids: make([]string, 0, len(found))}
	var missing []string
	seenMissing := map[string]bool{}
	for _, id := range ids {
		f, ok := found[strings.ToLower(id)]
		if !ok {
			if !seenMissing[id] {
				seenMissing[id] = true
				missing = append(missing, id)
			}
			continue
		}
		fl.ids = append(fl.ids, f.id)
		fl.hashrates = append(fl.hashrates, f.hashrate)
		fl.powers = append(fl.powers, f.power)
	}
	return fl, missing, nil
}

// inlineFleet checks and collects inline figures.
func inlineFleet(in []*miningv1.ProfitabilityFigures) (*fleet, error) {
	fl := &fleet{hashrates: make([]float64, len(in)), powers: make([]float64, len(in))}
	for i, f := range in {
		if err := checkFigures("inline.figures["+strconv.Itoa(i)+"]", f.GetHashrateTh(), f.GetPowerW()); err != nil {
			return nil, err
		}
		fl.hashrates[i], fl.powers[i] = f.GetHashrateTh(), f.GetPowerW()
	}
	return fl, nil
}

// checkFigures repeats the proto's bounds on inline figures (the domain does not rely on the
// interceptor having run).
func checkFigures(field string, h, w float64) error {
	switch {
	case !(h > 0 && h <= 1e7):
		return platform.InvalidField(field+".hashrate_th", "must be above 0 and at most 10000000")
	case !(w >= 0 && w <= 1e9):
		return platform.InvalidField(field+".power_w", "must be between 0 and 1000000000")
	}
	return nil
}

// GetFleetSummary aggregates the visible fleet (optionally one customer's, one site's) in one
// query: counts by status, totals over non-retired miners, and the estimated gross BTC and
// revenue per day of the active miners with the current market inputs (100 % uptime, no pool
// fee: floor of the total's satoshis, revenue from them half to even).
func (a *API) GetFleetSummary(ctx context.Context, req *miningv1.GetFleetSummaryRequest) (*miningv1.GetFleetSummaryResponse, error) {
	resp, err := a.fleetSummary(ctx, req)
	return resp, platform.ToStatus(ctx, a.d.Logger, err)
}

func (a *API) fleetSummary(ctx context.Context, req *miningv1.GetFleetSummaryRequest) (*miningv1.GetFleetSummaryResponse, error) {
	scope := platform.ScopeFrom(ctx).Narrow(req.GetCustomerId())
	g, err := a.aggregate(ctx, scope, req.GetSite())
	if err != nil {
		return nil, err
	}
	in, err := a.resolve(ctx, nil, nil)
	if err != nil {
		return nil, err
	}
	est, err := in.calc.One(g.activeHashrate, 0)
	if err != nil {
		return nil, domainErr(err)
	}
	s := &miningv1.FleetSummary{
		TotalMiners:                    g.total,
		ActiveCount:                    g.active,
		OfflineCount:                   g.offline,
		MaintenanceCount:               g.maintenance,
		RetiredCount:                   g.retired,
		TotalHashrateTh:                g.hashrate,
		TotalPowerW:                    g.power,
		EstimatedGrossBtcPerDaySats:    est.GrossSats,
		EstimatedRevenueUsdCentsPerDay: est.RevenueCents,
		Market:                         toMarketInputs(in.snapshot),
		AsOf:                           timestamppb.New(time.Now()),
	}
	if g.hashrate > 0 {
		s.WeightedEfficiencyJPerTh = g.power / g.hashrate
	}
	return &miningv1.GetFleetSummaryResponse{Summary: s}, nil
}
