package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hashinsight/platform/gateway/internal/e2e"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// BenchmarkCollectorUpload10k stores 10,000 collector snapshots (1,000 miners × 10 polls, gzip)
// through the real gateway into the real mining service and Postgres, end to end: one op is the
// whole 10,000, answered 200 and committed. The budget is 1 s.
//
//   - one-request: a single upload of 10,000 records (the service runs with
//     COLLECTOR_MAX_RECORDS=10000).
//   - 10x1000-sequential: ten uploads of 1,000 (DESIGN's default per-request limit) one after
//     the other, as the collector sends a backlog.
//   - 10x1000-concurrent4: the same ten uploads, four in flight at a time (they touch the same
//     1,000 miners, so their transactions queue on those rows).
//
// Every op uses new timestamps, so every op stores 10,000 new rows (no duplicates).
//
//	go test ./gateway/internal/e2e -run '^$' -bench CollectorUpload10k -benchtime 10x
func BenchmarkCollectorUpload10k(b *testing.B) {
	m := startMesh(b, e2e.Options{
		Redis:      true,
		GatewayEnv: map[string]string{"RATE_LIMIT_REQUESTS_PER_MINUTE": "10000000"},
		ServiceEnv: map[string]string{"COLLECTOR_MAX_RECORDS": "10000"},
	})
	owner := newUser(b, m, authv1.Role_ROLE_OWNER, "")
	const site, miners = "site-bench", 1000
	token := colToken(b, m, owner.token, site)
	db := colDB(b, m)
	base := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	colMiners(b, db, site, miners, base)
	header := colHeaders(token, site)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}

	// upload sends one body and checks the answer (Error, not Fatal: it runs in goroutines).
	upload := func(b *testing.B, body []byte, want int64) {
		req, err := http.NewRequest(http.MethodPost, m.URL+"/api/collector/upload", bytes.NewReader(body))
		if err != nil {
			b.Error(err)
			return
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var got struct {
			Success bool  `json:"success"`
			Stored  int64 `json:"stored"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &got) != nil || !got.Success || got.Stored != want {
			b.Errorf("upload: %d %.300s (want %d stored)", resp.StatusCode, raw, want)
		}
	}
	// Warm up: the month's partition, connections, caches.
	upload(b, colGzip(b, colSnapshots(miners, miners, base)), miners)
	op := 0
	next := func() []map[string]any {
		op++
		return colSnapshots(10_000, miners, base.Add(time.Duration(op)*time.Hour))
	}

	b.Run("one-request", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			body := colGzip(b, next())
			b.StartTimer()
			upload(b, body, 10_000)
		}
	})
	b.Run("10x1000-sequential", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			recs := next()
			bodies := make([][]byte, 10)
			for i := range bodies {
				bodies[i] = colGzip(b, recs[i*1000:(i+1)*1000])
			}
			b.StartTimer()
			for _, body := range bodies {
				upload(b, body, 1000)
			}
		}
	})
	b.Run("10x1000-concurrent4", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			recs := next()
			bodies := make([][]byte, 10)
			for i := range bodies {
				bodies[i] = colGzip(b, recs[i*1000:(i+1)*1000])
			}
			b.StartTimer()
			var wg sync.WaitGroup
			work := make(chan []byte)
			for range 4 {
				wg.Go(func() {
					for body := range work {
						upload(b, body, 1000)
					}
				})
			}
			for _, body := range bodies {
				work <- body
			}
			close(work)
			wg.Wait()
		}
	})
}
