package market

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	analyticsv1 "github.com/hashinsight/platform/proto/hashinsight/analytics/v1"
	"github.com/hashinsight/platform/services/mining/internal/profitability/calc"
)

func TestOffline(t *testing.T) {
	s, err := Offline()
	if err != nil {
		t.Fatal(err)
	}
	if s.Source != SourceOffline || s.AsOf.IsZero() || s.Market.BlockSubsidySats != 312_500_000 ||
		s.Market.BTCPriceCents <= 0 || s.Market.Difficulty <= 0 {
		t.Fatalf("offline snapshot %+v", s)
	}
	// The stated network hashrate agrees with the difficulty (D × 2^32 / 600 s).
	if d := NetworkHashrateEHs(s.Market.Difficulty) - s.NetworkHashrateEHs; d > 0.01 || d < -0.01 {
		t.Fatalf("network hashrate %v EH/s, difficulty implies %v", s.NetworkHashrateEHs, NetworkHashrateEHs(s.Market.Difficulty))
	}
	c, err := calc.New(s.Market, calc.Params{UptimePercent: calc.DecimalFromUnits(100 * calc.Scale)})
	if err != nil {
		t.Fatal(err)
	}
	// Late-2026 hashprice in the plausible band (a few US cents per TH/s per day).
	if hp := c.Hashprice(); hp < 0.02 || hp > 0.08 {
		t.Fatalf("hashprice %v USD/TH/day", hp)
	}
}

func snapshot() *analyticsv1.MarketSnapshot {
	return &analyticsv1.MarketSnapshot{
		BtcPriceUsdCents: 10_000_000, BtcPriceSource: "coingecko",
		Difficulty: 1.5e14, DifficultySource: "mempool.space",
		AvgFeesPerBlockSats: 1_000_000, FeesSource: "mempool.space",
		BlockSubsidySats: 312_500_000,
		ObservedAt:       timestamppb.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)),
	}
}

func TestProvider(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	var calls atomic.Int32
	fail := false
	p, err := NewProvider(Options{
		Fetch: func(context.Context) (*analyticsv1.MarketSnapshot, error) {
			calls.Add(1)
			if fail {
				return nil, errors.New("analytics down")
			}
			return snapshot(), nil
		},
		TTL: 30 * time.Second,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Latest(t.Context())
	want := "analytics (price coingecko; difficulty mempool.space; fees mempool.space)"
	if s.Source != want || s.Market.BTCPriceCents != 10_000_000 || !s.AsOf.Equal(now) {
		t.Fatalf("got %+v, want source %q", s, want)
	}
	if s.NetworkHashrateEHs != NetworkHashrateEHs(1.5e14) {
		t.Fatalf("network hashrate %v not derived from the difficulty", s.NetworkHashrateEHs)
	}
	p.Latest(t.Context())
	if calls.Load() != 1 {
		t.Fatalf("%d fetches within the TTL, want 1", calls.Load())
	}
	now = now.Add(31 * time.Second)
	fail = true
	if s := p.Latest(t.Context()); s.Source != SourceOffline {
		t.Fatalf("analytics failing: source %q, want %q", s.Source, SourceOffline)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d fetches, want 2", calls.Load())
	}
}

func TestProviderCoalesces(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	p, err := NewProvider(Options{Fetch: func(context.Context) (*analyticsv1.MarketSnapshot, error) {
		calls.Add(1)
		<-release
		return snapshot(), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var started sync.WaitGroup
	for range 8 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			if s := p.Latest(t.Context()); s.Market.BTCPriceCents != 10_000_000 {
				t.Errorf("source %q", s.Source)
			}
		}()
	}
	started.Wait()
	// Let the first fetch finish only once every caller is at least about to wait; late callers
	// find the cached snapshot, so the count stays 1 either way.
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d fetches for 8 concurrent callers, want 1", calls.Load())
	}
}

func TestFromAnalyticsRefuses(t *testing.T) {
	for name, s := range map[string]*analyticsv1.MarketSnapshot{
		"nil":           nil,
		"no price":      {Difficulty: 1e14},
		"no difficulty": {BtcPriceUsdCents: 1},
	} {
		if _, err := FromAnalytics(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	s, err := FromAnalytics(&analyticsv1.MarketSnapshot{BtcPriceUsdCents: 1, Difficulty: 1, OfflineDefault: true})
	if err != nil || s.Source != "analytics (offline-default)" || s.Market.BlockSubsidySats != CurrentSubsidySats {
		t.Fatalf("offline-default from analytics: %+v, %v", s, err)
	}
}
