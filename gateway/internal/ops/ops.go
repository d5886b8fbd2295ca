// Package ops serves the gateway's operations endpoints of the operations
// manual: SLO status, circuit breakers, cache, memory-cache and
// request-coalescing statistics, and the coalescing reset.
//
// They carry no authentication in this version and only expose counters, no
// data or configuration. They must be put behind an operator permission
// (or the mTLS operator identity) before the gateway is exposed publicly;
// /health stays open on purpose.
package ops

import (
	"encoding/json"
	"net/http"

	"github.com/hashinsight/platform/pkg/breaker"
	"github.com/hashinsight/platform/pkg/cache"
	"github.com/hashinsight/platform/pkg/slo"
)

// Handlers serves the ops endpoints from the gateway's own components.
type Handlers struct {
	slo      *slo.Tracker
	breakers *breaker.Registry
	cache    *cache.Cache
}

// New returns the handlers. tracker, breakers and c must not be nil.
func New(tracker *slo.Tracker, breakers *breaker.Registry, c *cache.Cache) *Handlers {
	return &Handlers{slo: tracker, breakers: breakers, cache: c}
}

// SLOStatus serves GET /api/slo/status: the gateway's SLO report over
// SLO_MEASUREMENT_WINDOW, fed by every REST request it serves.
func (h *Handlers) SLOStatus() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, h.slo.Status())
	})
}

// CircuitBreakers serves GET /api/circuit-breakers: one entry per backend,
// {"mining":{"state":"closed","failure_count":0,"total_calls":1234,"success_rate":"99.8%",…}}.
func (h *Handlers) CircuitBreakers() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, h.breakers.Stats())
	})
}

// CacheStats serves GET /api/cache/stats:
// {"cache_type":"redis","hit_rate":75.5,"total_requests":10000,"hits":7550,"misses":2450,…}.
func (h *Handlers) CacheStats() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, h.cache.Stats())
	})
}

// MemoryStats serves GET /api/cache/memory-stats:
// {"cache_type":"memory","size_mb":124.5,"entries":5432,"hit_rate":82.3,"evictions":234}.
func (h *Handlers) MemoryStats() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, h.cache.MemoryStats())
	})
}

// CoalescingStats serves GET /api/performance/coalescing-stats:
// {"enabled":true,"performance_improvement":"9.8x","deduplicated_requests":5432,"total_requests":53210,…}.
func (h *Handlers) CoalescingStats() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, h.cache.CoalescingStats())
	})
}

// ClearResult is the body of POST /api/performance/clear-coalescing-cache.
type ClearResult struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	// Previous are the statistics just before the reset.
	Previous cache.CoalescingStats `json:"previous"`
}

// ClearCoalescing serves POST /api/performance/clear-coalescing-cache: it
// forgets in-flight lookups (later callers start fresh ones) and restarts
// the coalescing statistics. Cached values are kept.
func (h *Handlers) ClearCoalescing() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		prev := h.cache.CoalescingStats()
		h.cache.ClearCoalescing()
		writeJSON(w, http.StatusOK, ClearResult{Success: true, Message: "coalescing cache cleared", Previous: prev})
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
