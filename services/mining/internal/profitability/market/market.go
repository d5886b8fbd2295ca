// Package market supplies the market figures of a profitability calculation: the latest
// analytics snapshot (GetLatestMarketData), cached briefly, fetched by one caller at a time and
// behind a circuit breaker; when analytics does not answer, the offline snapshot bundled in the
// binary (offline.json).
package market

import (
	"context"
	_ "embed" // the offline snapshot
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/hashinsight/platform/pkg/breaker"
	analyticsv1 "github.com/hashinsight/platform/proto/hashinsight/analytics/v1"
	"github.com/hashinsight/platform/services/mining/internal/profitability/calc"
)

// Sources of a Snapshot (MarketInputs.source).
const (
	SourceAnalytics = "analytics"
	SourceOffline   = "offline-default"
	SourceRequest   = "request"
)

// CurrentSubsidySats is the block subsidy since the April 2024 halving (3.125 BTC), used when a
// snapshot does not state one.
const CurrentSubsidySats = 312_500_000

// Snapshot is one set of market figures with its provenance.
type Snapshot struct {
	Market             calc.Market
	NetworkHashrateEHs float64
	// Source is SourceAnalytics, SourceOffline or SourceRequest, possibly followed by provider
	// names in parentheses ("analytics (price coingecko; difficulty mempool.space)").
	Source string
	// AsOf is when the figures were observed.
	AsOf time.Time
}

//go:embed offline.json
var offlineJSON []byte

// offlineFile is the layout of offline.json.
type offlineFile struct {
	AsOf                string  `json:"as_of"`
	BTCPriceUSDCents    int64   `json:"btc_price_usd_cents"`
	Difficulty          float64 `json:"difficulty"`
	BlockSubsidySats    int64   `json:"block_subsidy_sats"`
	AvgFeesPerBlockSats int64   `json:"avg_fees_per_block_sats"`
	NetworkHashrateEHs  float64 `json:"network_hashrate_ehs"`
	Provenance          string  `json:"provenance"`
}

// Offline returns the bundled offline snapshot (see offline.json for its figures and sources).
func Offline() (Snapshot, error) {
	var f offlineFile
	if err := json.Unmarshal(offlineJSON, &f); err != nil {
		return Snapshot{}, fmt.Errorf("offline market snapshot: %w", err)
	}
	asOf, err := time.Parse(time.RFC3339, f.AsOf)
	if err != nil {
		return Snapshot{}, fmt.Errorf("offline market snapshot as_of: %w", err)
	}
	s := Snapshot{
		Market: calc.Market{
			BTCPriceCents: f.BTCPriceUSDCents, Difficulty: f.Difficulty,
			BlockSubsidySats: f.BlockSubsidySats, AvgFeesPerBlockSats: f.AvgFeesPerBlockSats,
		},
		NetworkHashrateEHs: f.NetworkHashrateEHs,
		Source:             SourceOffline,
		AsOf:               asOf,
	}
	if _, err := calc.New(s.Market, calc.Params{}); err != nil {
		return Snapshot{}, fmt.Errorf("offline market snapshot: %w", err)
	}
	return s, nil
}

// NetworkHashrateEHs is the network hashrate implied by difficulty: D × 2^32 hashes per
// 600-second block, in EH/s.
func NetworkHashrateEHs(difficulty float64) float64 {
	return difficulty * 4294967296 / 600 / 1e18
}

// FromAnalytics converts an analytics snapshot, refusing figures a calculation cannot use.
func FromAnalytics(s *analyticsv1.MarketSnapshot) (Snapshot, error) {
	if s == nil {
		return Snapshot{}, errors.New("analytics answered no snapshot")
	}
	m := calc.Market{
		BTCPriceCents:       s.GetBtcPriceUsdCents(),
		Difficulty:          s.GetDifficulty(),
		BlockSubsidySats:    s.GetBlockSubsidySats(),
		AvgFeesPerBlockSats: s.GetAvgFeesPerBlockSats(),
	}
	if m.BlockSubsidySats == 0 {
		m.BlockSubsidySats = CurrentSubsidySats
	}
	if m.BTCPriceCents <= 0 {
		return Snapshot{}, errors.New("analytics snapshot has no BTC price")
	}
	if _, err := calc.New(m, calc.Params{}); err != nil {
		return Snapshot{}, fmt.Errorf("analytics snapshot: %w", err)
	}
	hashrate := s.GetNetworkHashrateEhs()
	if !(hashrate > 0) || math.IsInf(hashrate, 0) {
		hashrate = NetworkHashrateEHs(m.Difficulty)
	}
	out := Snapshot{Market: m, NetworkHashrateEHs: hashrate, Source: SourceAnalytics}
	if s.GetObservedAt() != nil {
		out.AsOf = s.GetObservedAt().AsTime()
	}
	switch {
	case s.GetOfflineDefault():
		out.Source += " (" + SourceOffline + ")"
	default:
		var providers []string
		for _, p := range [][2]string{
			{"price", s.GetBtcPriceSource()}, {"difficulty", s.GetDifficultySource()},
			{"hashrate", s.GetNetworkHashrateSource()}, {"fees", s.GetFeesSource()},
		} {
			if p[1] != "" {
				providers = append(providers, p[0]+" "+p[1])
			}
		}
		if len(providers) > 0 {
			out.Source += " (" + strings.Join(providers, "; ") + ")"
		}
	}
	return out, nil
}

// FetchFunc fetches the latest analytics snapshot.
type FetchFunc func(ctx context.Context) (*analyticsv1.MarketSnapshot, error)

// Options configure a Provider.
type Options struct {
	// Fetch asks analytics; nil means analytics is not configured (always offline).
	Fetch FetchFunc
	// Breaker guards Fetch; nil means none.
	Breaker *breaker.Breaker
	// Timeout bounds one fetch (default 1 s).
	Timeout time.Duration
	// TTL is how long an analytics snapshot is reused (default 30 s).
	TTL    time.Duration
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Provider answers the latest market snapshot. It is safe for concurrent use.
type Provider struct {
	o       Options
	offline Snapshot
	group   singleflight.Group

	mu      sync.Mutex
	cached  Snapshot
	expires time.Time
}

// NewProvider returns a Provider over o.
func NewProvider(o Options) (*Provider, error) {
	offline, err := Offline()
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Provider{o: o, offline: offline}, nil
}

// Latest returns the analytics snapshot (cached up to TTL) or, when analytics does not answer
// usable figures, the offline snapshot. It does not fail: a calculation always has figures, and
// the snapshot's Source says which.
func (p *Provider) Latest(ctx context.Context) Snapshot {
	if p.o.Fetch == nil {
		return p.offline
	}
	if s, ok := p.fresh(); ok {
		return s
	}
	// One fetch at a time; concurrent callers share its answer. The fetch does not depend on
	// one caller's cancellation.
	ch := p.group.DoChan("latest", func() (any, error) {
		if s, ok := p.fresh(); ok { // a flight that ended since this caller looked
			return s, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.o.Timeout)
		defer cancel()
		s, err := p.fetch(fctx)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.cached, p.expires = s, p.o.Now().Add(p.o.TTL)
		p.mu.Unlock()
		return s, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			p.o.Logger.DebugContext(ctx, "analytics market data unavailable; using the offline snapshot", slog.Any("error", res.Err))
			return p.offline
		}
		return res.Val.(Snapshot)
	case <-ctx.Done():
		return p.offline
	}
}

// fresh returns the cached analytics snapshot while it is within its TTL.
func (p *Provider) fresh() (Snapshot, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cached, p.o.Now().Before(p.expires)
}

func (p *Provider) fetch(ctx context.Context) (Snapshot, error) {
	call := func(ctx context.Context) (Snapshot, error) {
		raw, err := p.o.Fetch(ctx)
		if err != nil {
			return Snapshot{}, fmt.Errorf("get latest market data: %w", err)
		}
		return FromAnalytics(raw)
	}
	if p.o.Breaker == nil {
		return call(ctx)
	}
	return breaker.Do(ctx, p.o.Breaker, call)
}
