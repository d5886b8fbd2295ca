package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, as in the operations manual.
const (
	metricQueryDuration = "hashinsight_db_query_duration_seconds"
	metricPoolSize      = "hashinsight_db_connection_pool_size"
	metricPoolActive    = "hashinsight_db_connection_pool_active"
	metricPoolIdle      = "hashinsight_db_connection_pool_idle"
	metricPoolMax       = "hashinsight_db_connection_pool_max"
)

// queryDurationBuckets are the manual's buckets for hashinsight_db_query_duration_seconds.
var queryDurationBuckets = []float64{.001, .01, .05, .1, .5, 1}

// metrics holds one service's database instruments.
type metrics struct {
	service  string
	duration prometheus.ObserverVec // curried with service; one label left: query_type
}

// newMetrics registers (or reuses) the query-duration histogram on reg.
func newMetrics(reg prometheus.Registerer, service string) (*metrics, error) {
	hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    metricQueryDuration,
		Help:    "Duration of database queries in seconds, by statement type.",
		Buckets: queryDurationBuckets,
	}, []string{"service", "query_type"})
	if err := reg.Register(hv); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("postgres: register %s: %w", metricQueryDuration, err)
		}
		existing, ok := are.ExistingCollector.(*prometheus.HistogramVec)
		if !ok {
			return nil, fmt.Errorf("postgres: register %s: a different collector has that name", metricQueryDuration)
		}
		hv = existing
	}
	curried, err := hv.CurryWith(prometheus.Labels{"service": service})
	if err != nil {
		return nil, fmt.Errorf("postgres: curry %s: %w", metricQueryDuration, err)
	}
	return &metrics{service: service, duration: curried}, nil
}

// tracer returns the pgx tracer that feeds the histogram.
func (m *metrics) tracer() *queryTracer { return &queryTracer{duration: m.duration} }

// registerPool exports pool's gauges. A collector already registered for the same service (an
// earlier pool of this process) is replaced, so the gauges always describe the newest pool.
func (m *metrics) registerPool(reg prometheus.Registerer, pool *pgxpool.Pool) error {
	c := newPoolCollector(m.service, pool)
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		reg.Unregister(are.ExistingCollector)
		err = reg.Register(c)
	}
	if err != nil {
		return fmt.Errorf("postgres: register pool metrics: %w", err)
	}
	return nil
}

// poolCollector reads pgxpool statistics at scrape time.
type poolCollector struct {
	pool                      *pgxpool.Pool
	size, active, idle, limit *prometheus.Desc
}

func newPoolCollector(service string, pool *pgxpool.Pool) *poolCollector {
	labels := prometheus.Labels{"service": service}
	return &poolCollector{
		pool:   pool,
		size:   prometheus.NewDesc(metricPoolSize, "Open connections in the database pool (idle, acquired and being established).", nil, labels),
		active: prometheus.NewDesc(metricPoolActive, "Connections currently acquired from the database pool.", nil, labels),
		idle:   prometheus.NewDesc(metricPoolIdle, "Idle connections in the database pool.", nil, labels),
		limit:  prometheus.NewDesc(metricPoolMax, "Maximum size of the database pool.", nil, labels),
	}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.active
	ch <- c.idle
	ch <- c.limit
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(s.MaxConns()))
}

// queryTracer observes the duration of queries, COPYs and batches.
type queryTracer struct {
	duration prometheus.ObserverVec
}

var (
	_ pgx.QueryTracer    = (*queryTracer)(nil)
	_ pgx.BatchTracer    = (*queryTracer)(nil)
	_ pgx.CopyFromTracer = (*queryTracer)(nil)
)

type traceStartKey struct{}

type traceStart struct {
	at        time.Time
	queryType string
}

func (t *queryTracer) start(ctx context.Context, queryType string) context.Context {
	return context.WithValue(ctx, traceStartKey{}, traceStart{at: time.Now(), queryType: queryType})
}

func (t *queryTracer) end(ctx context.Context) {
	s, ok := ctx.Value(traceStartKey{}).(traceStart)
	if !ok {
		return
	}
	t.duration.WithLabelValues(s.queryType).Observe(time.Since(s.at).Seconds())
}

// TraceQueryStart implements pgx.QueryTracer.
func (t *queryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return t.start(ctx, queryType(data.SQL))
}

// TraceQueryEnd implements pgx.QueryTracer.
func (t *queryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	t.end(ctx)
}

// TraceBatchStart implements pgx.BatchTracer. A batch is observed once, as query_type "batch".
func (t *queryTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return t.start(ctx, "batch")
}

// TraceBatchQuery implements pgx.BatchTracer.
func (t *queryTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd implements pgx.BatchTracer.
func (t *queryTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	t.end(ctx)
}

// TraceCopyFromStart implements pgx.CopyFromTracer.
func (t *queryTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return t.start(ctx, "copy")
}

// TraceCopyFromEnd implements pgx.CopyFromTracer.
func (t *queryTracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	t.end(ctx)
}

// knownQueryTypes bounds the query_type label: any other leading keyword is reported as "other".
var knownQueryTypes = map[string]bool{
	"select": true, "insert": true, "update": true, "delete": true, "merge": true, "copy": true,
	"with": true, "values": true, "table": true, "call": true, "do": true, "explain": true,
	"begin": true, "start": true, "commit": true, "end": true, "rollback": true, "savepoint": true, "release": true,
	"create": true, "alter": true, "drop": true, "truncate": true, "grant": true, "revoke": true, "comment": true,
	"set": true, "reset": true, "show": true, "lock": true, "listen": true, "notify": true, "unlisten": true,
	"vacuum": true, "analyze": true, "refresh": true, "discard": true, "declare": true, "fetch": true, "close": true,
}

// queryType returns the statement's first SQL keyword, lowercased, skipping leading white space,
// comments and parentheses; keywords outside knownQueryTypes (and empty statements) are "other".
func queryType(sql string) string {
	i := 0
	for i < len(sql) {
		switch c := sql[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '(':
			i++
		case strings.HasPrefix(sql[i:], "--"):
			nl := strings.IndexByte(sql[i:], '\n')
			if nl < 0 {
				return "other"
			}
			i += nl + 1
		case strings.HasPrefix(sql[i:], "/*"):
			// Block comments nest in PostgreSQL.
			depth := 0
			for i < len(sql) {
				if strings.HasPrefix(sql[i:], "/*") {
					depth++
					i += 2
				} else if strings.HasPrefix(sql[i:], "*/") {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
			if depth != 0 {
				return "other"
			}
		default:
			j := i
			for j < len(sql) && isIdentByte(sql[j]) {
				j++
			}
			if kw := strings.ToLower(sql[i:j]); knownQueryTypes[kw] {
				return kw
			}
			return "other"
		}
	}
	return "other"
}

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
}
