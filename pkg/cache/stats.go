package cache

import (
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Backend names used in Stats and the manual's "cache_type".
const (
	BackendRedis  = "redis"
	BackendMemory = "memory"
)

// Stats is a snapshot of a cache's counters (cumulative since New). JSON field names follow the
// manual's /api/cache/stats.
type Stats struct {
	Name string `json:"name"`
	// Backend is "redis" while Redis is configured and reachable, else "memory" (the fallback).
	Backend string `json:"cache_type"`
	// HitRate is Hits / TotalRequests in percent (0-100).
	HitRate       float64 `json:"hit_rate"`
	TotalRequests uint64  `json:"total_requests"`
	// Hits = L1Hits + L2Hits; a caller coalesced onto a flight counts as its flight's outcome.
	Hits   uint64 `json:"hits"`
	Misses uint64 `json:"misses"`
	L1Hits uint64 `json:"l1_hits"`
	L2Hits uint64 `json:"l2_hits"`
	// Coalesced counts calls that shared another call's in-flight lookup instead of their own.
	Coalesced uint64 `json:"coalesced"`
	// Loads counts calls to the source (loader); LoadErrors those that failed.
	Loads      uint64 `json:"loads"`
	LoadErrors uint64 `json:"load_errors"`
	// Evictions counts L1 entries dropped for capacity; Expirations those dropped for age.
	Evictions      uint64 `json:"evictions"`
	Expirations    uint64 `json:"expirations"`
	L1Entries      int    `json:"l1_entries"`
	L2Errors       uint64 `json:"l2_errors"`
	RedisAvailable bool   `json:"redis_available"`
	// RedisConfigured is false for an L1-only cache.
	RedisConfigured bool `json:"redis_configured"`
}

// Stats returns the current counters.
func (c *Cache) Stats() Stats {
	l := c.l1.stats()
	s := Stats{
		Name:            c.name,
		Backend:         BackendMemory,
		TotalRequests:   c.requests.Load(),
		L1Hits:          c.l1Hits.Load(),
		L2Hits:          c.l2Hits.Load(),
		Misses:          c.misses.Load(),
		Coalesced:       c.coalesced.Load(),
		Loads:           c.loads.Load(),
		LoadErrors:      c.loadErrors.Load(),
		Evictions:       l.evictions,
		Expirations:     l.expirations,
		L1Entries:       l.entries,
		L2Errors:        c.l2Errors.Load(),
		RedisAvailable:  c.rdb != nil && c.available.Load(),
		RedisConfigured: c.rdb != nil,
	}
	if s.RedisAvailable {
		s.Backend = BackendRedis
	}
	s.Hits = s.L1Hits + s.L2Hits
	s.HitRate = percent(s.Hits, s.TotalRequests)
	return s
}

// MemoryStats is the L1 view for the manual's /api/cache/memory-stats.
type MemoryStats struct {
	CacheType string `json:"cache_type"` // always "memory"
	// SizeMB approximates L1's footprint: keys, values and a fixed per-entry overhead.
	SizeMB  float64 `json:"size_mb"`
	Entries int     `json:"entries"`
	// HitRate is L1 hits per request in percent.
	HitRate   float64 `json:"hit_rate"`
	Evictions uint64  `json:"evictions"`
}

// MemoryStats returns the L1 statistics.
func (c *Cache) MemoryStats() MemoryStats {
	l := c.l1.stats()
	return MemoryStats{
		CacheType: BackendMemory,
		SizeMB:    round1(float64(l.bytes) / (1 << 20)),
		Entries:   l.entries,
		HitRate:   percent(c.l1Hits.Load(), c.requests.Load()),
		Evictions: l.evictions,
	}
}

// CoalescingStats is the request-coalescing view for the manual's
// /api/performance/coalescing-stats, counted since New or the last ClearCoalescing.
type CoalescingStats struct {
	Enabled bool `json:"enabled"`
	// TotalRequests counts lookups that missed L1 and went through the coalescer.
	TotalRequests uint64 `json:"total_requests"`
	// DeduplicatedRequests counts those that joined another's in-flight lookup.
	DeduplicatedRequests uint64 `json:"deduplicated_requests"`
	// APICallsSaved equals DeduplicatedRequests: each one is a lookup not made.
	APICallsSaved uint64 `json:"api_calls_saved"`
	// PerformanceImprovement is TotalRequests / (TotalRequests - DeduplicatedRequests), e.g. "9.8x".
	PerformanceImprovement string `json:"performance_improvement"`
	// AverageWaitTimeMs is how long a deduplicated request waited for the shared result, on average.
	AverageWaitTimeMs float64 `json:"average_wait_time_ms"`
}

type coalescingCounters struct{ total, dedup, waitNanos uint64 }

func (c *Cache) coalescingNow() coalescingCounters {
	return coalescingCounters{total: c.flightRequests.Load(), dedup: c.coalesced.Load(), waitNanos: c.waitSum.Load()}
}

// CoalescingStats returns the coalescing counters since New or the last ClearCoalescing.
func (c *Cache) CoalescingStats() CoalescingStats {
	c.coalMu.Lock()
	base := c.coalBaseline
	c.coalMu.Unlock()
	now := c.coalescingNow()
	return newCoalescingStats(now.total-base.total, now.dedup-base.dedup, now.waitNanos-base.waitNanos)
}

// MergeCoalescingStats adds up the coalescing statistics of several caches (one process's view).
func MergeCoalescingStats(all ...CoalescingStats) CoalescingStats {
	var total, dedup uint64
	var wait float64
	for _, s := range all {
		total += s.TotalRequests
		dedup += s.DeduplicatedRequests
		wait += s.AverageWaitTimeMs * float64(s.DeduplicatedRequests)
	}
	return newCoalescingStats(total, dedup, uint64(wait*float64(time.Millisecond)))
}

func newCoalescingStats(total, dedup, waitNanos uint64) CoalescingStats {
	s := CoalescingStats{
		Enabled:                true,
		TotalRequests:          total,
		DeduplicatedRequests:   dedup,
		APICallsSaved:          dedup,
		PerformanceImprovement: "1.0x",
	}
	if executed := total - dedup; total > 0 && executed > 0 {
		s.PerformanceImprovement = fmt.Sprintf("%.1fx", float64(total)/float64(executed))
	}
	if dedup > 0 {
		s.AverageWaitTimeMs = round1(float64(waitNanos) / float64(dedup) / float64(time.Millisecond))
	}
	return s
}

// ClearCoalescing forgets every in-flight lookup (later callers start a fresh one instead of
// joining it) and restarts the coalescing statistics. Prometheus counters stay cumulative.
func (c *Cache) ClearCoalescing() {
	// Bumping the epoch also keeps forgotten flights from caching their results.
	c.epoch.Add(1)
	c.coalMu.Lock()
	c.coalBaseline = c.coalescingNow()
	c.coalMu.Unlock()
	c.forgetAll()
}

func percent(part, whole uint64) float64 {
	if whole == 0 {
		return 0
	}
	return round1(float64(part) * 100 / float64(whole))
}

func round1(f float64) float64 {
	return math.Round(f*10) / 10
}

// Collector returns a Prometheus collector for this cache, labelled service and cache, exposing
// the manual's hashinsight_cache_hit_rate (a percentage) and companion counters.
func (c *Cache) Collector(service string) prometheus.Collector {
	labels := prometheus.Labels{"service": service, "cache": c.name}
	d := func(name, help string, variable ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, variable, labels)
	}
	return &collector{
		c:         c,
		hitRate:   d("hashinsight_cache_hit_rate", "Cache hit rate in percent (0-100) since start."),
		requests:  d("hashinsight_cache_requests_total", "Cache lookups by result (l1_hit, l2_hit, miss).", "result"),
		coalesced: d("hashinsight_cache_coalesced_total", "Lookups that joined another in-flight lookup of the same key."),
		loads:     d("hashinsight_cache_loads_total", "Calls to the source on a cache miss, by outcome (ok, error).", "outcome"),
		evictions: d("hashinsight_cache_evictions_total", "L1 entries evicted for capacity."),
		entries:   d("hashinsight_cache_entries", "Entries in the in-process L1 cache."),
		sizeBytes: d("hashinsight_cache_size_bytes", "Approximate size of the in-process L1 cache in bytes."),
		l2Errors:  d("hashinsight_cache_l2_errors_total", "Redis (L2) errors; each marks Redis unavailable until a probe succeeds."),
		redisUp:   d("hashinsight_cache_redis_available", "1 while Redis (L2) is configured and reachable, else 0."),
	}
}

type collector struct {
	c                                                       *Cache
	hitRate, requests, coalesced, loads, evictions, entries *prometheus.Desc
	sizeBytes, l2Errors, redisUp                            *prometheus.Desc
}

func (k *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{k.hitRate, k.requests, k.coalesced, k.loads, k.evictions, k.entries, k.sizeBytes, k.l2Errors, k.redisUp} {
		ch <- d
	}
}

func (k *collector) Collect(ch chan<- prometheus.Metric) {
	s := k.c.Stats()
	bytes := k.c.l1.stats().bytes
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	gauge(k.hitRate, s.HitRate)
	counter(k.requests, s.L1Hits, "l1_hit")
	counter(k.requests, s.L2Hits, "l2_hit")
	counter(k.requests, s.Misses, "miss")
	counter(k.coalesced, s.Coalesced)
	counter(k.loads, s.Loads-min(s.LoadErrors, s.Loads), "ok")
	counter(k.loads, s.LoadErrors, "error")
	counter(k.evictions, s.Evictions)
	gauge(k.entries, float64(s.L1Entries))
	gauge(k.sizeBytes, float64(bytes))
	counter(k.l2Errors, s.L2Errors)
	up := 0.0
	if s.RedisAvailable {
		up = 1
	}
	gauge(k.redisUp, up)
}
