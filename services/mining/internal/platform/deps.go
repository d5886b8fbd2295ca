// Package platform holds what every part of the mining service is built from: its configuration,
// the shared dependencies (database, caches, logger, runtime), the caller's tenant scope and the
// one mapping of domain errors to gRPC statuses.
package platform

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hashinsight/platform/pkg/cache"
	"github.com/hashinsight/platform/pkg/service"
)

// Deps are the dependencies every part of the mining service is built with.
type Deps struct {
	Config Config
	DB     *pgxpool.Pool
	Logger *slog.Logger
	// Runtime gives the TLS source and Redis client for clients of other services.
	Runtime *service.Runtime
	// Miners caches miner reads by id (MinerCacheKey); every write to a miner invalidates its key
	// with InvalidateMiners.
	Miners *cache.Cache
	// Models caches catalogue reads; every catalogue write clears it with InvalidateModels.
	Models *cache.Cache
}

// MinerCacheKey is the Miners cache key of miner id.
func MinerCacheKey(id string) string { return "miner:" + id }

// InvalidateMiners drops the cached reads of the miners with ids. A failure is logged, not
// returned: the write it follows has committed, and the cache drops keys it could not delete
// in Redis as soon as Redis answers again.
func (d *Deps) InvalidateMiners(ctx context.Context, ids ...string) {
	if d.Miners == nil || len(ids) == 0 {
		return
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = MinerCacheKey(id)
	}
	if err := d.Miners.Delete(ctx, keys...); err != nil {
		d.Logger.WarnContext(ctx, "miner cache invalidation failed", slog.Int("miners", len(ids)), slog.Any("error", err))
	}
}

// InvalidateAllMiners drops every cached miner read (after a set-based write that touched miners
// it did not list one by one).
func (d *Deps) InvalidateAllMiners(ctx context.Context) {
	if d.Miners == nil {
		return
	}
	if err := d.Miners.Clear(ctx); err != nil {
		d.Logger.WarnContext(ctx, "miner cache clear failed", slog.Any("error", err))
	}
}

// InvalidateModels drops every cached catalogue read.
func (d *Deps) InvalidateModels(ctx context.Context) {
	if d.Models == nil {
		return
	}
	if err := d.Models.Clear(ctx); err != nil {
		d.Logger.WarnContext(ctx, "model cache clear failed", slog.Any("error", err))
	}
}
