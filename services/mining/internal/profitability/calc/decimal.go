package calc

import (
	"errors"
	"math/big"
	"strconv"
	"strings"
)

// Scale is the fixed-point scale of a Decimal: 10^9, nine fraction digits (the API's decimal
// strings carry at most nine).
const Scale = 1_000_000_000

// maxDecimalUnits bounds a Decimal to 10^15 (10^6 whole units): far above any price or percent
// the API accepts, and small enough that products with the other factors stay in range.
const maxDecimalUnits = 1_000_000 * Scale

// Decimal is a non-negative decimal number with at most nine fraction digits, held exactly as an
// integer count of 10^-9 units ("0.065" is 65,000,000 units).
type Decimal struct {
	units int64
}

// DecimalFromUnits returns the Decimal of units × 10^-9.
func DecimalFromUnits(units int64) Decimal { return Decimal{units: units} }

// Units returns d in 10^-9 units.
func (d Decimal) Units() int64 { return d.units }

// Float returns d as a float64 (for the float parts of the calculation, never for money).
func (d Decimal) Float() float64 { return float64(d.units) / Scale }

// Rat returns d exactly.
func (d Decimal) Rat() *big.Rat { return big.NewRat(d.units, Scale) }

// IsZero reports whether d is 0.
func (d Decimal) IsZero() bool { return d.units == 0 }

// String formats d as a plain decimal with no trailing fraction zeros ("0.065", "100").
func (d Decimal) String() string {
	whole, frac := d.units/Scale, d.units%Scale
	if frac == 0 {
		return strconv.FormatInt(whole, 10)
	}
	f := strconv.FormatInt(frac+Scale, 10)[1:] // nine digits, zero-padded
	return strconv.FormatInt(whole, 10) + "." + strings.TrimRight(f, "0")
}

// Errors of ParseDecimal.
var (
	ErrDecimalSyntax = errors.New(`must be a plain decimal number such as "0.065" (digits, at most one point, no sign or exponent)`)
	ErrDecimalDigits = errors.New("must have at most 9 fraction digits")
	ErrDecimalRange  = errors.New("is too large")
)

// ParseDecimal parses a plain decimal string: digits with at most one decimal point inside them
// and at most nine fraction digits; no sign, exponent, spaces or separators.
func ParseDecimal(s string) (Decimal, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") || !allDigits(whole) || !allDigits(frac) {
		return Decimal{}, ErrDecimalSyntax
	}
	if len(frac) > 9 {
		return Decimal{}, ErrDecimalDigits
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 7 {
		return Decimal{}, ErrDecimalRange
	}
	var w int64
	if whole != "" {
		w, _ = strconv.ParseInt(whole, 10, 64) // at most 7 digits: cannot fail
	}
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	units := w*Scale + f
	if units > maxDecimalUnits {
		return Decimal{}, ErrDecimalRange
	}
	return Decimal{units: units}, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
