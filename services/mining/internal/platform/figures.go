package platform

import (
	"fmt"
	"math"
)

// EfficiencyTolerance is how far a given efficiency may differ from power_w / hashrate_th
// (relative), for rounding on spec sheets and in operators' spreadsheets.
const EfficiencyTolerance = 0.05

// Efficiency returns the efficiency of a miner in J/TH: power_w / hashrate_th when given is 0,
// else given after checking that it agrees with them within EfficiencyTolerance. Hashrate and
// power must already be valid (positive and finite).
func Efficiency(hashrateTH, powerW, given float64) (float64, error) {
	derived := powerW / hashrateTH
	if given == 0 {
		return roundTo(derived, 2), nil
	}
	if math.Abs(given-derived) > EfficiencyTolerance*derived {
		return 0, fmt.Errorf("%.2f J/TH disagrees with power_w / hashrate_th = %.2f J/TH by more than %.0f%%",
			given, derived, EfficiencyTolerance*100)
	}
	return given, nil
}

// roundTo rounds v to digits fraction digits.
func roundTo(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}
