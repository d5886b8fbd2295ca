package importer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/postgres/pgtest"
	"github.com/hashinsight/platform/services/mining/internal/platform"
	"github.com/hashinsight/platform/services/mining/migrations"
)

// benchFile is a CSV file of n new miners.
func benchFile(prefix string, n int) []byte {
	var b bytes.Buffer
	b.WriteString("name,model,hashrate_th,power_w,efficiency,site,serial\n")
	for i := range n {
		fmt.Fprintf(&b, "%s-%d,Antminer S19 Pro,110,3250,,bench,%s-SN-%d\n", prefix, i, prefix, i)
	}
	return b.Bytes()
}

// BenchmarkRun imports files of 5,000 and 100,000 new miners straight into Postgres (no gRPC,
// no gateway): the importer's own share of the end-to-end figures; and re-imports 5,000
// unchanged miners in upsert mode.
//
//	go test ./services/mining/internal/importer -run '^$' -bench Run -benchtime 5x
func BenchmarkRun(b *testing.B) {
	pool := pgtest.New(b, pgtest.Options{Schema: "mining", Migrations: migrations.FS})
	d := &platform.Deps{DB: pool, Logger: slog.New(slog.DiscardHandler), Config: platform.Config{ImportMaxRows: 100_000}}
	ctx := authn.NewContext(context.Background(), &authn.Principal{Kind: authn.KindUser, Role: authn.RoleAdmin, AllCustomers: true})
	b.Run("5000-upsert-unchanged", func(b *testing.B) {
		file := benchFile("same", 5000)
		if _, _, err := run(ctx, d, bytes.NewReader(file), options{}, nil); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			res, _, err := run(ctx, d, bytes.NewReader(file), options{upsert: true}, nil)
			if err != nil || res.GetUnchangedCount() != 5000 {
				b.Fatalf("%v %v", res, err)
			}
		}
	})
	for _, n := range []int{5000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				file := benchFile(fmt.Sprintf("%d-%d", n, i), n)
				b.StartTimer()
				res, _, err := run(ctx, d, bytes.NewReader(file), options{}, nil)
				if err != nil || res.GetCreatedCount() != int64(n) {
					b.Fatalf("%v %v", res, err)
				}
			}
		})
	}
}
