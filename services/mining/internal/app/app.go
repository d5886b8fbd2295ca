// Package app wires the mining service: its spec (identity, schema, ports) and the registration of its
// gRPC implementation on the shared runtime — shared dependencies → the parts (inventory, import,
// profitability, telemetry, uptime) → one composed MiningService.
package app

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hashinsight/platform/pkg/service"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/grpcapi"
	"github.com/hashinsight/platform/services/mining/internal/importer"
	"github.com/hashinsight/platform/services/mining/internal/inventory"
	"github.com/hashinsight/platform/services/mining/internal/platform"
	"github.com/hashinsight/platform/services/mining/internal/profitability"
	"github.com/hashinsight/platform/services/mining/internal/telemetry"
	"github.com/hashinsight/platform/services/mining/internal/uptime"
	"github.com/hashinsight/platform/services/mining/migrations"
)

// Spec describes the mining binary: SPIFFE identity svc/mining, schema mining, gRPC :7002, HTTP :9102.
func Spec() service.Spec {
	return service.Spec{
		Name:            "mining",
		Services:        []protoreflect.FullName{protoreflect.FullName(miningv1.MiningService_ServiceDesc.ServiceName)},
		Migrations:      migrations.FS,
		DefaultGRPCAddr: ":7002",
		DefaultHTTPAddr: ":9102",
		MaxRecvMsgBytes: 80 << 20, // ImportMinersCsv carries a CSV file of up to 64 MiB
	}
}

// Config is the mining service's own configuration.
type Config = platform.Config

// LoadConfig reads Config from environ (the process environment when nil).
func LoadConfig(environ map[string]string) (Config, error) { return platform.LoadConfig(environ) }

// Register returns the registration of the mining service configured by cfg.
func Register(cfg Config) service.RegisterFunc {
	return func(ctx context.Context, rt *service.Runtime) error {
		return register(ctx, rt, cfg)
	}
}

// L1 lifetimes of the read caches: short, because another replica's write reaches this
// process's L1 only by expiry (Redis, L2, is invalidated at once).
const (
	minerL1TTL = 2
	modelL1TTL = 10
)

func register(ctx context.Context, rt *service.Runtime, cfg Config) error {
	d := &platform.Deps{
		Config:  cfg,
		DB:      rt.DB,
		Logger:  rt.Logger,
		Runtime: rt,
		Miners:  rt.NewCache("mining-miners", minerL1TTL*time.Second, cfg.MinerCacheTTL),
		Models:  rt.NewCache("mining-models", modelL1TTL*time.Second, cfg.MinerCacheTTL),
	}
	var (
		p   grpcapi.Parts
		err error
	)
	if p.Inventory, err = inventory.New(ctx, d); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	if p.Import, err = importer.New(ctx, d); err != nil {
		return fmt.Errorf("importer: %w", err)
	}
	if p.Profitability, err = profitability.New(ctx, d); err != nil {
		return fmt.Errorf("profitability: %w", err)
	}
	if p.Telemetry, err = telemetry.New(ctx, d); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	if p.Uptime, err = uptime.New(ctx, d); err != nil {
		return fmt.Errorf("uptime: %w", err)
	}
	miningv1.RegisterMiningServiceServer(rt.GRPC(), grpcapi.New(p))
	return nil
}
