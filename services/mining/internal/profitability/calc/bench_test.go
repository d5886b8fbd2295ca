package calc

import (
	"math/rand/v2"
	"testing"
)

// fleet returns n miners with hashrates of 13.5–320 TH/s and 15–35 J/TH, as struct of arrays.
func fleet(n int) (hs, ws []float64) {
	rng := rand.New(rand.NewPCG(7, 11))
	hs, ws = make([]float64, n), make([]float64, n)
	for i := range hs {
		hs[i] = 13.5 + rng.Float64()*306.5
		ws[i] = hs[i] * (15 + rng.Float64()*20)
	}
	return hs, ws
}

func benchCalculator(b *testing.B) *Calculator {
	c, err := New(Market{BTCPriceCents: 9_500_000, Difficulty: 1.6e14, BlockSubsidySats: 312_500_000, AvgFeesPerBlockSats: 2_000_000},
		params(b, "0.065", "2.5", "98"))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkBatch1M is the totals-only batch over 1,000,000 miners in memory (target ≤ 200 ms).
func BenchmarkBatch1M(b *testing.B) {
	c := benchCalculator(b)
	hs, ws := fleet(1_000_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Sum(hs, ws, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatch1MResults also stores the 1,000,000 per-miner results (preallocated).
func BenchmarkBatch1MResults(b *testing.B) {
	c := benchCalculator(b)
	hs, ws := fleet(1_000_000)
	out := make([]Result, len(hs))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Sum(hs, ws, out); err != nil {
			b.Fatal(err)
		}
	}
}
