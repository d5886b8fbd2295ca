package app_test

import (
	"context"
	"math"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
	analyticsv1 "github.com/hashinsight/platform/proto/hashinsight/analytics/v1"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

// profEasyMarket overrides every market figure so that a miner earns exactly 10,000 gross
// satoshis per TH/s per day (D × 2^32 = 10^12 × 86400 × 312,500,000 / 10,000, and D = 27 × 5^20
// / 2^12 is exact in binary) at $100,000 per BTC: $10 per TH/s per day.
func profEasyMarket() *miningv1.MarketOverride {
	return &miningv1.MarketOverride{
		BtcPriceUsdCents:    proto.Int64(10_000_000),
		Difficulty:          proto.Float64(27 * math.Pow(5, 20) / 4096),
		BlockSubsidySats:    proto.Int64(312_500_000),
		AvgFeesPerBlockSats: proto.Int64(0),
	}
}

// profStart runs mining with analytics at an address where nothing listens (the offline
// snapshot answers) unless env says otherwise.
func profStart(t *testing.T, env map[string]string) *mesh {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["ANALYTICS_GRPC_ADDR"]; !ok {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		env["ANALYTICS_GRPC_ADDR"] = lis.Addr().String()
		_ = lis.Close()
	}
	return startMining(t, env)
}

// profMiner creates a miner through the inventory API as the operator and returns its id.
// customer "" leaves it unassigned; status is the stored spelling ("active").
func profMiner(t *testing.T, m *mesh, name, model, site, customer, status string, hashrate, power float64) string {
	t.Helper()
	st := miningv1.MinerStatus(miningv1.MinerStatus_value["MINER_STATUS_"+strings.ToUpper(status)])
	if st == miningv1.MinerStatus_MINER_STATUS_UNSPECIFIED {
		t.Fatalf("status %q", status)
	}
	resp, err := m.op.CreateMiner(m.ctx(), &miningv1.CreateMinerRequest{
		Name: name, Model: model, Site: site, CustomerId: customer, Status: st, HashrateTh: hashrate, PowerW: power,
	})
	if err != nil {
		t.Fatalf("create miner %s: %v", name, err)
	}
	return resp.GetMiner().GetId()
}

func TestCalculateProfitability(t *testing.T) {
	m := profStart(t, nil)
	minerA := profMiner(t, m, "a-1", "Antminer S19 Pro", "site-1", customerA, "active", 100, 3000)
	minerB := profMiner(t, m, "b-1", "Antminer S21", "site-2", customerB, "active", 200, 3500)

	t.Run("inline figures with the market overridden", func(t *testing.T) {
		resp, err := m.gw.CalculateProfitability(m.as(client(customerA)), &miningv1.CalculateProfitabilityRequest{
			Subject: &miningv1.CalculateProfitabilityRequest_Figures{Figures: &miningv1.ProfitabilityFigures{HashrateTh: 100, PowerW: 3000}},
			Params:  &miningv1.ProfitabilityParams{ElectricityUsdPerKwh: "0.05", PoolFeePercent: "2.5"},
			Market:  profEasyMarket(),
		})
		if err != nil {
			t.Fatal(err)
		}
		// 1,000,000 sats gross; 975,000 net = $975; 3 kW × 24 h × $0.05 = $3.60.
		want := &miningv1.ProfitabilityResult{
			HashrateTh: 100, PowerW: 3000,
			GrossBtcPerDaySats: 1_000_000, GrossBtcPerDay: "0.010000000000",
			NetBtcPerDaySats: 975_000, NetBtcPerDay: "0.009750000000",
			RevenueUsdCentsPerDay: 97_500, PowerCostUsdCentsPerDay: 360, ProfitUsdCentsPerDay: 97_140,
			HashpriceUsdPerThDay: "10.00000000", BreakEvenElectricityUsdPerKwh: "13.541667", BreakEvenBtcPriceUsd: "369.23",
		}
		if !proto.Equal(resp.GetResult(), want) {
			t.Fatalf("result %v\nwant   %v", resp.GetResult(), want)
		}
		if got := resp.GetMarket().GetSource(); got != "request" {
			t.Fatalf("source %q, want request", got)
		}
		if p := resp.GetParams(); p.GetElectricityUsdPerKwh() != "0.05" || p.GetPoolFeePercent() != "2.5" || p.GetUptimePercent() != "100" {
			t.Fatalf("params %v", p)
		}
	})

	t.Run("offline default market and default params", func(t *testing.T) {
		resp, err := m.gw.CalculateProfitability(m.as(admin()), &miningv1.CalculateProfitabilityRequest{
			Subject: &miningv1.CalculateProfitabilityRequest_Figures{Figures: &miningv1.ProfitabilityFigures{HashrateTh: 200, PowerW: 3500}},
		})
		if err != nil {
			t.Fatal(err)
		}
		mk := resp.GetMarket()
		if mk.GetSource() != "offline-default" || mk.GetBlockSubsidySats() != 312_500_000 || mk.GetBtcPriceUsdCents() <= 0 ||
			!mk.GetAsOf().AsTime().Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("market %v, want the offline default", mk)
		}
		if p := resp.GetParams(); p.GetElectricityUsdPerKwh() != "0.05" || p.GetPoolFeePercent() != "0" || p.GetUptimePercent() != "100" {
			t.Fatalf("default params %v", p)
		}
		r := resp.GetResult()
		if r.GetGrossBtcPerDaySats() <= 0 || r.GetNetBtcPerDaySats() != r.GetGrossBtcPerDaySats() ||
			r.GetPowerCostUsdCentsPerDay() != 420 { // 3.5 kW × 24 h × $0.05 = $4.20
			t.Fatalf("result %v", r)
		}
	})

	t.Run("partial override names both sources", func(t *testing.T) {
		resp, err := m.gw.CalculateProfitability(m.as(admin()), &miningv1.CalculateProfitabilityRequest{
			Subject: &miningv1.CalculateProfitabilityRequest_Model{Model: "Antminer S21"},
			Market:  &miningv1.MarketOverride{BtcPriceUsdCents: proto.Int64(20_000_000)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetMarket(); got.GetSource() != "request (over offline-default)" || got.GetBtcPriceUsdCents() != 20_000_000 {
			t.Fatalf("market %v", got)
		}
	})

	t.Run("catalogue model, case-insensitive", func(t *testing.T) {
		resp, err := m.gw.CalculateProfitability(m.as(client(customerA)), &miningv1.CalculateProfitabilityRequest{
			Subject: &miningv1.CalculateProfitabilityRequest_Model{Model: "antminer s19 PRO"},
			Market:  profEasyMarket(),
		})
		if err != nil {
			t.Fatal(err)
		}
		r := resp.GetResult()
		if r.GetHashrateTh() != 110 || r.GetPowerW() != 3250 || r.GetGrossBtcPerDaySats() != 1_100_000 || r.GetMinerId() != "" {
			t.Fatalf("result %v, want the S19 Pro nameplate (110 TH/s, 3250 W)", r)
		}
	})

	t.Run("own miner", func(t *testing.T) {
		resp, err := m.gw.CalculateProfitability(m.as(client(customerA)), &miningv1.CalculateProfitabilityRequest{
			Subject: &miningv1.CalculateProfitabilityRequest_MinerId{MinerId: minerA},
			Market:  profEasyMarket(),
		})
		if err != nil {
			t.Fatal(err)
		}
		r := resp.GetResult()
		if r.GetMinerId() != minerA || r.GetHashrateTh() != 100 || r.GetPowerW() != 3000 || r.GetGrossBtcPerDaySats() != 1_000_000 {
			t.Fatalf("result %v", r)
		}
	})

	t.Run("operator sees every miner", func(t *testing.T) {
		if _, err := m.op.CalculateProfitability(m.ctx(), &miningv1.CalculateProfitabilityRequest{
			Subject: &miningv1.CalculateProfitabilityRequest_MinerId{MinerId: minerB},
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("another tenant's miner is not found", func(t *testing.T) {
		for _, id := range []string{minerB, "cccccccc-0000-4000-8000-00000000000c"} {
			_, err := m.gw.CalculateProfitability(m.as(client(customerA)), &miningv1.CalculateProfitabilityRequest{
				Subject: &miningv1.CalculateProfitabilityRequest_MinerId{MinerId: id},
			})
			wantCode(t, err, codes.NotFound, errcode.NotFound)
		}
		_, err := m.gw.CalculateProfitability(m.as(broker(customerB)), &miningv1.CalculateProfitabilityRequest{
			Subject: &miningv1.CalculateProfitabilityRequest_MinerId{MinerId: minerA},
		})
		wantCode(t, err, codes.NotFound, errcode.NotFound)
	})

	t.Run("bad inputs", func(t *testing.T) {
		figures := &miningv1.CalculateProfitabilityRequest_Figures{Figures: &miningv1.ProfitabilityFigures{HashrateTh: 100, PowerW: 3000}}
		tests := []struct {
			name  string
			req   *miningv1.CalculateProfitabilityRequest
			field string
		}{
			{"unknown model", &miningv1.CalculateProfitabilityRequest{
				Subject: &miningv1.CalculateProfitabilityRequest_Model{Model: "Antminer S99"}}, "model"},
			{"miner id not a uuid", &miningv1.CalculateProfitabilityRequest{
				Subject: &miningv1.CalculateProfitabilityRequest_MinerId{MinerId: "miner-1"}}, "miner_id"},
			{"zero hashrate", &miningv1.CalculateProfitabilityRequest{
				Subject: &miningv1.CalculateProfitabilityRequest_Figures{Figures: &miningv1.ProfitabilityFigures{PowerW: 3000}}}, "figures.hashrate_th"},
			{"negative power", &miningv1.CalculateProfitabilityRequest{
				Subject: &miningv1.CalculateProfitabilityRequest_Figures{Figures: &miningv1.ProfitabilityFigures{HashrateTh: 1, PowerW: -1}}}, "figures.power_w"},
			{"electricity with an exponent", &miningv1.CalculateProfitabilityRequest{Subject: figures,
				Params: &miningv1.ProfitabilityParams{ElectricityUsdPerKwh: "5e-2"}}, "params.electricity_usd_per_kwh"},
			{"negative electricity", &miningv1.CalculateProfitabilityRequest{Subject: figures,
				Params: &miningv1.ProfitabilityParams{ElectricityUsdPerKwh: "-0.05"}}, "params.electricity_usd_per_kwh"},
			{"pool fee above 100", &miningv1.CalculateProfitabilityRequest{Subject: figures,
				Params: &miningv1.ProfitabilityParams{PoolFeePercent: "100.5"}}, "params.pool_fee_percent"},
			{"pool fee not a number", &miningv1.CalculateProfitabilityRequest{Subject: figures,
				Params: &miningv1.ProfitabilityParams{PoolFeePercent: "two"}}, "params.pool_fee_percent"},
			{"uptime above 100", &miningv1.CalculateProfitabilityRequest{Subject: figures,
				Params: &miningv1.ProfitabilityParams{UptimePercent: "101"}}, "params.uptime_percent"},
			{"zero difficulty", &miningv1.CalculateProfitabilityRequest{Subject: figures,
				Market: &miningv1.MarketOverride{Difficulty: proto.Float64(0)}}, "market.difficulty"},
			{"zero price", &miningv1.CalculateProfitabilityRequest{Subject: figures,
				Market: &miningv1.MarketOverride{BtcPriceUsdCents: proto.Int64(0)}}, "market.btc_price_usd_cents"},
			{"difficulty too small for the hashrate", &miningv1.CalculateProfitabilityRequest{
				Subject: &miningv1.CalculateProfitabilityRequest_Figures{Figures: &miningv1.ProfitabilityFigures{HashrateTh: 1e7}},
				Market:  &miningv1.MarketOverride{Difficulty: proto.Float64(1e-9)}}, "market.difficulty"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := m.gw.CalculateProfitability(m.as(admin()), tc.req)
				wantField(t, err, codes.InvalidArgument, tc.field)
			})
		}
		_, err := m.gw.CalculateProfitability(m.as(admin()), &miningv1.CalculateProfitabilityRequest{})
		wantCode(t, err, codes.InvalidArgument, errcode.Validation)
	})
}

func TestBatchProfitability(t *testing.T) {
	m := profStart(t, nil)
	a1 := profMiner(t, m, "a-1", "Antminer S19 Pro", "site-1", customerA, "active", 100, 3000)
	a2 := profMiner(t, m, "a-2", "Antminer S21", "site-1", customerA, "offline", 200, 3500)
	a3 := profMiner(t, m, "a-3", "Antminer S9", "site-2", customerA, "active", 13.5, 1323)
	b1 := profMiner(t, m, "b-1", "Antminer S21", "site-1", customerB, "active", 200, 3500)
	u1 := profMiner(t, m, "u-1", "Antminer S21", "site-3", "", "retired", 200, 3500)
	unknown := "cccccccc-0000-4000-8000-00000000000c"
	params := &miningv1.ProfitabilityParams{ElectricityUsdPerKwh: "0.1"}

	ids := func(rs []*miningv1.ProfitabilityResult) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = r.GetMinerId()
		}
		return out
	}
	sorted := func(s ...string) []string { s = slices.Clone(s); slices.Sort(s); return s }

	t.Run("by ids in request order, missing listed", func(t *testing.T) {
		resp, err := m.gw.BatchProfitability(m.as(client(customerA)), &miningv1.BatchProfitabilityRequest{
			Selection: &miningv1.BatchProfitabilityRequest_MinerIds_{MinerIds: &miningv1.BatchProfitabilityRequest_MinerIds{
				Ids: []string{a3, unknown, b1, strings.ToUpper(a1), a3}}},
			Params: params, Market: profEasyMarket(),
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(resp.GetResults()), []string{a3, a1, a3}; !slices.Equal(got, want) {
			t.Fatalf("results %v, want %v", got, want)
		}
		if got, want := resp.GetMissingMinerIds(), []string{unknown, b1}; !slices.Equal(got, want) {
			t.Fatalf("missing %v, want %v", got, want)
		}
		// a1: 1,000,000 sats = $1,000 − 72 kWh × $0.10; a3: 135,000 sats = $135 − 31.752 kWh × $0.10.
		tot := resp.GetTotals()
		want := &miningv1.ProfitabilityTotals{
			MinerCount: 3, ProfitableCount: 3, TotalHashrateTh: 127, TotalPowerW: 5646,
			GrossBtcPerDaySats: 1_270_000, NetBtcPerDaySats: 1_270_000,
			RevenueUsdCentsPerDay: 127_000, PowerCostUsdCentsPerDay: 720 + 2*318, ProfitUsdCentsPerDay: 127_000 - 720 - 2*318,
		}
		if !proto.Equal(tot, want) {
			t.Fatalf("totals %v\nwant   %v", tot, want)
		}
	})

	t.Run("by filter, every visible miner in id order", func(t *testing.T) {
		tests := []struct {
			name   string
			as     context.Context
			filter *miningv1.MinerFilter
			want   []string
		}{
			{"admin, everything", m.as(admin()), &miningv1.MinerFilter{}, sorted(a1, a2, a3, b1, u1)},
			{"client sees its own", m.as(client(customerA)), &miningv1.MinerFilter{}, sorted(a1, a2, a3)},
			{"client, status", m.as(client(customerA)), &miningv1.MinerFilter{Status: miningv1.MinerStatus_MINER_STATUS_ACTIVE}, sorted(a1, a3)},
			{"client, model", m.as(client(customerA)), &miningv1.MinerFilter{Model: "antminer s21"}, []string{a2}},
			{"admin, site", m.as(admin()), &miningv1.MinerFilter{Site: "site-1"}, sorted(a1, a2, b1)},
			{"broker, customer", m.as(broker(customerA, customerB)), &miningv1.MinerFilter{CustomerId: customerB}, []string{b1}},
			{"client, other customer", m.as(client(customerA)), &miningv1.MinerFilter{CustomerId: customerB}, []string{}},
			{"unknown model", m.as(admin()), &miningv1.MinerFilter{Model: "Antminer S99"}, []string{}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req := &miningv1.BatchProfitabilityRequest{
					Selection: &miningv1.BatchProfitabilityRequest_Filter{Filter: tc.filter}, Params: params, Market: profEasyMarket(),
				}
				resp, err := m.gw.BatchProfitability(tc.as, req)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(resp.GetResults()); !slices.Equal(got, tc.want) {
					t.Fatalf("results %v, want %v", got, tc.want)
				}
				if resp.GetTotals().GetMinerCount() != int64(len(tc.want)) {
					t.Fatalf("miner_count %d, want %d", resp.GetTotals().GetMinerCount(), len(tc.want))
				}
				req.TotalsOnly = true
				only, err := m.gw.BatchProfitability(tc.as, req)
				if err != nil {
					t.Fatal(err)
				}
				if len(only.GetResults()) != 0 || !proto.Equal(only.GetTotals(), resp.GetTotals()) {
					t.Fatalf("totals_only: %d results, totals %v, want none and %v", len(only.GetResults()), only.GetTotals(), resp.GetTotals())
				}
			})
		}
	})

	t.Run("inline figures in request order", func(t *testing.T) {
		resp, err := m.gw.BatchProfitability(m.as(client(customerA)), &miningv1.BatchProfitabilityRequest{
			Selection: &miningv1.BatchProfitabilityRequest_Inline{Inline: &miningv1.BatchProfitabilityRequest_InlineFigures{
				Figures: []*miningv1.ProfitabilityFigures{{HashrateTh: 100, PowerW: 3000}, {HashrateTh: 1, PowerW: 100_000}, {HashrateTh: 5, PowerW: 0}}}},
			Params: params, Market: profEasyMarket(),
		})
		if err != nil {
			t.Fatal(err)
		}
		rs := resp.GetResults()
		if len(rs) != 3 || rs[0].GetHashrateTh() != 100 || rs[1].GetHashrateTh() != 1 || rs[2].GetHashrateTh() != 5 {
			t.Fatalf("results %v", rs)
		}
		// The second: $10 revenue, 2,400 kWh × $0.10 = $240 cost.
		if rs[1].GetProfitUsdCentsPerDay() != 1_000-24_000 || rs[2].GetBreakEvenElectricityUsdPerKwh() != "" || rs[2].GetBreakEvenBtcPriceUsd() != "0.00" {
			t.Fatalf("results %v", rs)
		}
		if tot := resp.GetTotals(); tot.GetMinerCount() != 3 || tot.GetProfitableCount() != 2 {
			t.Fatalf("totals %v", tot)
		}
	})

	t.Run("bad inputs", func(t *testing.T) {
		tests := []struct {
			name  string
			req   *miningv1.BatchProfitabilityRequest
			field string
		}{
			{"id not a uuid", &miningv1.BatchProfitabilityRequest{Selection: &miningv1.BatchProfitabilityRequest_MinerIds_{
				MinerIds: &miningv1.BatchProfitabilityRequest_MinerIds{Ids: []string{a1, "nope"}}}}, "miner_ids.ids[1]"},
			{"no ids", &miningv1.BatchProfitabilityRequest{Selection: &miningv1.BatchProfitabilityRequest_MinerIds_{
				MinerIds: &miningv1.BatchProfitabilityRequest_MinerIds{}}}, "miner_ids.ids"},
			{"inline zero hashrate", &miningv1.BatchProfitabilityRequest{Selection: &miningv1.BatchProfitabilityRequest_Inline{
				Inline: &miningv1.BatchProfitabilityRequest_InlineFigures{Figures: []*miningv1.ProfitabilityFigures{{HashrateTh: 1}, {PowerW: 1}}}}},
				"inline.figures[1].hashrate_th"},
			{"filter customer not a uuid", &miningv1.BatchProfitabilityRequest{Selection: &miningv1.BatchProfitabilityRequest_Filter{
				Filter: &miningv1.MinerFilter{CustomerId: "acme"}}}, "filter.customer_id"},
			{"uptime with two points", &miningv1.BatchProfitabilityRequest{Selection: &miningv1.BatchProfitabilityRequest_Filter{
				Filter: &miningv1.MinerFilter{}}, Params: &miningv1.ProfitabilityParams{UptimePercent: "9.9.9"}}, "params.uptime_percent"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := m.gw.BatchProfitability(m.as(admin()), tc.req)
				wantField(t, err, codes.InvalidArgument, tc.field)
			})
		}
		_, err := m.gw.BatchProfitability(m.as(admin()), &miningv1.BatchProfitabilityRequest{})
		wantCode(t, err, codes.InvalidArgument, errcode.Validation)
	})
}

func TestGetFleetSummary(t *testing.T) {
	m := profStart(t, nil)
	profMiner(t, m, "a-1", "Antminer S19 Pro", "site-1", customerA, "active", 100, 3000)
	profMiner(t, m, "a-2", "Antminer S21", "site-1", customerA, "offline", 200, 3500)
	profMiner(t, m, "a-3", "Antminer S9", "site-2", customerA, "maintenance", 13.5, 1323)
	profMiner(t, m, "a-4", "Antminer S21", "site-2", customerA, "retired", 200, 3500)
	profMiner(t, m, "b-1", "Antminer S21", "site-1", customerB, "active", 200, 3500)
	profMiner(t, m, "u-1", "Antminer S21", "site-3", "", "active", 100, 2000)

	tests := []struct {
		name                                       string
		as                                         context.Context
		req                                        *miningv1.GetFleetSummaryRequest
		total, active, offline, maintenance, retir int64
		hashrate, power, activeHashrate            float64
	}{
		{"admin, everything", m.as(admin()), &miningv1.GetFleetSummaryRequest{}, 6, 3, 1, 1, 1, 613.5, 13323, 400},
		{"client, its customer", m.as(client(customerA)), &miningv1.GetFleetSummaryRequest{}, 4, 1, 1, 1, 1, 313.5, 7823, 100},
		{"client, site", m.as(client(customerA)), &miningv1.GetFleetSummaryRequest{Site: "site-1"}, 2, 1, 1, 0, 0, 300, 6500, 100},
		{"admin, customer B", m.as(admin()), &miningv1.GetFleetSummaryRequest{CustomerId: customerB}, 1, 1, 0, 0, 0, 200, 3500, 200},
		{"client, customer B", m.as(client(customerA)), &miningv1.GetFleetSummaryRequest{CustomerId: customerB}, 0, 0, 0, 0, 0, 0, 0, 0},
		{"broker of B", m.as(broker(customerB)), &miningv1.GetFleetSummaryRequest{}, 1, 1, 0, 0, 0, 200, 3500, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := m.gw.GetFleetSummary(tc.as, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			s := resp.GetSummary()
			if s.GetTotalMiners() != tc.total || s.GetActiveCount() != tc.active || s.GetOfflineCount() != tc.offline ||
				s.GetMaintenanceCount() != tc.maintenance || s.GetRetiredCount() != tc.retir {
				t.Fatalf("counts %v", s)
			}
			if math.Abs(s.GetTotalHashrateTh()-tc.hashrate) > 1e-9 || math.Abs(s.GetTotalPowerW()-tc.power) > 1e-9 {
				t.Fatalf("totals %v TH/s %v W, want %v %v", s.GetTotalHashrateTh(), s.GetTotalPowerW(), tc.hashrate, tc.power)
			}
			wantEff := 0.0
			if tc.hashrate > 0 {
				wantEff = tc.power / tc.hashrate
			}
			if math.Abs(s.GetWeightedEfficiencyJPerTh()-wantEff) > 1e-9 {
				t.Fatalf("weighted efficiency %v, want %v", s.GetWeightedEfficiencyJPerTh(), wantEff)
			}
			// Estimated from the offline market: floor(H × 86400 × (S+F) / (D × 2^32)).
			mk := s.GetMarket()
			if mk.GetSource() != "offline-default" {
				t.Fatalf("market source %q", mk.GetSource())
			}
			exact := tc.activeHashrate * 1e12 * 86400 * float64(mk.GetBlockSubsidySats()+mk.GetAvgFeesPerBlockSats()) /
				(mk.GetDifficulty() * 4294967296)
			if got := s.GetEstimatedGrossBtcPerDaySats(); got != int64(math.Floor(exact)) {
				t.Fatalf("estimated sats %d, want floor(%v)", got, exact)
			}
			wantCents := math.RoundToEven(float64(s.GetEstimatedGrossBtcPerDaySats()) * float64(mk.GetBtcPriceUsdCents()) / 1e8)
			if got := s.GetEstimatedRevenueUsdCentsPerDay(); math.Abs(float64(got)-wantCents) > 0.5 {
				t.Fatalf("estimated revenue %d cents, want %v", got, wantCents)
			}
			if s.GetAsOf() == nil {
				t.Fatal("no as_of")
			}
		})
	}
	_, err := m.gw.GetFleetSummary(m.as(admin()), &miningv1.GetFleetSummaryRequest{CustomerId: "acme"})
	wantField(t, err, codes.InvalidArgument, "customer_id")
}

// profAnalytics stands in for the analytics service: GetLatestMarketData answers snap.
type profAnalytics struct {
	analyticsv1.UnimplementedAnalyticsServiceServer
	snap *analyticsv1.MarketSnapshot
}

func (s *profAnalytics) GetLatestMarketData(context.Context, *analyticsv1.GetLatestMarketDataRequest) (*analyticsv1.GetLatestMarketDataResponse, error) {
	return &analyticsv1.GetLatestMarketDataResponse{Snapshot: s.snap}, nil
}

// TestProfitabilityFromAnalytics serves GetLatestMarketData as svc/analytics over the harness's
// mTLS: the calculation uses its figures and says so.
func TestProfitabilityFromAnalytics(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := profStart(t, map[string]string{"ANALYTICS_GRPC_ADDR": lis.Addr().String()})
	observed := time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)
	profServeAnalytics(t, m, lis, &profAnalytics{snap: &analyticsv1.MarketSnapshot{
		BtcPriceUsdCents: 10_000_000, BtcPriceSource: "coingecko",
		Difficulty: 27 * math.Pow(5, 20) / 4096, DifficultySource: "mempool.space",
		BlockSubsidySats: 312_500_000, AvgFeesPerBlockSats: 0, FeesSource: "mempool.space",
		NetworkHashrateEhs: 4.5, NetworkHashrateSource: "mempool.space",
		ObservedAt: timestamppb.New(observed),
	}})

	resp, err := m.gw.CalculateProfitability(m.as(client(customerA)), &miningv1.CalculateProfitabilityRequest{
		Subject: &miningv1.CalculateProfitabilityRequest_Figures{Figures: &miningv1.ProfitabilityFigures{HashrateTh: 100, PowerW: 3000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mk := resp.GetMarket()
	if !strings.HasPrefix(mk.GetSource(), "analytics") || !strings.Contains(mk.GetSource(), "coingecko") ||
		mk.GetBtcPriceUsdCents() != 10_000_000 || mk.GetNetworkHashrateEhs() != 4.5 || !mk.GetAsOf().AsTime().Equal(observed) {
		t.Fatalf("market %v, want the analytics snapshot", mk)
	}
	if got := resp.GetResult().GetGrossBtcPerDaySats(); got != 1_000_000 {
		t.Fatalf("gross sats %d with the analytics market, want 1,000,000", got)
	}

	// A partial override keeps the rest of the analytics figures.
	resp, err = m.gw.CalculateProfitability(m.as(admin()), &miningv1.CalculateProfitabilityRequest{
		Subject: &miningv1.CalculateProfitabilityRequest_Figures{Figures: &miningv1.ProfitabilityFigures{HashrateTh: 100, PowerW: 3000}},
		Market:  &miningv1.MarketOverride{BtcPriceUsdCents: proto.Int64(5_000_000)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetMarket().GetSource(); !strings.HasPrefix(got, "request (over analytics") {
		t.Fatalf("source %q", got)
	}
	if got := resp.GetResult().GetRevenueUsdCentsPerDay(); got != 50_000 {
		t.Fatalf("revenue %d cents, want 50,000 (0.01 BTC at $50,000)", got)
	}

	// Batch and fleet summary use the same snapshot.
	b, err := m.gw.BatchProfitability(m.as(admin()), &miningv1.BatchProfitabilityRequest{
		Selection: &miningv1.BatchProfitabilityRequest_Filter{Filter: &miningv1.MinerFilter{}}, TotalsOnly: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := m.gw.GetFleetSummary(m.as(admin()), &miningv1.GetFleetSummaryRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []string{b.GetMarket().GetSource(), f.GetSummary().GetMarket().GetSource()} {
		if !strings.HasPrefix(got, "analytics") {
			t.Fatalf("source %q, want analytics", got)
		}
	}
}

// profServeAnalytics serves impl as svc/analytics (a certificate of the harness CA) on lis until
// the test ends.
func profServeAnalytics(t *testing.T, m *mesh, lis net.Listener, impl analyticsv1.AnalyticsServiceServer) {
	t.Helper()
	id := mtls.Service("analytics")
	if _, err := devca.Ensure(m.h.Certs.Dir, []mtls.Identity{id}); err != nil {
		t.Fatal(err)
	}
	src, err := mtls.NewSource(m.h.Certs.Config(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(src.ServerTLS())))
	analyticsv1.RegisterAnalyticsServiceServer(srv, impl)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
}

// TestProfitabilityAnalyticsUnimplemented: analytics as it is today (it answers UNIMPLEMENTED)
// leaves the calculation on the offline snapshot, which the answer says.
func TestProfitabilityAnalyticsUnimplemented(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := profStart(t, map[string]string{"ANALYTICS_GRPC_ADDR": lis.Addr().String()})
	profServeAnalytics(t, m, lis, analyticsv1.UnimplementedAnalyticsServiceServer{})
	for range 5 { // past the breaker's threshold: still answered, from the offline snapshot
		resp, err := m.gw.CalculateProfitability(m.as(admin()), &miningv1.CalculateProfitabilityRequest{
			Subject: &miningv1.CalculateProfitabilityRequest_Model{Model: "Antminer S21"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetMarket().GetSource(); got != "offline-default" {
			t.Fatalf("source %q, want offline-default", got)
		}
	}
}
