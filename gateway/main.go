// Command gateway is HashInsight's REST edge: it serves every service's
// REST routes (grpc-gateway) by calling the services over mutual TLS, the
// edge collectors' upload routes, health and operations endpoints and the
// merged OpenAPI document, and exports Prometheus metrics on a separate
// port.
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
	logger, err := hilog.New(os.Stdout, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return config.Exit(err, os.Stderr)
	}
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
