package inventory

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/cache"
	"github.com/hashinsight/platform/pkg/postgres/pgtest"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/platform"
	"github.com/hashinsight/platform/services/mining/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// BenchmarkGetMinerCached is GetMiner of the inventory API (no gRPC) when the miner is in the
// in-process cache: the cost per read of the cache lookup, the decoding and the tenancy check.
//
//	go test ./services/mining/internal/inventory -run '^$' -bench GetMinerCached -benchmem
func BenchmarkGetMinerCached(b *testing.B) {
	pool := pgtest.New(b, pgtest.Options{Schema: "mining", Migrations: migrations.FS, Role: true})
	d := &platform.Deps{
		DB:     pool,
		Logger: slog.New(slog.DiscardHandler),
		Miners: cache.New(cache.Options{Name: "bench-miners", L1TTL: time.Hour}),
		Models: cache.New(cache.Options{Name: "bench-models", L1TTL: time.Hour}),
	}
	api, err := New(b.Context(), d)
	if err != nil {
		b.Fatal(err)
	}
	const customer = "aaaaaaaa-0000-4000-8000-00000000000a"
	admin := authn.NewContext(context.Background(), &authn.Principal{Kind: authn.KindUser, Role: authn.RoleAdmin, AllCustomers: true})
	created, err := api.CreateMiner(admin, &miningv1.CreateMinerRequest{
		Name: "bench", Model: "Antminer S19 Pro", CustomerId: customer, HashrateTh: 110, PowerW: 3250,
	})
	if err != nil {
		b.Fatal(err)
	}
	req := &miningv1.GetMinerRequest{Id: created.GetMiner().GetId()}
	for name, ctx := range map[string]context.Context{
		"admin":  admin,
		"client": authn.NewContext(context.Background(), &authn.Principal{Kind: authn.KindUser, Role: authn.RoleClient, CustomerIDs: []string{customer}}),
	} {
		b.Run(name, func(b *testing.B) {
			if _, err := api.GetMiner(ctx, req); err != nil { // warm
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := api.GetMiner(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
