package app_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/errcode"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

// TestTenancyEveryRPC is the tenancy table over every MiningService RPC: a caller scoped to
// customer A — holding every permission, so that only the tenant scope stands between it and
// customer B's data — never reads, changes or counts B's miners. Another tenant's miner answers
// exactly like a missing one (NOT_FOUND); lists, batches, summaries and uptime leave it out.
// The model catalogue is global reference data, not tenant data: scoped callers read it, and
// writing it needs models:write, which only owners and admins hold.
func TestTenancyEveryRPC(t *testing.T) {
	m := startMining(t, nil)
	adm := m.as(admin())
	minerA := m.invCreateMiner(adm, &miningv1.CreateMinerRequest{Name: "a-1", Model: "Antminer S19 Pro",
		Serial: "TEN-A", Site: "site-a", CustomerId: customerA, HashrateTh: 110, PowerW: 3250})
	minerB := m.invCreateMiner(adm, &miningv1.CreateMinerRequest{Name: "b-1", Model: "Antminer S19 Pro",
		Serial: "TEN-B", Site: "site-b", CustomerId: customerB, HashrateTh: 110, PowerW: 3250})
	now := time.Now().UTC()
	from, to := timestamppb.New(now.Add(-2*time.Hour)), timestamppb.New(now)
	if _, err := m.gw.SetDowntimeCause(adm, &miningv1.SetDowntimeCauseRequest{
		Target:    &miningv1.SetDowntimeCauseRequest_MinerId{MinerId: minerB.GetId()},
		Cause:     miningv1.DowntimeCause_DOWNTIME_CAUSE_MAINTENANCE,
		StartTime: from, EndTime: to,
	}); err != nil {
		t.Fatalf("cause on B: %v", err)
	}

	// scoped sees customer A only, with every permission; brokerA is a real broker of A.
	scoped := broker(customerA)
	scoped.Permissions = authn.AllPermissions()
	as := func() miningv1.MiningServiceClient { return m.gw }
	scopedCtx := func() context.Context { return m.as(scoped) }
	brokerA := func() context.Context { return m.as(broker(customerA)) }
	countB := func(t *testing.T) int {
		t.Helper()
		var n int
		if err := m.h.Runtime.DB.QueryRow(m.ctx(), `SELECT count(*) FROM miners WHERE customer_id = $1`, customerB).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	tests := map[string]func(t *testing.T){
		"CreateMiner": func(t *testing.T) {
			_, err := as().CreateMiner(scopedCtx(), &miningv1.CreateMinerRequest{Name: "intruder", Model: "Antminer S19 Pro",
				Site: "site-b", CustomerId: customerB, HashrateTh: 110, PowerW: 3250})
			wantField(t, err, codes.PermissionDenied, "customer_id")
			if n := countB(t); n != 1 {
				t.Fatalf("customer B has %d miners, want 1", n)
			}
		},
		"GetMiner": func(t *testing.T) {
			_, err := as().GetMiner(scopedCtx(), &miningv1.GetMinerRequest{Id: minerB.GetId()})
			wantCode(t, err, codes.NotFound, errcode.NotFound)
		},
		"ListMiners": func(t *testing.T) {
			for _, filter := range []string{"", customerB} {
				resp, err := as().ListMiners(scopedCtx(), &miningv1.ListMinersRequest{CustomerId: filter})
				if err != nil {
					t.Fatal(err)
				}
				for _, mi := range resp.GetMiners() {
					if mi.GetCustomerId() != customerA {
						t.Fatalf("filter %q lists %v", filter, mi)
					}
				}
			}
		},
		"UpdateMiner": func(t *testing.T) {
			name := "renamed"
			_, err := as().UpdateMiner(scopedCtx(), &miningv1.UpdateMinerRequest{Id: minerB.GetId(), Name: &name})
			wantCode(t, err, codes.NotFound, errcode.NotFound)
		},
		"DeleteMiner": func(t *testing.T) {
			_, err := as().DeleteMiner(scopedCtx(), &miningv1.DeleteMinerRequest{Id: minerB.GetId()})
			wantCode(t, err, codes.NotFound, errcode.NotFound)
			if n := countB(t); n != 1 {
				t.Fatalf("customer B has %d miners, want 1", n)
			}
		},
		"ImportMinersCsv": func(t *testing.T) {
			_, err := as().ImportMinersCsv(scopedCtx(), &miningv1.ImportMinersCsvRequest{Csv: []byte(impFile("ten", "site-b", 2, customerB))})
			if err == nil {
				t.Fatal("import for customer B succeeded")
			}
			if n := countB(t); n != 1 {
				t.Fatalf("customer B has %d miners, want 1", n)
			}
		},
		"ImportMiners": func(t *testing.T) {
			_, results, err := impStream(t, scopedCtx(), as(), &miningv1.ImportMinersRequest_Header{}, impFile("tens", "site-b", 2, customerB), 64)
			if err == nil || len(results) > 0 && results[len(results)-1].GetCommitted() {
				t.Fatalf("stream import for customer B: %v %v", results, err)
			}
			if n := countB(t); n != 1 {
				t.Fatalf("customer B has %d miners, want 1", n)
			}
		},
		"ListMinerModels": func(t *testing.T) {
			resp, err := as().ListMinerModels(brokerA(), &miningv1.ListMinerModelsRequest{})
			if err != nil || len(resp.GetMinerModels()) == 0 {
				t.Fatalf("catalogue: %v %v", resp, err)
			}
		},
		"GetMinerModel": func(t *testing.T) {
			list, err := as().ListMinerModels(brokerA(), &miningv1.ListMinerModelsRequest{PageSize: 1})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := as().GetMinerModel(brokerA(), &miningv1.GetMinerModelRequest{Id: list.GetMinerModels()[0].GetId()}); err != nil {
				t.Fatal(err)
			}
		},
		"CreateMinerModel": func(t *testing.T) {
			_, err := as().CreateMinerModel(brokerA(), &miningv1.CreateMinerModelRequest{Vendor: "X", Name: "X1", HashrateTh: 100, PowerW: 3000})
			wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		},
		"UpdateMinerModel": func(t *testing.T) {
			vendor := "Y"
			list, err := as().ListMinerModels(brokerA(), &miningv1.ListMinerModelsRequest{PageSize: 1})
			if err != nil {
				t.Fatal(err)
			}
			_, err = as().UpdateMinerModel(brokerA(), &miningv1.UpdateMinerModelRequest{Id: list.GetMinerModels()[0].GetId(), Vendor: &vendor})
			wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		},
		"CalculateProfitability": func(t *testing.T) {
			_, err := as().CalculateProfitability(scopedCtx(), &miningv1.CalculateProfitabilityRequest{
				Subject: &miningv1.CalculateProfitabilityRequest_MinerId{MinerId: minerB.GetId()}})
			wantCode(t, err, codes.NotFound, errcode.NotFound)
		},
		"BatchProfitability": func(t *testing.T) {
			resp, err := as().BatchProfitability(scopedCtx(), &miningv1.BatchProfitabilityRequest{
				Selection: &miningv1.BatchProfitabilityRequest_MinerIds_{MinerIds: &miningv1.BatchProfitabilityRequest_MinerIds{
					Ids: []string{minerA.GetId(), minerB.GetId()}}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetResults()) != 1 || resp.GetResults()[0].GetMinerId() != minerA.GetId() ||
				len(resp.GetMissingMinerIds()) != 1 || resp.GetMissingMinerIds()[0] != minerB.GetId() {
				t.Fatalf("by ids: results %v, missing %v", resp.GetResults(), resp.GetMissingMinerIds())
			}
			resp, err = as().BatchProfitability(scopedCtx(), &miningv1.BatchProfitabilityRequest{
				Selection: &miningv1.BatchProfitabilityRequest_Filter{Filter: &miningv1.MinerFilter{}}})
			if err != nil || resp.GetTotals().GetMinerCount() != 1 {
				t.Fatalf("by filter: %v %v", resp.GetTotals(), err)
			}
		},
		"GetFleetSummary": func(t *testing.T) {
			for filter, want := range map[string]int64{"": 1, customerB: 0} {
				resp, err := as().GetFleetSummary(scopedCtx(), &miningv1.GetFleetSummaryRequest{CustomerId: filter})
				if err != nil || resp.GetSummary().GetTotalMiners() != want {
					t.Fatalf("filter %q: %v %v, want %d miners", filter, resp.GetSummary(), err, want)
				}
			}
		},
		"GetMinerUptime": func(t *testing.T) {
			_, err := as().GetMinerUptime(scopedCtx(), &miningv1.GetMinerUptimeRequest{Id: minerB.GetId(), From: from, To: to})
			wantCode(t, err, codes.NotFound, errcode.NotFound)
		},
		"GetUptime": func(t *testing.T) {
			for filter, want := range map[string]int64{"": 1, customerB: 0} {
				resp, err := as().GetUptime(scopedCtx(), &miningv1.GetUptimeRequest{CustomerId: filter, From: from, To: to, IncludeMiners: true})
				if err != nil || resp.GetMinerCount() != want {
					t.Fatalf("filter %q: %v %v, want %d miners", filter, resp, err, want)
				}
			}
		},
		"SetDowntimeCause": func(t *testing.T) {
			_, err := as().SetDowntimeCause(scopedCtx(), &miningv1.SetDowntimeCauseRequest{
				Target: &miningv1.SetDowntimeCauseRequest_MinerId{MinerId: minerB.GetId()},
				Cause:  miningv1.DowntimeCause_DOWNTIME_CAUSE_CLIENT_REQUEST, StartTime: from, EndTime: to})
			wantCode(t, err, codes.NotFound, errcode.NotFound)
			_, err = as().SetDowntimeCause(scopedCtx(), &miningv1.SetDowntimeCauseRequest{
				Target: &miningv1.SetDowntimeCauseRequest_Site{Site: "site-b"},
				Cause:  miningv1.DowntimeCause_DOWNTIME_CAUSE_CLIENT_REQUEST, StartTime: from, EndTime: to})
			wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		},
		"ListDowntimeCauses": func(t *testing.T) {
			resp, err := as().ListDowntimeCauses(scopedCtx(), &miningv1.ListDowntimeCausesRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.GetRecords() {
				if r.GetMinerId() == minerB.GetId() || r.GetSite() == "site-b" {
					t.Fatalf("lists B's record %v", r)
				}
			}
			resp, err = as().ListDowntimeCauses(scopedCtx(), &miningv1.ListDowntimeCausesRequest{MinerId: minerB.GetId()})
			if err == nil && len(resp.GetRecords()) > 0 {
				t.Fatalf("lists B's records by miner id: %v", resp.GetRecords())
			}
		},
		"UploadCollectorBatch": func(t *testing.T) {
			body := telGzip(t, []telRecord{telFlat("TEN-B", now.Add(-time.Minute), 100000)})
			_, err := as().UploadCollectorBatch(telAsCollector(m, "site-a"), &miningv1.UploadCollectorBatchRequest{
				SiteId: "site-b", ContentEncoding: "gzip", Body: body})
			wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
			_, err = as().UploadCollectorBatch(scopedCtx(), &miningv1.UploadCollectorBatchRequest{
				SiteId: "site-b", ContentEncoding: "gzip", Body: body})
			wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
			if n := telSampleCount(t, m, "site-b"); n != 0 {
				t.Fatalf("%d samples stored for site-b", n)
			}
		},
		"RecordTelemetry": func(t *testing.T) {
			stream, err := as().RecordTelemetry(telAsCollector(m, "site-a"))
			if err != nil {
				t.Fatal(err)
			}
			_ = stream.Send(&miningv1.RecordTelemetryRequest{SiteId: "site-b", Samples: []*miningv1.TelemetrySample{{
				MinerId: "TEN-B", ObserveTime: timestamppb.New(now.Add(-time.Minute)), Online: true, HashrateGhs: 100000}}})
			_, err = stream.CloseAndRecv()
			wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
			if n := telSampleCount(t, m, "site-b"); n != 0 {
				t.Fatalf("%d samples stored for site-b", n)
			}
		},
	}

	// The table must name every RPC of the service.
	sd := miningv1.MiningService_ServiceDesc
	for _, md := range sd.Methods {
		if tests[md.MethodName] == nil {
			t.Errorf("no tenancy case for %s", md.MethodName)
		}
	}
	for _, st := range sd.Streams {
		if tests[st.StreamName] == nil {
			t.Errorf("no tenancy case for %s", st.StreamName)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(tests)) {
		t.Run(name, tests[name])
	}
}
