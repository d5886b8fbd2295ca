package ratelimit

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the limiter's Prometheus series:
//
//	hashinsight_rate_limited_total{service,scope}  requests answered 429, by refusing bucket
//	hashinsight_rate_limiter_degraded{service}     1 while Redis fails and limits are per replica
type Metrics struct {
	rejected *prometheus.CounterVec
	degraded prometheus.Gauge
}

// NewMetrics creates the series for service and registers them with reg.
func NewMetrics(service string, reg prometheus.Registerer, scopes ...string) (*Metrics, error) {
	labels := prometheus.Labels{"service": service}
	m := &Metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "hashinsight_rate_limited_total",
			Help:        "Requests refused with 429 by the gateway's rate limits, by the bucket that refused them.",
			ConstLabels: labels,
		}, []string{"scope"}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "hashinsight_rate_limiter_degraded",
			Help:        "1 while Redis fails and rate limits are kept in memory per gateway replica.",
			ConstLabels: labels,
		}),
	}
	for _, c := range []prometheus.Collector{m.rejected, m.degraded} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ratelimit: register metrics: %w", err)
		}
	}
	for _, s := range scopes {
		m.rejected.WithLabelValues(s) // a series from the start
	}
	return m, nil
}

// Rejected counts one 429 refused by scope's bucket.
func (m *Metrics) Rejected(scope string) { m.rejected.WithLabelValues(scope).Inc() }

// SetDegraded records whether the in-memory fallback is deciding.
func (m *Metrics) SetDegraded(degraded bool) {
	if degraded {
		m.degraded.Set(1)
	} else {
		m.degraded.Set(0)
	}
}
