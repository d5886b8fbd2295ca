// Command gateway is HashInsight's REST edge: it serves every service's
// REST routes (grpc-gateway) by calling the services over mutual TLS, the
// edge collectors' upload routes, health and operations endpoints and the
// merged OpenAPI document, and exports Prometheus metrics on a separate
// port.
//
// Configuration (besides pkg/config's Common: DATABASE_URL, SESSION_SECRET,
// ENCRYPTION_PASSWORD, REDIS_URL, MTLS_*, LOG_*, OTEL_*, PROMETHEUS_PORT,
// SLO_MEASUREMENT_WINDOW): GATEWAY_ADDR (:5000), AUTH_GRPC_ADDR
// (127.0.0.1:7001), MINING_GRPC_ADDR (:7002), BILLING_GRPC_ADDR (:7003),
// SLA_GRPC_ADDR (:7004), ANALYTICS_GRPC_ADDR (:7005), MAX_BODY_BYTES (10 MiB),
// VERSION, GATEWAY_SHUTDOWN_TIMEOUT (30s), GATEWAY_HEALTH_CHECK_TIMEOUT (1s),
// GATEWAY_TRUSTED_PROXIES, RATE_LIMIT_ENABLED (true),
// RATE_LIMIT_REQUESTS_PER_MINUTE (60). The MTLS_SERVER_* certificate must carry
// the identity svc/gateway; each backend must present svc/<name>.
//
// Credentials: "Authorization: Bearer <access token or API key>" is forwarded
// to the services, which verify it. The gateway only refuses, with 401
// AUTH_001 and without calling a backend, a header that cannot be valid: not
// "Bearer <x>", or x neither JWT-shaped nor an API key whose format and
// checksum pass apikey.Parse.
//
// Rate limits (RATE_LIMIT_REQUESTS_PER_MINUTE per bucket, refilled
// continuously): per API key (its public prefix), per user (the token's `sub`,
// read unverified and used only as a counting key), per client IP for requests
// without a credential; in Redis (GCRA, shared by every replica) unless
// REDIS_URL selects memory, and in memory while Redis fails. Over the limit:
// 429 API_001 with Retry-After; every limited response carries
// X-RateLimit-Limit and X-RateLimit-Remaining. Refused credentials also spend
// a per-IP budget of failures (in memory), so inventing keys or tokens is
// bounded per address. /health and /health/detailed are never limited.
//
// Endpoints: every REST route of DESIGN.md §4; POST /api/collector/upload and
// /api/edge/v1/telemetry/batch (raw gzip body → mining.UploadCollectorBatch);
// GET /health (liveness), /health/detailed (database, cache, each backend's
// grpc.health.v1 status; 503 when unhealthy), /api/slo/status,
// /api/circuit-breakers, /api/cache/stats, /api/cache/memory-stats,
// /api/performance/coalescing-stats, POST
// /api/performance/clear-coalescing-cache, GET /openapi.json; /metrics on
// PROMETHEUS_PORT. The ops endpoints are unauthenticated for now and must be
// restricted to operators before the gateway is exposed publicly.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	gwconfig "github.com/hashinsight/platform/gateway/internal/config"
	"github.com/hashinsight/platform/pkg/config"
	hilog "github.com/hashinsight/platform/pkg/log"
	hiotel "github.com/hashinsight/platform/pkg/otel"
)

const serviceName = "gateway"

func main() {
	os.Exit(realMain())
}

func realMain() int {
	cfg, err := gwconfig.Load()
	if err != nil {
		return config.Exit(err, os.Stderr)
	}
	logger, closeLogs, err := hilog.NewBuffered(os.Stdout, cfg.Log.Format, cfg.Log.Level, cfg.Log.Buffered)
	if err != nil {
		return config.Exit(err, os.Stderr)
	}
	// Deferred first, it runs last: after the tracing shutdown and the final "stopped" or error
	// line, on every return path, before main's os.Exit.
	defer func() {
		if err := closeLogs(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: flush logs: %v\n", serviceName, err)
		}
	}()
	logger = logger.With(slog.String("service", serviceName))
	logger.LogAttrs(context.Background(), slog.LevelInfo, "starting", hilog.Masked(cfg)...)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	shutdownTracing, err := hiotel.Setup(ctx, serviceName, cfg.Version, cfg.Tracing.OTLPEndpoint)
	if err != nil {
		logger.Error("tracing setup failed", slog.Any("error", err))
		return 1
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			logger.Warn("tracing shutdown", slog.Any("error", err))
		}
	}()

	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("gateway stopped with an error", slog.Any("error", err))
		return 1
	}
	logger.Info("stopped")
	return 0
}

// run builds the gateway, serves until ctx ends, then drains and closes.
func run(ctx context.Context, cfg gwconfig.Config, logger *slog.Logger) error {
	gw, err := build(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer gw.close()
	lns, err := gw.listen()
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return gw.serve(ctx, lns)
}
