// Package calc is the profitability arithmetic of DESIGN.md §5, with no I/O and no protobuf:
//
//	gross BTC/day = H × 86400 × (S + F) / (D × 2^32) × uptime      (H in H/s)
//	net BTC/day   = gross × (1 − pool fee)
//	power cost    = W / 1000 × 24 × uptime × electricity price      (USD/day)
//
// with D the network difficulty, S the block subsidy and F the average fees per block.
//
// Rounding, explicitly:
//   - BTC amounts are computed in float64 (the difficulty is itself a double) and then rounded
//     DOWN to whole satoshis. Where the float result lies within 10^-12 (relative) of a whole
//     satoshi, the floor is recomputed exactly with rational arithmetic from the inputs as given
//     (every float64 is an exact rational), so the satoshi figure is the floor of the exact
//     value, not of a float approximation of it.
//   - Revenue in cents is computed exactly in integers from the rounded net satoshis:
//     net_sats × price_cents / 10^8, rounded half to even (128-bit intermediate, no overflow).
//     It is the revenue of the satoshis actually credited.
//   - Power cost in cents is W × 24 × uptime × price / 10 rounded half to even; near a tie
//     (within 10^-12 relative) it is recomputed exactly, so ties really go to the even cent.
//   - Profit = revenue − power cost, both already rounded, so a result always adds up.
//   - Hashprice, break-even electricity price and break-even BTC price are informational decimals
//     computed in float64 from the unrounded figures and formatted with fixed fraction digits
//     (see FormatHashprice, FormatElectricity, FormatUSD).
//
// A Calculator is built once per request from the market and parameters and then applied to
// any number of miners without allocating (Sum over a struct of arrays: hashrates and powers).
package calc

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// Units and bounds.
const (
	// SatsPerBTC is the number of satoshis in one bitcoin.
	SatsPerBTC = 100_000_000
	// MaxSatsPerDay bounds the gross satoshis of one calculation (a miner or a whole batch):
	// 21 million BTC, every bitcoin there will ever be. Beyond it the market figures are absurd
	// (a difficulty near zero), and refusing keeps every sum far inside int64.
	MaxSatsPerDay = 21_000_000 * SatsPerBTC
	// MaxBTCPriceCents bounds the BTC price (10^10 cents, 100 M USD), as the API does.
	MaxBTCPriceCents = 10_000_000_000
	// MaxCentsPerDay bounds the power cost of one calculation, 10^16 USD a day.
	MaxCentsPerDay = 1_000_000_000_000_000_000

	secondsPerDay = 86400
	two32         = 4294967296.0
	hashPerTH     = 1e12
	// percentScale is 100 % in Decimal units.
	percentScale = 100 * Scale
	// relTol is the relative distance to a rounding boundary under which a float result is
	// recomputed exactly. The float path carries at most a few ulps (~10^-15) of error.
	relTol = 1e-12
)

// Market holds the network and market figures of a calculation.
type Market struct {
	BTCPriceCents       int64
	Difficulty          float64
	BlockSubsidySats    int64
	AvgFeesPerBlockSats int64
}

// Params are the operating assumptions of a calculation.
type Params struct {
	// ElectricityUSDPerKWh is the electricity price.
	ElectricityUSDPerKWh Decimal
	// PoolFeePercent is the pool fee, 0 to 100.
	PoolFeePercent Decimal
	// UptimePercent is the expected uptime, 0 to 100.
	UptimePercent Decimal
}

// FieldError is an input the calculation refuses; Field is the API field at fault
// ("market.difficulty", "params.pool_fee_percent").
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// Result is the daily economics of one miner.
type Result struct {
	// GrossSats and NetSats are rounded down; GrossBTC and NetBTC are the unrounded figures.
	GrossSats, NetSats int64
	GrossBTC, NetBTC   float64
	// Cents, rounded half to even; ProfitCents = RevenueCents − PowerCostCents.
	RevenueCents, PowerCostCents, ProfitCents int64
}

// Totals sum the results of many miners.
type Totals struct {
	Miners, Profitable                        int64
	HashrateTH, PowerW                        float64
	GrossSats, NetSats                        int64
	RevenueCents, PowerCostCents, ProfitCents int64
}

// Add adds one miner's result to t.
func (t *Totals) Add(hashrateTH, powerW float64, r Result) {
	t.Miners++
	if r.ProfitCents > 0 {
		t.Profitable++
	}
	t.HashrateTH += hashrateTH
	t.PowerW += powerW
	t.GrossSats += r.GrossSats
	t.NetSats += r.NetSats
	t.RevenueCents += r.RevenueCents
	t.PowerCostCents += r.PowerCostCents
	t.ProfitCents += r.ProfitCents
}

// Calculator applies one market and one set of parameters to miners. It is immutable and safe
// for concurrent use.
type Calculator struct {
	market Market
	params Params

	// Float factors of the fast path.
	grossSatsPerTH float64 // gross satoshis per TH/s per day, uptime included
	netSatsPerTH   float64 // the same net of pool fee
	costCentsPerW  float64 // power cost in cents per watt per day, uptime included
	uptime         float64 // fraction
	hashpriceUSD   float64 // gross USD per TH/s per day at full uptime, no pool fee

	// Exact factors of the slow path (built once, read only).
	grossRat, netRat, costRat *big.Rat
}

// New validates m and p and returns their Calculator.
func New(m Market, p Params) (*Calculator, error) {
	switch {
	case m.BTCPriceCents < 0 || m.BTCPriceCents > MaxBTCPriceCents:
		return nil, fieldErr("market.btc_price_usd_cents", "must be between 0 and 10000000000")
	case !(m.Difficulty > 0) || math.IsInf(m.Difficulty, 0):
		return nil, fieldErr("market.difficulty", "must be a positive finite number")
	case m.BlockSubsidySats < 0 || m.BlockSubsidySats > 50*SatsPerBTC:
		return nil, fieldErr("market.block_subsidy_sats", "must be between 0 and 5000000000")
	case m.AvgFeesPerBlockSats < 0 || m.AvgFeesPerBlockSats > 100*SatsPerBTC:
		return nil, fieldErr("market.avg_fees_per_block_sats", "must be between 0 and 10000000000")
	case p.PoolFeePercent.units < 0 || p.PoolFeePercent.units > percentScale:
		return nil, fieldErr("params.pool_fee_percent", "must be between 0 and 100")
	case p.UptimePercent.units < 0 || p.UptimePercent.units > percentScale:
		return nil, fieldErr("params.uptime_percent", "must be between 0 and 100")
	case p.ElectricityUSDPerKWh.units < 0:
		return nil, fieldErr("params.electricity_usd_per_kwh", "must not be negative")
	}
	c := &Calculator{market: m, params: p}
	blockSats := float64(m.BlockSubsidySats + m.AvgFeesPerBlockSats)
	fullSatsPerTH := hashPerTH * secondsPerDay * blockSats / (m.Difficulty * two32)
	c.uptime = float64(p.UptimePercent.units) / percentScale
	feeKeep := float64(percentScale-p.PoolFeePercent.units) / percentScale
	c.grossSatsPerTH = fullSatsPerTH * c.uptime
	c.netSatsPerTH = c.grossSatsPerTH * feeKeep
	// W / 1000 kW × 24 h × uptime × USD/kWh × 100 cents/USD = W × 24 × uptime × price / 10.
	c.costCentsPerW = 24 * c.uptime * p.ElectricityUSDPerKWh.Float() / 10
	c.hashpriceUSD = fullSatsPerTH / SatsPerBTC * float64(m.BTCPriceCents) / 100

	// Exact factors: gross per TH = 10^12 × 86400 × (S+F) × U / (D × 2^32 × 10^11) with U the
	// uptime in 10^-9 percent; net per TH = gross × (10^11 − fee units) / 10^11; cost per W =
	// 24 × U × P / (10^11 × 10^9 × 10) with P the price in 10^-9 USD.
	d := new(big.Rat).SetFloat64(m.Difficulty)
	num := big.NewInt(m.BlockSubsidySats + m.AvgFeesPerBlockSats)
	num.Mul(num, big.NewInt(hashPerTH*secondsPerDay/percentScale)) // 10^12 × 86400 / 10^11 = 864000
	num.Mul(num, big.NewInt(p.UptimePercent.units))
	c.grossRat = new(big.Rat).SetInt(num)
	c.grossRat.Quo(c.grossRat, d.Mul(d, big.NewRat(1<<32, 1)))
	c.netRat = new(big.Rat).Mul(c.grossRat, big.NewRat(percentScale-p.PoolFeePercent.units, percentScale))
	c.costRat = new(big.Rat).SetFrac(
		new(big.Int).Mul(big.NewInt(24*p.UptimePercent.units), big.NewInt(p.ElectricityUSDPerKWh.units)),
		new(big.Int).Mul(big.NewInt(percentScale*10), big.NewInt(Scale)))
	return c, nil
}

// Market returns the market figures of c.
func (c *Calculator) Market() Market { return c.market }

// Params returns the parameters of c.
func (c *Calculator) Params() Params { return c.params }

// Check refuses figures whose totals would leave the bounds (MaxSatsPerDay, MaxCentsPerDay):
// call it with the total hashrate and power of everything about to be computed. Within them
// every per-miner figure and every sum fits an int64.
func (c *Calculator) Check(totalHashrateTH, totalPowerW float64) error {
	if !(totalHashrateTH >= 0) || !(totalPowerW >= 0) || math.IsInf(totalHashrateTH, 0) || math.IsInf(totalPowerW, 0) {
		return fieldErr("hashrate_th", "hashrate and power must be finite and not negative")
	}
	if totalHashrateTH*c.grossSatsPerTH > MaxSatsPerDay*(1-relTol) {
		return fieldErr("market.difficulty", "gives more than 21,000,000 BTC a day for these figures")
	}
	if totalPowerW*c.costCentsPerW > MaxCentsPerDay*(1-relTol) {
		return fieldErr("params.electricity_usd_per_kwh", "gives a power cost above 10^16 USD a day for these figures")
	}
	return nil
}

// One computes one miner. It checks the bounds itself.
func (c *Calculator) One(hashrateTH, powerW float64) (Result, error) {
	if err := c.Check(hashrateTH, powerW); err != nil {
		return Result{}, err
	}
	return c.compute(hashrateTH, powerW), nil
}

// ErrLength is returned when the hashrate and power slices differ in length.
var ErrLength = errors.New("calc: hashrates and powers differ in length")

// Sum computes every miner (hashrates in TH/s, powers in W, same index same miner) and returns
// only the totals: the totals-only batch, with no per-miner allocation. When out is not nil
// (len(out) ≥ len(hashrateTH)) the per-miner results are stored there too.
//
// Large inputs are cut into fixed chunks of sumChunk miners computed on every CPU; the integer
// totals are exact sums whatever the order, and the float totals (hashrate, power) are summed
// per chunk and then in chunk order, so the answer does not depend on the number of CPUs.
func (c *Calculator) Sum(hashrateTH, powerW []float64, out []Result) (Totals, error) {
	n := len(hashrateTH)
	if len(powerW) != n || (out != nil && len(out) < n) {
		return Totals{}, ErrLength
	}
	var sumH, sumW float64
	for i := range hashrateTH {
		sumH += hashrateTH[i]
		sumW += powerW[i]
	}
	if err := c.Check(sumH, sumW); err != nil {
		return Totals{}, err
	}
	parts := (n + sumChunk - 1) / sumChunk
	if parts <= 1 {
		return c.sumRange(hashrateTH, powerW, out), nil
	}
	totals := make([]Totals, parts)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), parts) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= parts {
					return
				}
				lo, hi := i*sumChunk, min(n, (i+1)*sumChunk)
				var o []Result
				if out != nil {
					o = out[lo:hi]
				}
				totals[i] = c.sumRange(hashrateTH[lo:hi], powerW[lo:hi], o)
			}
		})
	}
	wg.Wait()
	var t Totals
	for _, p := range totals {
		t.merge(p)
	}
	return t, nil
}

// sumChunk is the number of miners one worker computes at a time.
const sumChunk = 1 << 15

// sumRange computes the miners of one chunk.
func (c *Calculator) sumRange(hashrateTH, powerW []float64, out []Result) Totals {
	var t Totals
	powerW = powerW[:len(hashrateTH)]
	for i, h := range hashrateTH {
		w := powerW[i]
		r := c.compute(h, w)
		t.Add(h, w, r)
		if out != nil {
			out[i] = r
		}
	}
	return t
}

// merge adds the totals o to t.
func (t *Totals) merge(o Totals) {
	t.Miners += o.Miners
	t.Profitable += o.Profitable
	t.HashrateTH += o.HashrateTH
	t.PowerW += o.PowerW
	t.GrossSats += o.GrossSats
	t.NetSats += o.NetSats
	t.RevenueCents += o.RevenueCents
	t.PowerCostCents += o.PowerCostCents
	t.ProfitCents += o.ProfitCents
}

// compute is the per-miner fast path; inputs must be within Check's bounds.
func (c *Calculator) compute(h, w float64) Result {
	var r Result
	r.GrossBTC = h * c.grossSatsPerTH / SatsPerBTC
	r.NetBTC = h * c.netSatsPerTH / SatsPerBTC
	r.GrossSats = floorSats(h*c.grossSatsPerTH, h, c.grossRat)
	r.NetSats = floorSats(h*c.netSatsPerTH, h, c.netRat)
	r.RevenueCents = satsToCents(r.NetSats, c.market.BTCPriceCents)
	r.PowerCostCents = c.costCents(w)
	r.ProfitCents = r.RevenueCents - r.PowerCostCents
	return r
}

// floorSats rounds v = h × factor down, exactly: near a whole satoshi it recomputes with perTH.
func floorSats(v, h float64, perTH *big.Rat) int64 {
	if v == 0 {
		return 0 // a zero factor or hashrate: exactly zero
	}
	f := math.Floor(v)
	frac, tol := v-f, v*relTol
	if frac > tol && 1-frac > tol {
		return int64(f)
	}
	return exactFloor(h, perTH)
}

//go:noinline
func exactFloor(h float64, perTH *big.Rat) int64 {
	x := new(big.Rat).SetFloat64(h)
	x.Mul(x, perTH)
	return new(big.Int).Quo(x.Num(), x.Denom()).Int64() // non-negative: truncation is the floor
}

// costCents is w × costCentsPerW rounded half to even, exactly near a tie.
func (c *Calculator) costCents(w float64) int64 {
	v := w * c.costCentsPerW
	if math.Abs(v-math.Floor(v)-0.5) > v*relTol {
		return int64(math.RoundToEven(v))
	}
	if v == 0 {
		return 0
	}
	return exactHalfEven(w, c.costRat)
}

//go:noinline
func exactHalfEven(w float64, perW *big.Rat) int64 {
	x := new(big.Rat).SetFloat64(w)
	x.Mul(x, perW)
	q, r := new(big.Int).QuoRem(x.Num(), x.Denom(), new(big.Int))
	switch r.Lsh(r, 1).Cmp(x.Denom()) {
	case 1:
		q.Add(q, big.NewInt(1))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(1))
		}
	}
	return q.Int64()
}

// satsToCents returns sats × priceCents / 10^8 rounded half to even, for sats, priceCents ≥ 0
// and a result below 2^63 (guaranteed by Check), through a 128-bit product; the common case
// (a product below 2^64) divides by the constant, which compiles to a multiplication.
func satsToCents(sats, priceCents int64) int64 {
	hi, lo := bits.Mul64(uint64(sats), uint64(priceCents))
	var q, r uint64
	if hi == 0 {
		q, r = lo/SatsPerBTC, lo%SatsPerBTC
	} else {
		q, r = bits.Div64(hi, lo, SatsPerBTC)
	}
	if r > SatsPerBTC-r || (r == SatsPerBTC-r && q&1 == 1) {
		q++
	}
	return int64(q)
}

// Hashprice returns the gross revenue in USD per TH/s per day: full uptime, before pool fee.
func (c *Calculator) Hashprice() float64 { return c.hashpriceUSD }

// BreakEvenElectricity returns the electricity price (USD/kWh) at which the miner's net revenue
// equals its power cost, from the unrounded figures; ok is false when it uses no energy (no
// power or 0 % uptime), where every price breaks even.
func (c *Calculator) BreakEvenElectricity(powerW float64, r Result) (usdPerKWh float64, ok bool) {
	kWh := powerW / 1000 * 24 * c.uptime
	if kWh == 0 {
		return 0, false
	}
	return r.NetBTC * float64(c.market.BTCPriceCents) / 100 / kWh, true
}

// BreakEvenBTCPrice returns the BTC price (USD) at which the miner's net revenue equals its
// power cost, from the unrounded figures; ok is false when it earns no bitcoin (100 % pool fee,
// 0 % uptime), where no price breaks even.
func (c *Calculator) BreakEvenBTCPrice(powerW float64, r Result) (usd float64, ok bool) {
	if r.NetBTC == 0 {
		return 0, false
	}
	costUSD := powerW * c.costCentsPerW / 100
	return costUSD / r.NetBTC, true
}

// FormatBTC formats an unrounded BTC amount with 12 fraction digits (10^-4 satoshi), rounded to
// nearest: the API's "8+ fraction digits" BTC strings.
func FormatBTC(btc float64) string { return strconv.FormatFloat(btc, 'f', 12, 64) }

// FormatHashprice formats a hashprice (USD per TH/s per day) with 8 fraction digits.
func FormatHashprice(usd float64) string { return strconv.FormatFloat(usd, 'f', 8, 64) }

// FormatElectricity formats an electricity price (USD per kWh) with 6 fraction digits.
func FormatElectricity(usd float64) string { return strconv.FormatFloat(usd, 'f', 6, 64) }

// FormatUSD formats a USD amount with 2 fraction digits.
func FormatUSD(usd float64) string { return strconv.FormatFloat(usd, 'f', 2, 64) }

// String describes c for logs.
func (c *Calculator) String() string {
	return fmt.Sprintf("calc(price=%d¢ difficulty=%g block=%d sats electricity=%s fee=%s%% uptime=%s%%)",
		c.market.BTCPriceCents, c.market.Difficulty, c.market.BlockSubsidySats+c.market.AvgFeesPerBlockSats,
		c.params.ElectricityUSDPerKWh, c.params.PoolFeePercent, c.params.UptimePercent)
}
