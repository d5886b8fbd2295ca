package e2e_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hashinsight/platform/gateway/internal/e2e"
	"github.com/hashinsight/platform/pkg/authn/apikey"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// colSnapshots returns n collector records (the collector's flat form) for miners
// colMinerID(0…miners-1), polled every 30 s from start.
func colSnapshots(n, miners int, start time.Time) []map[string]any {
	out := make([]map[string]any, 0, n)
	for i := range n {
		ts := start.Add(time.Duration(i/miners) * 30 * time.Second)
		out = append(out, map[string]any{
			"miner_id": colMinerID(i % miners), "miner_key": fmt.Sprintf("10.0.%d.%d:4028", i%miners/250, i%miners%250),
			"timestamp": ts.UTC().Format("2006-01-02T15:04:05.999999"), "online": true,
			"hashrate_ghs": 110_000 + float64(i%7), "hashrate_5s_ghs": 109_876.5, "temperature_avg": 64.5,
			"temperature_max": 71, "temperature_chips": []float64{60, 61, 62}, "fan_speeds": []int{5400, 5460},
			"frequency_avg": 525, "accepted_shares": 1200 + i, "rejected_shares": 2, "hardware_errors": 0,
			"uptime_seconds": 86_400, "power_consumption": 3250, "efficiency": 29.5,
			"pool_url": "stratum+tcp://pool.example:3333", "worker_name": "acct.w1",
			"firmware_version": "2024.1", "error_type": "", "error_message": "",
		})
	}
	return out
}

func colMinerID(i int) string { return fmt.Sprintf("E2E-SN-%05d", i) }

// colGzip compresses v's JSON encoding, or v itself when it is []byte.
func colGzip(t testing.TB, v any) []byte {
	t.Helper()
	raw, ok := v.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(raw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// colToken creates a collector token for site through the real auth service (as an owner would,
// over REST) and returns its secret.
func colToken(t testing.TB, m *e2e.Mesh, ownerToken, site string) string {
	t.Helper()
	resp := m.Do(t, nil, http.MethodPost, "/api/v1/collector-tokens",
		map[string]any{"site_id": site, "name": "edge " + site}, e2e.Bearer(ownerToken))
	if resp.Status != http.StatusOK {
		t.Fatalf("create collector token: %d %s", resp.Status, resp.Body)
	}
	return decodeField(t, resp.Body, "secret")
}

// colHeaders are the headers the collector sends, with its token in both places.
func colHeaders(token, site string) map[string]string {
	return map[string]string{
		"X-Collector-Key": token, "Authorization": "Bearer " + token, "X-Site-ID": site,
		"X-Device-ID": "edge-e2e", "X-Zone-ID": "", "X-Upload-Mode": "raw",
		"Content-Type": "application/octet-stream", "Content-Encoding": "gzip",
	}
}

// colDB connects to the mining service's database.
func colDB(t testing.TB, m *e2e.Mesh) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), m.DatabaseURL["mining"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// colMiners inserts n miners at site whose serials are colMinerID(i), created a day before
// since, and returns their ids in order.
func colMiners(t testing.TB, db *pgx.Conn, site string, n int, since time.Time) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), `
		INSERT INTO miners (name, model_id, serial, site, hashrate_th, power_w, efficiency_j_per_th, created_at)
		SELECT 'e2e-' || i, (SELECT id FROM miner_models ORDER BY model LIMIT 1), format('E2E-SN-%s', lpad(i::text, 5, '0')),
		       $1, 110, 3250, 29.55, $3
		FROM generate_series(0, $2 - 1) AS i ORDER BY i
		RETURNING id::text`, site, n, since.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func colCount(t testing.TB, db *pgx.Conn, site string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM telemetry_samples WHERE site = $1`, site).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCollectorUpload drives POST /api/collector/upload as the HashInsight Remote collector does,
// with a collector token made by the real auth service: refusals (bad token 401, missing site
// 400, bad gzip 400, JSON that is not an array 400, another site's token 403) store nothing; a
// 2,000-snapshot gzip batch is stored, answered as the collector expects and read back.
func TestCollectorUpload(t *testing.T) {
	m := startMesh(t, e2e.Options{
		GatewayEnv: map[string]string{"RATE_LIMIT_REQUESTS_PER_MINUTE": "100000"},
		// One upload of 2,000 snapshots: above DESIGN's default of 1,000 a request.
		ServiceEnv: map[string]string{"COLLECTOR_MAX_RECORDS": "10000"},
	})
	owner := newUser(t, m, authv1.Role_ROLE_OWNER, "")
	const site = "site-e2e-collector"
	token := colToken(t, m, owner.token, site)
	otherSite := colToken(t, m, owner.token, "site-e2e-elsewhere")
	db := colDB(t, m)
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	ids := colMiners(t, db, site, 400, start)
	batch := colGzip(t, colSnapshots(2000, 400, start)) // 5 polls of 400 miners, 30 s apart

	unknown, _, err := apikey.Generate("dev", apikey.KindCollector)
	if err != nil {
		t.Fatal(err)
	}
	with := func(h map[string]string, k, v string) map[string]string {
		c := map[string]string{}
		for kk, vv := range h {
			c[kk] = vv
		}
		if v == "" {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	good := colHeaders(token, site)
	refusals := []struct {
		name   string
		header map[string]string
		body   []byte
		status int
		code   string
	}{
		{"unknown token", colHeaders(unknown, site), batch, 401, "AUTH_001"},
		{"malformed token", colHeaders("hsi_dev_col_nope", site), batch, 401, "AUTH_001"},
		{"no token", with(with(good, "Authorization", ""), "X-Collector-Key", ""), batch, 401, "AUTH_001"},
		{"missing X-Site-ID", with(good, "X-Site-ID", ""), batch, 400, "VALIDATION_001"},
		{"bad gzip", good, []byte(`[{"miner_id":"E2E-SN-00000"}]`), 400, "VALIDATION_001"},
		{"JSON that is not an array", good, colGzip(t, map[string]any{"miner_id": "E2E-SN-00000"}), 400, "VALIDATION_001"},
		{"gzip of something that is not JSON", good, colGzip(t, []byte("miner_id=E2E-SN-00000")), 400, "VALIDATION_001"},
		{"empty body", good, []byte{}, 400, "VALIDATION_001"},
		{"token of another site", colHeaders(otherSite, site), batch, 403, "AUTH_002"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			resp := m.Do(t, nil, http.MethodPost, "/api/collector/upload", tc.body, tc.header)
			if resp.Status != tc.status || resp.Error().Code != tc.code {
				t.Errorf("%d %s, want %d %s", resp.Status, resp.Body, tc.status, tc.code)
			}
			if n := colCount(t, db, site); n != 0 {
				t.Fatalf("%d samples stored by a refused upload", n)
			}
		})
	}

	t.Run("2,000-snapshot gzip batch", func(t *testing.T) {
		resp := m.Do(t, nil, http.MethodPost, "/api/collector/upload", batch, good)
		if resp.Status != http.StatusOK {
			t.Fatalf("%d %s", resp.Status, resp.Body)
		}
		var got struct {
			Success    *bool  `json:"success"`
			Received   int64  `json:"received"`
			Online     int64  `json:"online"`
			SiteID     string `json:"site_id"`
			IngestedAt string `json:"ingested_at"`
			Stored     int64  `json:"stored"`
		}
		if err := json.Unmarshal(resp.Body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Success == nil || !*got.Success || got.Received != 2000 || got.Online != 2000 || got.SiteID != site || got.Stored != 2000 {
			t.Errorf("answer %s", resp.Body)
		}
		if _, err := time.Parse(time.RFC3339Nano, got.IngestedAt); err != nil {
			t.Errorf("ingested_at %q: %v", got.IngestedAt, err)
		}
		// Read back: the rows, and the uptime they make through the REST API.
		var n, matched int
		var shares int64
		if err := db.QueryRow(context.Background(), `SELECT count(*), count(miner_id), sum(accepted_shares) FROM telemetry_samples WHERE site = $1`, site).Scan(&n, &matched, &shares); err != nil {
			t.Fatal(err)
		}
		if wantShares := int64(2000*1200 + 2000*1999/2); n != 2000 || matched != 2000 || shares != wantShares {
			t.Errorf("read back %d samples, %d matched, shares %d; want 2000, 2000, %d", n, matched, shares, wantShares)
		}
		q := url.Values{"from": {start.Format(time.RFC3339)}, "to": {start.Add(time.Hour).Format(time.RFC3339)}}
		up := m.Do(t, nil, http.MethodGet, "/api/v1/miners/"+ids[7]+"/uptime?"+q.Encode(), nil, e2e.Bearer(owner.token))
		if up.Status != http.StatusOK {
			t.Fatalf("uptime: %d %s", up.Status, up.Body)
		}
		// 5 polls in 2.5 minutes: one up window of the hour's 12.
		var u struct {
			Uptime struct {
				Stats struct {
					Total string `json:"total_windows"`
					Up    string `json:"up_windows"`
				} `json:"stats"`
			} `json:"uptime"`
		}
		if err := json.Unmarshal(up.Body, &u); err != nil || u.Uptime.Stats.Total != "12" || u.Uptime.Stats.Up != "1" {
			t.Errorf("uptime %s (%v), want 12 windows, 1 up", up.Body, err)
		}
	})

	t.Run("replay stores nothing new", func(t *testing.T) {
		resp := m.Do(t, nil, http.MethodPost, "/api/edge/v1/telemetry/batch", batch, good)
		if resp.Status != http.StatusOK || decodeNumber(t, resp.Body, "duplicates") != 2000 || decodeNumber(t, resp.Body, "stored") != 0 {
			t.Errorf("replay: %d %s", resp.Status, resp.Body)
		}
		if n := colCount(t, db, site); n != 2000 {
			t.Errorf("%d samples after a replay, want 2000", n)
		}
	})

	t.Run("empty array", func(t *testing.T) {
		resp := m.Do(t, nil, http.MethodPost, "/api/collector/upload", colGzip(t, []any{}), good)
		if resp.Status != http.StatusOK || decodeNumber(t, resp.Body, "received") != 0 {
			t.Errorf("empty: %d %s", resp.Status, resp.Body)
		}
	})
}

// decodeNumber returns the number at key of a JSON object (0 when absent).
func decodeNumber(t testing.TB, body []byte, key string) float64 {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	f, _ := v[key].(float64)
	return f
}
