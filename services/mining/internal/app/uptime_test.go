package app_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hashinsight/platform/pkg/errcode"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

// Short names for the causes.
const (
	causeHost   = miningv1.DowntimeCause_DOWNTIME_CAUSE_HOST_FAULT
	causeCurt   = miningv1.DowntimeCause_DOWNTIME_CAUSE_CURTAILMENT
	causeMaint  = miningv1.DowntimeCause_DOWNTIME_CAUSE_MAINTENANCE
	causeClient = miningv1.DowntimeCause_DOWNTIME_CAUSE_CLIENT_REQUEST
	causeNone   = miningv1.DowntimeCause_DOWNTIME_CAUSE_UNSPECIFIED
)

// upt0 is the start of the recorded sequence: window W0 of the hour under test.
var upt0 = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

func uptAt(minutes float64) time.Time {
	return upt0.Add(time.Duration(minutes * float64(time.Minute)))
}

// uptUpload records samples (minutes after upt0 → hashrate GH/s) of collector miner id at site.
func uptUpload(t *testing.T, m *mesh, site, id string, samples map[float64]float64) {
	t.Helper()
	var recs []telRecord
	for min, h := range samples {
		recs = append(recs, telFlat(id, uptAt(min), h))
	}
	if _, err := m.op.UploadCollectorBatch(m.ctx(), &miningv1.UploadCollectorBatchRequest{
		SiteId: site, ContentEncoding: "gzip", Body: telGzip(t, recs),
	}); err != nil {
		t.Fatal(err)
	}
}

func uptStats(total, up, host, curt, maint, client int64, pct, sla string) *miningv1.UptimeStats {
	return &miningv1.UptimeStats{
		TotalWindows: total, UpWindows: up, HostFaultWindows: host, CurtailmentWindows: curt,
		MaintenanceWindows: maint, ClientRequestWindows: client, UptimePercent: pct, SlaUptimePercent: sla,
	}
}

func uptWantStats(t *testing.T, what string, got, want *miningv1.UptimeStats) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func TestUptime(t *testing.T) {
	m := startMining(t, nil)
	const site = "site-u"
	u1 := telMiner(t, m, "u-01", "U-01", site, customerA, upt0)
	u2 := telMiner(t, m, "u-02", "U-02", site, customerA, upt0) // never reports: every window down
	// The recorded sequence of u1 over 00:00–01:00 (windows W0…W11):
	//   W0 up · W1 down (hashrate 0) · W2 no sample · W3 up (0 then 50) · W4 up · W5–W7 no sample
	//   · W8 up · W9 up (two samples) · W10 no sample · W11 down (hashrate 0)
	uptUpload(t, m, site, "U-01", map[float64]float64{
		1: 100_000, 6: 0, 15.5: 0, 18: 50, 20: 90_000, 40: 100_000, 45: 100_000, 49.99: 110_000, 55: 0,
	})
	period := func(id string, windows bool) *miningv1.GetMinerUptimeRequest {
		return &miningv1.GetMinerUptimeRequest{Id: id, From: timestamppb.New(upt0), To: timestamppb.New(uptAt(60)), IncludeWindows: windows}
	}

	t.Run("windows from the recorded sequence", func(t *testing.T) {
		resp, err := m.gw.GetMinerUptime(m.as(admin()), period(u1, false))
		if err != nil {
			t.Fatal(err)
		}
		// 5 up of 12; the 7 down windows are host faults.
		uptWantStats(t, "u1", resp.GetUptime().GetStats(), uptStats(12, 5, 7, 0, 0, 0, "41.6666", "41.6666"))
	})

	set := func(req *miningv1.SetDowntimeCauseRequest) *miningv1.SetDowntimeCauseResponse {
		t.Helper()
		resp, err := m.gw.SetDowntimeCause(m.as(admin()), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	rng := func(from, to float64) (*timestamppb.Timestamp, *timestamppb.Timestamp) {
		return timestamppb.New(uptAt(from)), timestamppb.New(uptAt(to))
	}
	t.Run("causes: site and miner records, later wins", func(t *testing.T) {
		s, e := rng(25, 40) // W5–W7 of every miner of the site
		if r := set(&miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_Site{Site: site}, Cause: causeCurt, StartTime: s, EndTime: e, Note: "demand response"}); r.GetAffectedWindows() != 6 || r.GetRecord().GetSite() != site || r.GetRecord().GetCreatedByUserId() != admin().Subject {
			t.Errorf("site record: %v", r)
		}
		s, e = rng(5, 15) // W1–W2
		if r := set(&miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_MinerId{MinerId: u1}, Cause: causeMaint, StartTime: s, EndTime: e}); r.GetAffectedWindows() != 2 {
			t.Errorf("maintenance: %v", r)
		}
		s, e = rng(30, 35) // W6: later than the site record
		if r := set(&miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_MinerId{MinerId: u1}, Cause: causeClient, StartTime: s, EndTime: e}); r.GetAffectedWindows() != 1 {
			t.Errorf("client request: %v", r)
		}
		s, e = rng(10, 12) // W2 (overlap, not aligned): back to host fault
		if r := set(&miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_MinerId{MinerId: u1}, Cause: causeHost, StartTime: s, EndTime: e}); r.GetAffectedWindows() != 1 {
			t.Errorf("host fault: %v", r)
		}

		resp, err := m.gw.GetMinerUptime(m.as(admin()), period(u1, true))
		if err != nil {
			t.Fatal(err)
		}
		// Down: W1 maintenance, W2 host fault, W5 curtailment, W6 client request, W7
		// curtailment, W10 and W11 host faults. SLA: 5 / (5 + 3).
		uptWantStats(t, "u1", resp.GetUptime().GetStats(), uptStats(12, 5, 3, 2, 1, 1, "41.6666", "62.5000"))
		type w struct {
			up    bool
			cause miningv1.DowntimeCause
		}
		want := []w{{true, causeNone}, {false, causeMaint}, {false, causeHost}, {true, causeNone}, {true, causeNone},
			{false, causeCurt}, {false, causeClient}, {false, causeCurt}, {true, causeNone}, {true, causeNone},
			{false, causeHost}, {false, causeHost}}
		got := resp.GetUptime().GetWindows()
		if len(got) != len(want) {
			t.Fatalf("%d windows, want %d", len(got), len(want))
		}
		for i, g := range got {
			if g.GetUp() != want[i].up || g.GetCause() != want[i].cause || !g.GetStartTime().AsTime().Equal(uptAt(float64(5*i))) {
				t.Errorf("W%d: %v, want %+v", i, g, want[i])
			}
		}
		if avg := got[9].GetAvgHashrateTh(); avg != 105 {
			t.Errorf("W9 average %v TH/s, want 105", avg)
		}

		// u2: 12 down windows, W5–W7 curtailed by the site record.
		resp, err = m.gw.GetMinerUptime(m.as(client(customerA)), period(u2, false))
		if err != nil {
			t.Fatal(err)
		}
		uptWantStats(t, "u2", resp.GetUptime().GetStats(), uptStats(12, 0, 9, 3, 0, 0, "0.0000", "0.0000"))
	})

	// The counted period: from the later of `from` and the start of service (the earlier of
	// creation and the first telemetry window) to the earlier of `to` and the current window.
	const site2 = "site-p"
	late := telMiner(t, m, "p-01", "", site2, customerB, uptAt(22))         // created in W4
	replay := telMiner(t, m, "p-02", "", site2, customerB, uptAt(60*24*30)) // created a month later,
	uptUpload(t, m, site2, "p-02", map[float64]float64{31: 1})              // but reported in W6
	t.Run("counted period", func(t *testing.T) {
		resp, err := m.gw.GetMinerUptime(m.as(admin()), period(late, false))
		if err != nil {
			t.Fatal(err)
		}
		uptWantStats(t, "created in W4", resp.GetUptime().GetStats(), uptStats(8, 0, 8, 0, 0, 0, "0.0000", "0.0000"))
		resp, err = m.gw.GetMinerUptime(m.as(admin()), period(replay, false))
		if err != nil {
			t.Fatal(err)
		}
		uptWantStats(t, "first telemetry in W6", resp.GetUptime().GetStats(), uptStats(6, 1, 5, 0, 0, 0, "16.6666", "16.6666"))
		// A period in the future counts nothing yet.
		resp, err = m.gw.GetMinerUptime(m.as(admin()), &miningv1.GetMinerUptimeRequest{
			Id: late, From: timestamppb.New(time.Now().Add(time.Hour)), To: timestamppb.New(time.Now().Add(2 * time.Hour)),
		})
		if err != nil {
			t.Fatal(err)
		}
		uptWantStats(t, "future", resp.GetUptime().GetStats(), uptStats(0, 0, 0, 0, 0, 0, "100.0000", "100.0000"))
	})

	t.Run("fleet, customer and site totals", func(t *testing.T) {
		req := &miningv1.GetUptimeRequest{CustomerId: customerA, From: timestamppb.New(upt0), To: timestamppb.New(uptAt(60)), IncludeMiners: true, PageSize: 1}
		resp, err := m.gw.GetUptime(m.as(admin()), req)
		if err != nil {
			t.Fatal(err)
		}
		// u1 + u2: 24 windows, 5 up, host faults 3 + 9, curtailment 2 + 3, maintenance 1, client 1.
		uptWantStats(t, "customer A", resp.GetTotal(), uptStats(24, 5, 12, 5, 1, 1, "20.8333", "29.4117"))
		if resp.GetMinerCount() != 2 || len(resp.GetMiners()) != 1 || resp.GetNextPageToken() == "" {
			t.Fatalf("first page: %d miners, %d listed, token %q", resp.GetMinerCount(), len(resp.GetMiners()), resp.GetNextPageToken())
		}
		first := resp.GetMiners()[0].GetMinerId()
		req.PageToken = resp.GetNextPageToken()
		resp, err = m.gw.GetUptime(m.as(admin()), req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetMiners()) != 1 || resp.GetMiners()[0].GetMinerId() == first || resp.GetNextPageToken() != "" {
			t.Errorf("second page: %v", resp.GetMiners())
		}

		resp, err = m.gw.GetUptime(m.as(admin()), &miningv1.GetUptimeRequest{Site: site2, From: timestamppb.New(upt0), To: timestamppb.New(uptAt(60))})
		if err != nil || resp.GetMinerCount() != 2 {
			t.Fatalf("site: %v %v", resp, err)
		}
		uptWantStats(t, "site-p", resp.GetTotal(), uptStats(14, 1, 13, 0, 0, 0, "7.1428", "7.1428"))

		// A client sees its own customer only; another customer's filter answers empty.
		resp, err = m.gw.GetUptime(m.as(client(customerB)), &miningv1.GetUptimeRequest{From: timestamppb.New(upt0), To: timestamppb.New(uptAt(60))})
		if err != nil || resp.GetMinerCount() != 2 {
			t.Fatalf("client B: %v %v", resp, err)
		}
		resp, err = m.gw.GetUptime(m.as(client(customerB)), &miningv1.GetUptimeRequest{CustomerId: customerA, From: timestamppb.New(upt0), To: timestamppb.New(uptAt(60))})
		if err != nil || resp.GetMinerCount() != 0 || resp.GetTotal().GetSlaUptimePercent() != "100.0000" {
			t.Fatalf("client B asking for A: %v %v", resp, err)
		}
	})

	t.Run("whole days from the day rollup", func(t *testing.T) {
		const site3 = "site-d"
		days := telMiner(t, m, "d-01", "", site3, "", uptAt(-60*24*12)) // unassigned, created 12 days before
		// Minutes relative to upt0 (2026-02-01 00:00): the last 10 minutes of 30 Jan, the whole
		// of 31 Jan, the first 10 minutes of 1 Feb.
		const jan31 = -24 * 60
		samples := map[float64]float64{
			jan31 - 8: 100, jan31 - 3: 0, // 30 Jan 23:50 up, 23:55 down
			jan31: 100, jan31 + 1: 100, jan31 + 720: 100, jan31 + 1435: 100, // 31 Jan: 3 up windows
			3: 100, 6: 100, // 1 Feb 00:00 and 00:05 up
		}
		uptUpload(t, m, site3, "d-01", samples)
		req := &miningv1.GetMinerUptimeRequest{Id: days, From: timestamppb.New(uptAt(jan31 - 10)), To: timestamppb.New(uptAt(10))}
		want := func(up int64, pct string) {
			t.Helper()
			resp, err := m.gw.GetMinerUptime(m.as(admin()), req)
			if err != nil {
				t.Fatal(err)
			}
			// 2 + 288 + 2 windows.
			uptWantStats(t, "d-01", resp.GetUptime().GetStats(), uptStats(292, up, 292-up, 0, 0, 0, pct, pct))
		}
		want(6, "2.0547")
		uptUpload(t, m, site3, "d-01", samples)                              // a replay counts nothing twice
		uptUpload(t, m, site3, "d-01", map[float64]float64{jan31 + 721: 50}) // a window already up
		want(6, "2.0547")
		uptUpload(t, m, site3, "d-01", map[float64]float64{jan31 - 2: 5}) // the down window comes up
		want(7, "2.3972")
	})

	t.Run("tenancy", func(t *testing.T) {
		_, err := m.gw.GetMinerUptime(m.as(client(customerB)), period(u1, false))
		wantCode(t, err, codes.NotFound, errcode.NotFound)
		s, e := rng(0, 5)
		_, err = m.gw.SetDowntimeCause(m.as(broker(customerA)), &miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_Site{Site: site}, Cause: causeCurt, StartTime: s, EndTime: e})
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		_, err = m.gw.SetDowntimeCause(m.as(broker(customerB)), &miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_MinerId{MinerId: u1}, Cause: causeCurt, StartTime: s, EndTime: e})
		wantCode(t, err, codes.NotFound, errcode.NotFound)
	})

	t.Run("list", func(t *testing.T) {
		req := &miningv1.ListDowntimeCausesRequest{MinerId: u1, PageSize: 3}
		resp, err := m.gw.ListDowntimeCauses(m.as(admin()), req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetRecords()) != 3 || resp.GetNextPageToken() == "" || resp.GetRecords()[0].GetSite() != site || resp.GetRecords()[1].GetCause() != causeMaint {
			t.Fatalf("first page %v", resp)
		}
		req.PageToken = resp.GetNextPageToken()
		resp, err = m.gw.ListDowntimeCauses(m.as(admin()), req)
		if err != nil || len(resp.GetRecords()) != 1 || resp.GetRecords()[0].GetCause() != causeHost || resp.GetNextPageToken() != "" {
			t.Fatalf("second page %v %v", resp, err)
		}
		for _, tc := range []struct {
			name string
			req  *miningv1.ListDowntimeCausesRequest
			as   *miningv1.ListDowntimeCausesRequest
			who  string
			want int
		}{
			{"client of the site's customer sees all", &miningv1.ListDowntimeCausesRequest{}, nil, "A", 4},
			{"another customer's client sees none", &miningv1.ListDowntimeCausesRequest{}, nil, "B", 0},
			{"time filter", &miningv1.ListDowntimeCausesRequest{From: timestamppb.New(uptAt(29)), To: timestamppb.New(uptAt(31))}, nil, "admin", 2},
			{"site filter", &miningv1.ListDowntimeCausesRequest{Site: site2}, nil, "admin", 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := m.as(admin())
				switch tc.who {
				case "A":
					ctx = m.as(client(customerA))
				case "B":
					ctx = m.as(client(customerB))
				}
				resp, err := m.gw.ListDowntimeCauses(ctx, tc.req)
				if err != nil || len(resp.GetRecords()) != tc.want {
					t.Errorf("%d records (%v), want %d", len(resp.GetRecords()), err, tc.want)
				}
			})
		}
	})

	t.Run("bad input", func(t *testing.T) {
		s, e := rng(0, 5)
		year := timestamppb.New(uptAt(60 * 24 * 367))
		tests := []struct {
			name  string
			req   *miningv1.SetDowntimeCauseRequest
			code  codes.Code
			ec    errcode.Code
			field string
		}{
			{"no target", &miningv1.SetDowntimeCauseRequest{Cause: causeCurt, StartTime: s, EndTime: e}, codes.InvalidArgument, errcode.Validation, ""},
			{"bad miner id", &miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_MinerId{MinerId: "u-01"}, Cause: causeCurt, StartTime: s, EndTime: e}, codes.InvalidArgument, errcode.Validation, "miner_id"},
			{"unknown miner", &miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_MinerId{MinerId: "00000000-0000-4000-8000-0000000000ff"}, Cause: causeCurt, StartTime: s, EndTime: e}, codes.NotFound, errcode.NotFound, ""},
			{"no cause", &miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_MinerId{MinerId: u1}, StartTime: s, EndTime: e}, codes.InvalidArgument, errcode.Validation, "cause"},
			{"undefined cause", &miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_MinerId{MinerId: u1}, Cause: 99, StartTime: s, EndTime: e}, codes.InvalidArgument, errcode.Validation, "cause"},
			{"no start", &miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_MinerId{MinerId: u1}, Cause: causeCurt, EndTime: e}, codes.InvalidArgument, errcode.Validation, "start_time"},
			{"end before start", &miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_MinerId{MinerId: u1}, Cause: causeCurt, StartTime: e, EndTime: s}, codes.InvalidArgument, errcode.Validation, ""},
			{"longer than 366 days", &miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_MinerId{MinerId: u1}, Cause: causeCurt, StartTime: s, EndTime: year}, codes.InvalidArgument, errcode.Validation, ""},
			{"empty site", &miningv1.SetDowntimeCauseRequest{Target: &miningv1.SetDowntimeCauseRequest_Site{Site: ""}, Cause: causeCurt, StartTime: s, EndTime: e}, codes.InvalidArgument, errcode.Validation, "site"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := m.gw.SetDowntimeCause(m.as(admin()), tc.req)
				wantCode(t, err, tc.code, tc.ec)
				if tc.field != "" {
					wantField(t, err, tc.code, tc.field)
				}
			})
		}
		_, err := m.gw.GetMinerUptime(m.as(admin()), &miningv1.GetMinerUptimeRequest{Id: u1, From: timestamppb.New(uptAt(60)), To: timestamppb.New(upt0)})
		wantCode(t, err, codes.InvalidArgument, errcode.Validation)
		_, err = m.gw.GetUptime(m.as(admin()), &miningv1.GetUptimeRequest{From: timestamppb.New(upt0), To: timestamppb.New(uptAt(60)), IncludeMiners: true, PageToken: "garbage"})
		wantCode(t, err, codes.InvalidArgument, errcode.Validation)
		var n int
		if err := m.h.Runtime.DB.QueryRow(m.ctx(), `SELECT count(*) FROM downtime_causes`).Scan(&n); err != nil || n != 4 {
			t.Errorf("%d records after refusals (%v), want 4", n, err)
		}
	})
}
