package app_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hashinsight/platform/pkg/errcode"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

// telMiner inserts a miner row directly (the telemetry and uptime tests do not depend on the
// inventory RPCs) and returns its id.
func telMiner(t testing.TB, m *mesh, name, serial, site, customer string, created time.Time) string {
	t.Helper()
	var serialArg, customerArg any
	if serial != "" {
		serialArg = serial
	}
	if customer != "" {
		customerArg = customer
	}
	var id string
	err := m.h.Runtime.DB.QueryRow(m.ctx(), `
		INSERT INTO miners (name, model_id, serial, site, customer_id, hashrate_th, power_w, efficiency_j_per_th, created_at)
		VALUES ($1, (SELECT id FROM miner_models ORDER BY model LIMIT 1), $2, $3, $4, 110, 3250, 29.55, $5)
		RETURNING id::text`, name, serialArg, site, customerArg, created).Scan(&id)
	if err != nil {
		t.Fatalf("insert miner %s: %v", name, err)
	}
	return id
}

// telRecord is one record of a collector upload, as the collector writes it.
type telRecord map[string]any

func telFlat(minerID string, ts time.Time, hashrateGHs float64) telRecord {
	return telRecord{
		"miner_id": minerID, "miner_key": "10.0.0.1:4028",
		// The collector's naive UTC form: no offset, fraction absent when zero.
		"timestamp": ts.UTC().Format("2006-01-02T15:04:05.999999"),
		"online":    hashrateGHs > 0, "hashrate_ghs": hashrateGHs, "hashrate_5s_ghs": hashrateGHs,
		"temperature_avg": 65, "temperature_max": 71.5, "temperature_chips": []float64{60, 61},
		"fan_speeds": []int{5400, 5460}, "frequency_avg": 525, "accepted_shares": 10,
		"rejected_shares": 0, "hardware_errors": 0, "uptime_seconds": 3600, "power_consumption": 0,
		"efficiency": 0, "pool_url": "stratum+tcp://pool.example:3333", "worker_name": "acct.w1",
		"firmware_version": "2024.1", "error_type": "", "error_message": "",
	}
}

func telGzip(t testing.TB, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(raw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// telAsCollector is a call context carrying a collector token of site, as the gateway forwards it.
func telAsCollector(m *mesh, site string) context.Context {
	tok := m.auth.CollectorToken(m.t, site)
	return metadata.NewOutgoingContext(m.ctx(), metadata.Pairs("authorization", "Bearer "+tok))
}

// telSampleCount counts the stored samples of site.
func telSampleCount(t testing.TB, m *mesh, site string) int {
	t.Helper()
	var n int
	if err := m.h.Runtime.DB.QueryRow(m.ctx(), `SELECT count(*) FROM telemetry_samples WHERE site = $1`, site).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCollectorUpload(t *testing.T) {
	m := startMining(t, nil)
	const site = "site-a"
	serialMiner := telMiner(t, m, "rack1-01", "SN-0001", site, customerA, time.Now())
	nameMiner := telMiner(t, m, "rack1-02", "", site, customerA, time.Now())
	telMiner(t, m, "rack9-01", "SN-OTHER-SITE", "site-b", customerA, time.Now())
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	records := []telRecord{
		telFlat("SN-0001", t0, 110_000),
		telFlat("rack1-02", t0.Add(1500*time.Millisecond), 0),
		telFlat("SN-OTHER-SITE", t0, 95_000), // another site's serial: unknown here
		telFlat("ghost-7", t0, 1),
	}
	body := telGzip(t, records)
	req := &miningv1.UploadCollectorBatchRequest{
		SiteId: site, DeviceId: "edge-1", UploadMode: miningv1.UploadMode_UPLOAD_MODE_RAW,
		ContentEncoding: "gzip", Body: body,
	}

	t.Run("stores, matches and reports unknown ids", func(t *testing.T) {
		resp, err := m.gw.UploadCollectorBatch(telAsCollector(m, site), req)
		if err != nil {
			t.Fatal(err)
		}
		if !resp.GetSuccess() || resp.GetReceived() != 4 || resp.GetOnline() != 3 || resp.GetStored() != 4 ||
			resp.GetDuplicates() != 0 || resp.GetSiteId() != site || resp.GetIngestedAt() == nil {
			t.Fatalf("response %v", resp)
		}
		if !slices.Equal(resp.GetUnknownMinerIds(), []string{"SN-OTHER-SITE", "ghost-7"}) {
			t.Errorf("unknown ids %v", resp.GetUnknownMinerIds())
		}
		got := map[string]string{}
		rows, err := m.h.Runtime.DB.Query(m.ctx(), `SELECT collector_miner_id, COALESCE(miner_id::text, '') FROM telemetry_samples WHERE site = $1`, site)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			got[k] = v
		}
		want := map[string]string{"SN-0001": serialMiner, "rack1-02": nameMiner, "SN-OTHER-SITE": "", "ghost-7": ""}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("stored %v, want %v", got, want)
		}
		var seen *time.Time
		if err := m.h.Runtime.DB.QueryRow(m.ctx(), `SELECT last_seen_at FROM miners WHERE id = $1`, serialMiner).Scan(&seen); err != nil || seen == nil || !seen.Equal(t0) {
			t.Errorf("last_seen_at %v (%v), want %v", seen, err, t0)
		}
	})

	t.Run("replay is idempotent", func(t *testing.T) {
		resp, err := m.gw.UploadCollectorBatch(telAsCollector(m, site), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetReceived() != 4 || resp.GetStored() != 0 || resp.GetDuplicates() != 4 {
			t.Fatalf("replay %v", resp)
		}
		if n := telSampleCount(t, m, site); n != 4 {
			t.Errorf("%d samples after replay, want 4", n)
		}
		var samples int
		if err := m.h.Runtime.DB.QueryRow(m.ctx(), `SELECT samples FROM uptime_windows WHERE miner_id = $1`, serialMiner).Scan(&samples); err != nil || samples != 1 {
			t.Errorf("window samples %d (%v), want 1 after a replay", samples, err)
		}
	})

	t.Run("latest mode keeps pool_url and worker_name", func(t *testing.T) {
		rec := telFlat("SN-0001", t0.Add(time.Minute), 111_000)
		rec["pool_url"], rec["worker_name"] = "", ""
		_, err := m.gw.UploadCollectorBatch(telAsCollector(m, site), &miningv1.UploadCollectorBatchRequest{
			SiteId: site, UploadMode: miningv1.UploadMode_UPLOAD_MODE_LATEST, ContentEncoding: "gzip",
			Body: telGzip(t, []telRecord{rec}),
		})
		if err != nil {
			t.Fatal(err)
		}
		var pool, worker string
		var hashrate float64
		if err := m.h.Runtime.DB.QueryRow(m.ctx(), `SELECT pool_url, worker_name, hashrate_ghs FROM telemetry_latest
			WHERE site = $1 AND collector_miner_id = 'SN-0001'`, site).Scan(&pool, &worker, &hashrate); err != nil {
			t.Fatal(err)
		}
		if pool != "stratum+tcp://pool.example:3333" || worker != "acct.w1" || hashrate != 111_000 {
			t.Errorf("latest state pool %q worker %q hashrate %v", pool, worker, hashrate)
		}
	})

	t.Run("empty array", func(t *testing.T) {
		resp, err := m.gw.UploadCollectorBatch(telAsCollector(m, site), &miningv1.UploadCollectorBatchRequest{
			SiteId: site, ContentEncoding: "gzip", Body: telGzip(t, []telRecord{}),
		})
		if err != nil || !resp.GetSuccess() || resp.GetReceived() != 0 {
			t.Fatalf("%v %v", resp, err)
		}
	})

	t.Run("refusals store nothing", func(t *testing.T) {
		before := telSampleCount(t, m, site)
		var tooMany []telRecord // DESIGN's default limit is 1,000 records a request
		for i := range 1001 {
			tooMany = append(tooMany, telFlat("SN-0001", t0.Add(time.Duration(i)*time.Second), 1))
		}
		good := telGzip(t, []telRecord{telFlat("SN-0001", t0.Add(time.Hour), 1)})
		badRecord := telGzip(t, []any{telFlat("SN-0001", t0.Add(2*time.Hour), 1), telRecord{"miner_id": "x", "timestamp": "soon"}})
		tests := []struct {
			name  string
			ctx   context.Context
			req   *miningv1.UploadCollectorBatchRequest
			code  codes.Code
			ec    errcode.Code
			field string
		}{
			{"bad gzip", telAsCollector(m, site), &miningv1.UploadCollectorBatchRequest{SiteId: site, ContentEncoding: "gzip", Body: []byte("[]")}, codes.InvalidArgument, errcode.Validation, "body"},
			{"not an array", telAsCollector(m, site), &miningv1.UploadCollectorBatchRequest{SiteId: site, ContentEncoding: "gzip", Body: telGzip(t, telRecord{"miner_id": "a"})}, codes.InvalidArgument, errcode.Validation, "body"},
			{"not JSON", telAsCollector(m, site), &miningv1.UploadCollectorBatchRequest{SiteId: site, Body: []byte("miner_id=1")}, codes.InvalidArgument, errcode.Validation, "body"},
			{"one bad record", telAsCollector(m, site), &miningv1.UploadCollectorBatchRequest{SiteId: site, ContentEncoding: "gzip", Body: badRecord}, codes.InvalidArgument, errcode.Validation, "body[1].timestamp"},
			{"more than 1,000 records", telAsCollector(m, site), &miningv1.UploadCollectorBatchRequest{SiteId: site, ContentEncoding: "gzip", Body: telGzip(t, tooMany)}, codes.InvalidArgument, errcode.Validation, "body"},
			{"missing site", telAsCollector(m, site), &miningv1.UploadCollectorBatchRequest{ContentEncoding: "gzip", Body: good}, codes.InvalidArgument, errcode.Validation, "site_id"},
			{"token of another site", telAsCollector(m, "site-b"), &miningv1.UploadCollectorBatchRequest{SiteId: site, ContentEncoding: "gzip", Body: good}, codes.PermissionDenied, errcode.AuthForbidden, ""},
			{"client user", m.as(client(customerA)), &miningv1.UploadCollectorBatchRequest{SiteId: site, ContentEncoding: "gzip", Body: good}, codes.PermissionDenied, errcode.AuthForbidden, ""},
			{"no credential", m.ctx(), &miningv1.UploadCollectorBatchRequest{SiteId: site, ContentEncoding: "gzip", Body: good}, codes.Unauthenticated, errcode.AuthRequired, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := m.gw.UploadCollectorBatch(tc.ctx, tc.req)
				wantCode(t, err, tc.code, tc.ec)
				if tc.field != "" {
					wantField(t, err, tc.code, tc.field)
				}
			})
		}
		if n := telSampleCount(t, m, site); n != before {
			t.Errorf("%d samples after refusals, want %d", n, before)
		}
	})

	t.Run("concurrent replays store once", func(t *testing.T) {
		var recs []telRecord
		for i := range 300 {
			recs = append(recs, telFlat([]string{"SN-0001", "rack1-02", "ghost-7"}[i%3], t0.Add(3*time.Hour+time.Duration(i)*time.Second), 5))
		}
		body := telGzip(t, recs)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var stored, dups int64
		for range 4 {
			wg.Go(func() {
				resp, err := m.gw.UploadCollectorBatch(telAsCollector(m, site), &miningv1.UploadCollectorBatchRequest{SiteId: site, ContentEncoding: "gzip", Body: body})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				stored += resp.GetStored()
				dups += resp.GetDuplicates()
			})
		}
		wg.Wait()
		if stored != 300 || dups != 900 {
			t.Errorf("stored %d, duplicates %d; want 300 and 900", stored, dups)
		}
		var upWindows, dayTotal int
		if err := m.h.Runtime.DB.QueryRow(m.ctx(), `SELECT (SELECT count(*) FROM uptime_windows WHERE max_hashrate_ghs > 0),
			(SELECT COALESCE(sum(up_windows), 0) FROM uptime_days)`).Scan(&upWindows, &dayTotal); err != nil || upWindows != dayTotal {
			t.Errorf("%d up windows but %d in the day rollup (%v)", upWindows, dayTotal, err)
		}
	})

	t.Run("a clock far off is stored, in the default partition", func(t *testing.T) {
		resp, err := m.gw.UploadCollectorBatch(telAsCollector(m, site), &miningv1.UploadCollectorBatchRequest{
			SiteId: site, Body: []byte(`[{"miner_id":"SN-0001","timestamp":"2003-01-01T00:00:00","hashrate_ghs":1}]`),
		})
		if err != nil || resp.GetStored() != 1 {
			t.Fatalf("%v %v", resp, err)
		}
		var n int
		if err := m.h.Runtime.DB.QueryRow(m.ctx(), `SELECT count(*) FROM telemetry_samples_default WHERE site = $1`, site).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d samples in the default partition (%v), want 1", n, err)
		}
		var parts int
		if err := m.h.Runtime.DB.QueryRow(m.ctx(), `SELECT count(*) FROM pg_inherits WHERE inhparent = 'telemetry_samples'::regclass
			AND inhrelid::regclass::text = 'telemetry_samples_2026m03'`).Scan(&parts); err != nil || parts != 1 {
			t.Errorf("the month of the samples has %d partitions (%v), want 1 made on demand", parts, err)
		}
	})

	t.Run("operator may upload for any site", func(t *testing.T) {
		resp, err := m.op.UploadCollectorBatch(m.ctx(), &miningv1.UploadCollectorBatchRequest{
			SiteId: "site-b", Body: []byte(`[{"miner_id":"SN-OTHER-SITE","timestamp":"2026-03-10T12:00:00"}]`),
		})
		if err != nil || resp.GetStored() != 1 || len(resp.GetUnknownMinerIds()) != 0 {
			t.Fatalf("%v %v", resp, err)
		}
	})
}

func TestCollectorUploadLargeBatch(t *testing.T) {
	// One upload of 2,000 snapshots: above DESIGN's default per-request limit, so the service
	// is configured for it (COLLECTOR_MAX_RECORDS).
	m := startMining(t, map[string]string{"COLLECTOR_MAX_RECORDS": "2000"})
	const site, miners, perMiner = "site-big", 400, 5 // 2,000 snapshots
	for i := range miners {
		telMiner(t, m, fmt.Sprintf("big-%03d", i), fmt.Sprintf("BIG-%03d", i), site, "", time.Now())
	}
	t0 := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	var records []telRecord
	for j := range perMiner {
		for i := range miners {
			records = append(records, telFlat(fmt.Sprintf("BIG-%03d", i), t0.Add(time.Duration(j)*5*time.Minute), float64(100_000+i)))
		}
	}
	resp, err := m.gw.UploadCollectorBatch(telAsCollector(m, site), &miningv1.UploadCollectorBatchRequest{
		SiteId: site, ContentEncoding: "gzip", Body: telGzip(t, records),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetReceived() != 2000 || resp.GetStored() != 2000 || len(resp.GetUnknownMinerIds()) != 0 {
		t.Fatalf("response %v", resp)
	}
	var n, matched, windows int
	var sum float64
	if err := m.h.Runtime.DB.QueryRow(m.ctx(), `SELECT count(*), count(miner_id), sum(hashrate_ghs) FROM telemetry_samples WHERE site = $1`, site).Scan(&n, &matched, &sum); err != nil {
		t.Fatal(err)
	}
	wantSum := float64(perMiner) * (100_000*miners + miners*(miners-1)/2)
	if n != 2000 || matched != 2000 || sum != wantSum {
		t.Errorf("read back %d samples, %d matched, hashrate sum %v; want 2000, 2000, %v", n, matched, sum, wantSum)
	}
	if err := m.h.Runtime.DB.QueryRow(m.ctx(), `SELECT count(*) FROM uptime_windows`).Scan(&windows); err != nil || windows != 2000 {
		t.Errorf("%d uptime windows (%v), want 2000", windows, err)
	}
	// The month's own partition holds them (created on demand), not the default one.
	var inDefault int
	if err := m.h.Runtime.DB.QueryRow(m.ctx(), `SELECT count(*) FROM telemetry_samples_default`).Scan(&inDefault); err != nil || inDefault != 0 {
		t.Errorf("%d samples in the default partition (%v), want 0", inDefault, err)
	}

	t.Run("more than the configured limit is refused", func(t *testing.T) {
		_, err := m.gw.UploadCollectorBatch(telAsCollector(m, site), &miningv1.UploadCollectorBatchRequest{
			SiteId: site, ContentEncoding: "gzip", Body: telGzip(t, append(records, telFlat("BIG-000", t0.Add(-time.Hour), 1))),
		})
		wantCode(t, err, codes.InvalidArgument, errcode.Validation)
		if n := telSampleCount(t, m, site); n != 2000 {
			t.Errorf("%d samples, want 2000", n)
		}
	})
}

func TestRecordTelemetry(t *testing.T) {
	m := startMining(t, nil)
	const site = "site-s"
	telMiner(t, m, "s-01", "S-01", site, "", time.Now())
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	sample := func(id string, d time.Duration, online bool) *miningv1.TelemetrySample {
		return &miningv1.TelemetrySample{MinerId: id, ObserveTime: timestamppb.New(t0.Add(d)), Online: online, HashrateGhs: 100}
	}
	send := func(ctx context.Context, msgs ...*miningv1.RecordTelemetryRequest) (*miningv1.RecordTelemetryResponse, error) {
		stream, err := m.op.RecordTelemetry(ctx)
		if err != nil {
			return nil, err
		}
		for _, msg := range msgs {
			if err := stream.Send(msg); err != nil && err != io.EOF {
				return nil, err
			}
		}
		return stream.CloseAndRecv()
	}
	msgs := []*miningv1.RecordTelemetryRequest{
		{SiteId: site, Samples: []*miningv1.TelemetrySample{sample("S-01", 0, true), sample("S-01", time.Minute, false)}},
		{SiteId: site, Samples: []*miningv1.TelemetrySample{sample("S-01", 2*time.Minute, true), sample("X-9", 0, true)}},
	}
	resp, err := send(m.ctx(), msgs...)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetReceivedCount() != 4 || resp.GetOnlineCount() != 3 || resp.GetStoredCount() != 4 ||
		resp.GetDuplicateCount() != 0 || !slices.Equal(resp.GetUnknownMinerIds(), []string{"X-9"}) {
		t.Fatalf("response %v", resp)
	}
	resp, err = send(m.ctx(), msgs...)
	if err != nil || resp.GetStoredCount() != 0 || resp.GetDuplicateCount() != 4 {
		t.Fatalf("replay %v %v", resp, err)
	}

	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			name  string
			msg   *miningv1.RecordTelemetryRequest
			field string
		}{
			{"missing site", &miningv1.RecordTelemetryRequest{Samples: []*miningv1.TelemetrySample{sample("S-01", time.Hour, true)}}, "site_id"},
			{"missing miner id", &miningv1.RecordTelemetryRequest{SiteId: site, Samples: []*miningv1.TelemetrySample{sample("", time.Hour, true)}}, "samples[0].miner_id"},
			{"missing time", &miningv1.RecordTelemetryRequest{SiteId: site, Samples: []*miningv1.TelemetrySample{{MinerId: "S-01"}}}, "samples[0].observe_time"},
			{"negative hashrate", &miningv1.RecordTelemetryRequest{SiteId: site, Samples: []*miningv1.TelemetrySample{{MinerId: "S-01", ObserveTime: timestamppb.New(t0), HashrateGhs: -1}}}, "samples[0].hashrate_ghs"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := send(m.ctx(), tc.msg)
				wantCode(t, err, codes.InvalidArgument, errcode.Validation)
				wantField(t, err, codes.InvalidArgument, tc.field)
			})
		}
		if n := telSampleCount(t, m, site); n != 4 {
			t.Errorf("%d samples, want 4", n)
		}
	})

	t.Run("collector token of another site", func(t *testing.T) {
		stream, err := miningv1.NewMiningServiceClient(m.h.Dial(operatorID)).RecordTelemetry(telAsCollector(m, "site-other"))
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(msgs[0])
		_, err = stream.CloseAndRecv()
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
	})
}
