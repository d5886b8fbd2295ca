package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// counter is a loader that returns a fixed value and counts its calls.
type counter struct {
	calls atomic.Int64
	value string
}

func (l *counter) load(context.Context) ([]byte, error) {
	l.calls.Add(1)
	return []byte(l.value), nil
}

func mustNotLoad(t *testing.T) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) {
		t.Error("loader called, want a cache hit")
		return nil, errors.New("unexpected load")
	}
}

func newRedisClient(t *testing.T, r *testRedis) redis.UniversalClient {
	t.Helper()
	client, err := NewRedis(r.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func get(t *testing.T, c *Cache, key string, load func(context.Context) ([]byte, error)) string {
	t.Helper()
	v, err := c.GetOrLoad(context.Background(), key, load)
	if err != nil {
		t.Fatalf("GetOrLoad(%q) = %v", key, err)
	}
	return string(v)
}

func TestL1Only(t *testing.T) {
	ctx := context.Background()
	c := New(Options{Name: "miners"})
	src := &counter{value: "v1"}

	if got := get(t, c, "k", src.load); got != "v1" {
		t.Fatalf("first read = %q", got)
	}
	if got := get(t, c, "k", mustNotLoad(t)); got != "v1" {
		t.Fatalf("second read = %q", got)
	}

	// The returned slice is the caller's: mutating it does not corrupt the cache.
	v, _ := c.GetOrLoad(ctx, "k", mustNotLoad(t))
	v[0] = 'X'
	if got := get(t, c, "k", mustNotLoad(t)); got != "v1" {
		t.Fatalf("cache corrupted by caller: %q", got)
	}

	if err := c.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	get(t, c, "k", src.load)
	if src.calls.Load() != 2 {
		t.Errorf("loader calls = %d, want 2 (after Delete)", src.calls.Load())
	}

	boom := errors.New("source down")
	if _, err := c.GetOrLoad(ctx, "bad", func(context.Context) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("GetOrLoad error = %v, want the loader's", err)
	}
	if got := get(t, c, "bad", (&counter{value: "ok"}).load); got != "ok" {
		t.Errorf("a failed load was cached: %q", got)
	}

	s := c.Stats()
	if s.Backend != BackendMemory || s.RedisAvailable || s.RedisConfigured {
		t.Errorf("Stats backend = %+v, want memory only", s)
	}
	if s.TotalRequests != 7 || s.L1Hits != 3 || s.Hits != 3 || s.Misses != 4 || s.Loads != 4 || s.LoadErrors != 1 {
		t.Errorf("Stats = %+v", s)
	}
	if s.HitRate != 42.9 {
		t.Errorf("HitRate = %v, want 42.9", s.HitRate)
	}
	if err := c.Ping(ctx); err != nil {
		t.Errorf("Ping() on L1-only = %v, want nil", err)
	}
}

func TestL2SharedBetweenInstances(t *testing.T) {
	ctx := context.Background()
	r := startRedis(t)
	a := New(Options{Name: "miners", Redis: newRedisClient(t, r)})
	b := New(Options{Name: "miners", Redis: newRedisClient(t, r)})

	src := &counter{value: "fleet"}
	if got := get(t, a, "summary", src.load); got != "fleet" {
		t.Fatalf("a read = %q", got)
	}
	// b has never seen the key: it can only come from Redis.
	if got := get(t, b, "summary", mustNotLoad(t)); got != "fleet" {
		t.Fatalf("b read = %q", got)
	}
	if s := b.Stats(); s.L2Hits != 1 || s.L1Hits != 0 || s.Backend != BackendRedis || !s.RedisAvailable {
		t.Errorf("b Stats = %+v, want one L2 hit on redis", s)
	}

	raw := newRedisClient(t, r)
	ttl, err := raw.TTL(ctx, "hashinsight:miners:summary").Result()
	if err != nil || ttl <= 0 || ttl > DefaultL2TTL {
		t.Errorf("TTL of the Redis key = %v, %v; want (0, %v]", ttl, err, DefaultL2TTL)
	}

	// Delete reaches L2: a third instance must load from the source again.
	if err := a.Delete(ctx, "summary"); err != nil {
		t.Fatal(err)
	}
	if n, _ := raw.Exists(ctx, "hashinsight:miners:summary").Result(); n != 0 {
		t.Error("key still in Redis after Delete")
	}
	c := New(Options{Name: "miners", Redis: newRedisClient(t, r)})
	src2 := &counter{value: "fleet2"}
	if got := get(t, c, "summary", src2.load); got != "fleet2" || src2.calls.Load() != 1 {
		t.Errorf("after Delete: %q with %d loads", got, src2.calls.Load())
	}

	// Set warms both levels.
	if err := a.Set(ctx, "warm", []byte("w")); err != nil {
		t.Fatal(err)
	}
	if got := get(t, b, "warm", mustNotLoad(t)); got != "w" {
		t.Errorf("warm read = %q", got)
	}

	// Clear drops the namespace but not other caches' keys.
	other := New(Options{Name: "market", Redis: newRedisClient(t, r)})
	_ = other.Set(ctx, "price", []byte("1"))
	if err := a.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if keys, _ := raw.Keys(ctx, "hashinsight:miners:*").Result(); len(keys) != 0 {
		t.Errorf("keys left after Clear: %v", keys)
	}
	if n, _ := raw.Exists(ctx, "hashinsight:market:price").Result(); n != 1 {
		t.Error("Clear removed another cache's key")
	}
}

func TestCoalescing(t *testing.T) {
	for _, withRedis := range []bool{false, true} {
		t.Run(fmt.Sprintf("redis=%v", withRedis), func(t *testing.T) {
			opts := Options{Name: "market"}
			if withRedis {
				opts.Redis = newRedisClient(t, startRedis(t))
			}
			c := New(opts)

			const callers = 50
			gate := make(chan struct{})
			var calls atomic.Int64
			load := func(context.Context) ([]byte, error) {
				calls.Add(1)
				<-gate
				return []byte("btc"), nil
			}

			var wg sync.WaitGroup
			results := make([]string, callers)
			errs := make([]error, callers)
			for i := range callers {
				wg.Go(func() {
					v, err := c.GetOrLoad(context.Background(), "price", load)
					results[i], errs[i] = string(v), err
				})
			}
			// Every caller has missed L1 and reached the coalescer before the source answers.
			waitFor(t, 10*time.Second, "all callers to reach the coalescer", func() bool {
				return c.CoalescingStats().TotalRequests == callers && calls.Load() == 1
			})
			close(gate)
			wg.Wait()

			for i := range callers {
				if errs[i] != nil || results[i] != "btc" {
					t.Fatalf("caller %d got %q, %v", i, results[i], errs[i])
				}
			}
			if calls.Load() != 1 {
				t.Fatalf("loader calls = %d, want 1", calls.Load())
			}
			s := c.Stats()
			// A caller that reached DoChan only after the flight finished finds L1 filled instead.
			if s.Coalesced < 1 || s.Coalesced+s.L1Hits != callers-1 || s.Loads != 1 {
				t.Errorf("Stats = %+v, want 49 callers served without a load", s)
			}
			cs := c.CoalescingStats()
			if cs.TotalRequests != callers || cs.DeduplicatedRequests != s.Coalesced || !cs.Enabled {
				t.Errorf("CoalescingStats = %+v", cs)
			}
			if s.Coalesced == callers-1 && cs.PerformanceImprovement != "50.0x" {
				t.Errorf("PerformanceImprovement = %q, want 50.0x", cs.PerformanceImprovement)
			}

			c.ClearCoalescing()
			if cs := c.CoalescingStats(); cs.TotalRequests != 0 || cs.DeduplicatedRequests != 0 || cs.PerformanceImprovement != "1.0x" {
				t.Errorf("after ClearCoalescing: %+v", cs)
			}
		})
	}
}

func TestRedisOutageAndRecovery(t *testing.T) {
	ctx := context.Background()
	r := startRedis(t)
	a := New(Options{Name: "sla", Redis: newRedisClient(t, r), ProbeInterval: 20 * time.Millisecond})
	b := New(Options{Name: "sla", Redis: newRedisClient(t, r), ProbeInterval: 20 * time.Millisecond})

	get(t, a, "report", (&counter{value: "r1"}).load)

	r.stop() // Redis dies mid-test.

	start := time.Now()
	if got := get(t, a, "report", mustNotLoad(t)); got != "r1" {
		t.Fatalf("cached read during outage = %q", got)
	}
	src := &counter{value: "fresh"}
	for i := range 5 {
		if got := get(t, a, fmt.Sprintf("new-%d", i), src.load); got != "fresh" {
			t.Fatalf("new key during outage = %q", got)
		}
	}
	// b never read before the outage: everything comes from the source, without error.
	if got := get(t, b, "report", (&counter{value: "from-db"}).load); got != "from-db" {
		t.Fatalf("b read during outage = %q", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("reads during the outage took %v; Redis errors must fail fast", d)
	}
	s := a.Stats()
	if s.RedisAvailable || s.Backend != BackendMemory || s.L2Errors == 0 || src.calls.Load() != 5 {
		t.Errorf("Stats during outage = %+v, loads %d", s, src.calls.Load())
	}
	if err := a.Ping(ctx); err == nil {
		t.Error("Ping() during outage = nil, want error")
	}

	r.start() // Redis back, same port, empty.

	// b writes through Redis once it sees it again...
	waitFor(t, 10*time.Second, "b to reach Redis", func() bool { return b.Ping(ctx) == nil })
	if err := b.Set(ctx, "shared", []byte("from-l2")); err != nil {
		t.Fatal(err)
	}
	// ...and a resumes L2 by itself after the probe interval, on ordinary reads.
	i := 0
	waitFor(t, 10*time.Second, "a to use Redis again", func() bool {
		i++
		get(t, a, fmt.Sprintf("probe-%d", i), src.load)
		return a.Stats().RedisAvailable
	})
	before := a.Stats().L2Hits
	if got := get(t, a, "shared", mustNotLoad(t)); got != "from-l2" {
		t.Fatalf("read after recovery = %q", got)
	}
	if s := a.Stats(); s.L2Hits != before+1 || s.Backend != BackendRedis {
		t.Errorf("Stats after recovery = %+v, want one more L2 hit", s)
	}
}

func TestDeletesDuringOutageAreReplayed(t *testing.T) {
	ctx := context.Background()
	r := startRedis(t)
	// No automatic probes: recovery happens only through Ping.
	c := New(Options{Name: "auth", Redis: newRedisClient(t, r), ProbeInterval: time.Hour})
	get(t, c, "user:1", (&counter{value: "old"}).load)

	r.stop()
	if err := c.Delete(ctx, "user:1"); err != nil {
		t.Fatalf("Delete during outage = %v, want nil", err)
	}
	if err := c.Set(ctx, "user:2", []byte("new2")); err != nil {
		t.Fatalf("Set during outage = %v, want nil", err)
	}
	r.start()

	// Pretend the old values survived in Redis (a persistent Redis would still hold them).
	raw := newRedisClient(t, r)
	for _, k := range []string{"hashinsight:auth:user:1", "hashinsight:auth:user:2"} {
		if err := raw.Set(ctx, k, "old", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping() after restart = %v", err)
	}
	for _, k := range []string{"hashinsight:auth:user:1", "hashinsight:auth:user:2"} {
		if n, _ := raw.Exists(ctx, k).Result(); n != 0 {
			t.Errorf("%s: the write made during the outage was not replayed as a delete", k)
		}
	}
	if got := get(t, c, "user:1", (&counter{value: "new"}).load); got != "new" {
		t.Errorf("read after recovery = %q, want the source's new value", got)
	}
}

func TestPendingOverflowFlushesNamespace(t *testing.T) {
	ctx := context.Background()
	r := startRedis(t)
	c := New(Options{Name: "billing", Redis: newRedisClient(t, r), ProbeInterval: time.Hour, MaxPendingDeletes: 2})
	get(t, c, "a", (&counter{value: "1"}).load)
	r.stop()
	_ = c.Delete(ctx, "a", "b", "c")
	r.start()
	raw := newRedisClient(t, r)
	for _, k := range []string{"hashinsight:billing:a", "hashinsight:billing:z"} {
		raw.Set(ctx, k, "stale", time.Minute)
	}
	raw.Set(ctx, "hashinsight:other:a", "keep", time.Minute)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if keys, _ := raw.Keys(ctx, "hashinsight:billing:*").Result(); len(keys) != 0 {
		t.Errorf("namespace not flushed after overflow: %v", keys)
	}
	if n, _ := raw.Exists(ctx, "hashinsight:other:a").Result(); n != 1 {
		t.Error("flush removed another namespace's key")
	}
}

func TestEvictions(t *testing.T) {
	c := New(Options{Name: "x", L1MaxEntries: 3})
	src := &counter{value: "v"}
	for i := range 5 {
		get(t, c, fmt.Sprintf("k%d", i), src.load)
	}
	s := c.Stats()
	if s.Evictions != 2 || s.L1Entries != 3 {
		t.Errorf("Stats = %+v, want 2 evictions and 3 entries", s)
	}
	get(t, c, "k0", src.load) // evicted: loads again
	if src.calls.Load() != 6 {
		t.Errorf("loads = %d, want 6", src.calls.Load())
	}
	ms := c.MemoryStats()
	if ms.CacheType != "memory" || ms.Entries != 3 || ms.Evictions != 3 {
		t.Errorf("MemoryStats = %+v", ms)
	}
}

func TestL1Expiry(t *testing.T) {
	c := New(Options{Name: "x", L1TTL: time.Minute})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	src := &counter{value: "v"}
	get(t, c, "k", src.load)
	now = now.Add(59 * time.Second)
	get(t, c, "k", src.load)
	now = now.Add(2 * time.Second)
	get(t, c, "k", src.load)
	if src.calls.Load() != 2 {
		t.Errorf("loads = %d, want 2 (one after expiry)", src.calls.Load())
	}
	if s := c.Stats(); s.Expirations != 1 || s.Evictions != 0 {
		t.Errorf("Stats = %+v, want 1 expiration", s)
	}
}

func TestCallerCancellationDoesNotFailOthers(t *testing.T) {
	c := New(Options{Name: "x"})
	gate := make(chan struct{})
	started := make(chan struct{})
	var calls atomic.Int64
	load := func(ctx context.Context) ([]byte, error) {
		calls.Add(1)
		close(started)
		<-gate
		return []byte("v"), ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := c.GetOrLoad(ctx, "k", load)
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}
	close(gate)
	// The detached load completes and fills the cache for everyone else.
	waitFor(t, 5*time.Second, "the detached load to fill L1", func() bool { return c.Stats().L1Entries == 1 })
	if got := get(t, c, "k", mustNotLoad(t)); got != "v" || calls.Load() != 1 {
		t.Errorf("got %q after %d loads", got, calls.Load())
	}
}

func TestDeleteDuringLoadIsNotOverwritten(t *testing.T) {
	ctx := context.Background()
	c := New(Options{Name: "x"})
	gate := make(chan struct{})
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.GetOrLoad(ctx, "k", func(context.Context) ([]byte, error) {
			close(started)
			<-gate
			return []byte("stale"), nil
		})
	}()
	<-started
	_ = c.Delete(ctx, "k") // the row changed while the old value was being read
	close(gate)
	<-done
	if got := get(t, c, "k", (&counter{value: "fresh"}).load); got != "fresh" {
		t.Errorf("read after Delete = %q, want fresh (the racing load must not be cached)", got)
	}
}

func TestLoaderPanicBecomesError(t *testing.T) {
	c := New(Options{Name: "x"})
	_, err := c.GetOrLoad(context.Background(), "k", func(context.Context) ([]byte, error) { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("GetOrLoad with panicking loader = %v", err)
	}
}

func TestGetJSON(t *testing.T) {
	type quote struct {
		USD    float64 `json:"usd"`
		Source string  `json:"source"`
	}
	ctx := context.Background()
	c := New(Options{Name: "market"})
	var calls atomic.Int64
	load := func(context.Context) (quote, error) {
		calls.Add(1)
		return quote{USD: 97000.5, Source: "coingecko"}, nil
	}
	for range 2 {
		q, err := GetJSON(ctx, c, "btc", load)
		if err != nil || q.USD != 97000.5 || q.Source != "coingecko" {
			t.Fatalf("GetJSON = %+v, %v", q, err)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("loads = %d, want 1", calls.Load())
	}
	// An entry that no longer decodes is replaced.
	_ = c.Set(ctx, "btc", []byte(`["not a quote"]`))
	if q, err := GetJSON(ctx, c, "btc", load); err != nil || q.USD != 97000.5 {
		t.Errorf("GetJSON over a bad entry = %+v, %v", q, err)
	}
	if calls.Load() != 2 {
		t.Errorf("loads = %d, want 2", calls.Load())
	}
}

func TestCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := New(Options{Name: "miners"})
	b := New(Options{Name: "market"})
	reg.MustRegister(a.Collector("mining"), b.Collector("mining"))

	src := &counter{value: "v"}
	get(t, a, "k", src.load)
	get(t, a, "k", src.load)
	get(t, a, "k", src.load)
	get(t, a, "j", src.load)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["service"] != "mining" || labels["cache"] != "miners" {
				continue
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			found[f.GetName()+"/"+labels["result"]] = v
		}
	}
	want := map[string]float64{
		"hashinsight_cache_hit_rate/":             50,
		"hashinsight_cache_requests_total/l1_hit": 2,
		"hashinsight_cache_requests_total/miss":   2,
		"hashinsight_cache_entries/":              2,
		"hashinsight_cache_redis_available/":      0,
		"hashinsight_cache_requests_total/l2_hit": 0,
		"hashinsight_cache_evictions_total/":      0,
		"hashinsight_cache_l2_errors_total/":      0,
		"hashinsight_cache_coalesced_total/":      0,
	}
	for k, w := range want {
		if got, ok := found[k]; !ok || got != w {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, w)
		}
	}
}

func TestMergeCoalescingStats(t *testing.T) {
	m := MergeCoalescingStats(
		newCoalescingStats(60, 50, uint64(50*4*time.Millisecond)),
		newCoalescingStats(40, 39, uint64(39*2*time.Millisecond)),
	)
	if m.TotalRequests != 100 || m.DeduplicatedRequests != 89 || m.APICallsSaved != 89 || m.PerformanceImprovement != "9.1x" {
		t.Errorf("merged = %+v", m)
	}
	if m.AverageWaitTimeMs < 3.0 || m.AverageWaitTimeMs > 3.2 {
		t.Errorf("AverageWaitTimeMs = %v, want ~3.1", m.AverageWaitTimeMs)
	}
}

func TestNewRedis(t *testing.T) {
	tests := []struct {
		url     string
		kind    string // "client", "cluster", or "" for an error
		options func(redis.UniversalClient) string
	}{
		{url: "redis://127.0.0.1:6379/0", kind: "client"},
		{url: "rediss://user:pw@cache.internal:6380/2", kind: "client"},
		{url: "unix:///var/run/redis.sock", kind: "client"},
		{url: "redis://:pw@sentinel1:26379?master_name=mymaster&addr=sentinel2:26379", kind: "client"},
		{url: "redis://node1:7000?addr=node2:7000&addr=node3:7000", kind: "cluster"},
		{url: "redis://node1:7000?cluster=true", kind: "cluster"},
		{url: "http://cache:6379", kind: ""},
		{url: "redis://:secretpw@cache:6379/notanumber", kind: ""},
		{url: "redis://cache:6379?cluster=maybe", kind: ""},
		{url: "redis://:secretpw@cache:6379\x7f", kind: ""},
	}
	for _, tt := range tests {
		client, err := NewRedis(tt.url)
		if tt.kind == "" {
			if err == nil {
				_ = client.Close()
				t.Errorf("NewRedis(%q) = nil error, want error", tt.url)
			} else if strings.Contains(err.Error(), "secretpw") {
				t.Errorf("NewRedis error leaks the password: %v", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("NewRedis(%q) = %v", tt.url, err)
			continue
		}
		switch cl := client.(type) {
		case *redis.Client:
			if tt.kind != "client" {
				t.Errorf("NewRedis(%q) = %T, want %s", tt.url, client, tt.kind)
			}
			if !cl.Options().ContextTimeoutEnabled {
				t.Errorf("NewRedis(%q): ContextTimeoutEnabled = false", tt.url)
			}
		case *redis.ClusterClient:
			if tt.kind != "cluster" {
				t.Errorf("NewRedis(%q) = %T, want %s", tt.url, client, tt.kind)
			}
		default:
			t.Errorf("NewRedis(%q) = %T", tt.url, client)
		}
		_ = client.Close()
	}
}

func TestRedisLogger(t *testing.T) {
	var buf strings.Builder
	l := RedisLogger{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	l.Printf(context.Background(), "redis: dial %s: %v", "127.0.0.1:1", "refused")
	if !strings.Contains(buf.String(), "redis: dial 127.0.0.1:1: refused") || !strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("logged %q", buf.String())
	}
	RedisLogger{}.Printf(context.Background(), "dropped") // nil Logger is a no-op
}
