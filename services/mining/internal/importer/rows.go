package importer

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashinsight/platform/pkg/ident"
	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// Columns of an import file. The first five are required in the header (efficiency may be
// empty in a row: it is then derived from power_w / hashrate_th).
const (
	colName       = "name"
	colModel      = "model"
	colHashrate   = "hashrate_th"
	colPower      = "power_w"
	colEfficiency = "efficiency"
	colCustomer   = "customer_id"
	colSite       = "site"
	colSerial     = "serial"
)

// Limits shared with CreateMiner (the proto's rules and the miners table's checks).
const (
	maxTextLen    = 128
	maxHashrateTH = 10000
	maxPowerW     = 100000
	maxEfficiency = 5000
)

var (
	requiredColumns = []string{colName, colModel, colHashrate, colPower, colEfficiency}
	optionalColumns = []string{colCustomer, colSite, colSerial}
)

// rowError is one problem of the file: a 1-based line, the column ("" for the whole line) and
// why.
type rowError struct {
	line   int64
	column string
	reason string
}

// header maps column names to field positions.
type header struct {
	pos    map[string]int
	fields int
}

// has reports whether the file has column c.
func (h header) has(c string) bool { _, ok := h.pos[c]; return ok }

// parseHeader reads the header line's fields; problems are reported on line.
func parseHeader(line int64, fields []string) (header, []rowError) {
	h := header{pos: make(map[string]int, len(fields)), fields: len(fields)}
	var errs []rowError
	known := map[string]bool{}
	for _, c := range requiredColumns {
		known[c] = true
	}
	for _, c := range optionalColumns {
		known[c] = true
	}
	for i, f := range fields {
		name := strings.ToLower(strings.TrimSpace(f))
		switch {
		case !known[name]:
			errs = append(errs, rowError{line, clip(f), fmt.Sprintf("unknown column; the header is %s plus optionally %s",
				strings.Join(requiredColumns, ","), strings.Join(optionalColumns, ","))})
		case h.has(name):
			errs = append(errs, rowError{line, name, "column given twice"})
		default:
			h.pos[name] = i
		}
	}
	for _, c := range requiredColumns {
		if !h.has(c) {
			errs = append(errs, rowError{line, c, "required column missing from the header"})
		}
	}
	return h, errs
}

// row is a valid data row, ready for the staging table.
type row struct {
	line       int64
	name       string
	modelID    string
	hashrateTH float64
	powerW     float64
	efficiency float64
	customerID string // "" for none
	site       string
	serial     string // "" for none
}

// rowChecker validates data rows against the header, the catalogue and the caller's scope.
type rowChecker struct {
	h      header
	models map[string]string // lower-case model name → id
	scope  platform.Scope
}

// check turns a record's fields into a row, or reports every problem of the row.
func (c *rowChecker) check(line int64, fields []string) (row, []rowError) {
	if len(fields) != c.h.fields {
		return row{}, []rowError{{line, "", fmt.Sprintf("has %d fields, the header has %d", len(fields), c.h.fields)}}
	}
	var errs []rowError
	bad := func(col, reason string) { errs = append(errs, rowError{line, col, reason}) }
	get := func(col string) string {
		if i, ok := c.h.pos[col]; ok {
			return strings.Trim(fields[i], " ")
		}
		return ""
	}
	r := row{line: line}

	text := func(col string, required bool) string {
		v := get(col)
		switch {
		case v == "" && required:
			bad(col, "required")
		case utf8.RuneCountInString(v) > maxTextLen:
			bad(col, fmt.Sprintf("longer than %d characters", maxTextLen))
		case isFormula(v):
			bad(col, fmt.Sprintf("starts with %q, which spreadsheets evaluate as a formula", v[:1]))
		default:
			return v
		}
		return ""
	}
	r.name = text(colName, true)
	if model := text(colModel, true); model != "" {
		id, ok := c.models[strings.ToLower(model)]
		if !ok {
			bad(colModel, fmt.Sprintf("unknown model %q (not in the catalogue)", clip(model)))
		}
		r.modelID = id
	}
	r.site = text(colSite, false)
	r.serial = text(colSerial, false)

	var okH, okP bool
	r.hashrateTH, okH = number(get(colHashrate), maxHashrateTH, "TH/s", true, func(reason string) { bad(colHashrate, reason) })
	r.powerW, okP = number(get(colPower), maxPowerW, "W", true, func(reason string) { bad(colPower, reason) })
	eff, okE := number(get(colEfficiency), maxEfficiency, "J/TH", false, func(reason string) { bad(colEfficiency, reason) })
	if okH && okP && okE {
		e, err := platform.Efficiency(r.hashrateTH, r.powerW, eff)
		switch {
		case err != nil:
			bad(colEfficiency, err.Error())
		case e > maxEfficiency:
			bad(colEfficiency, fmt.Sprintf("power_w / hashrate_th is %.2f J/TH, above %d", e, maxEfficiency))
		}
		r.efficiency = e
	}

	customer := get(colCustomer)
	switch {
	case customer == "" && !c.scope.All:
		bad(colCustomer, "required: you may only import miners of your customers")
	case customer == "":
	case !ident.IsUUID(customer):
		bad(colCustomer, "must be a UUID")
	case !c.scope.Sees(strings.ToLower(customer)):
		bad(colCustomer, "not one of your customers")
	default:
		r.customerID = strings.ToLower(customer)
	}
	return r, errs
}

// isFormula reports whether a text cell starts with a character that makes spreadsheets
// evaluate it (= + - @) or with a tab or carriage return, which some use to hide one.
func isFormula(v string) bool {
	return v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0]))
}

// number parses a cell as a finite decimal number in (0, upper]. Empty is 0 and allowed unless
// required. It reports problems through bad and says whether the value is usable.
func number(v string, upper float64, unit string, required bool, bad func(string)) (float64, bool) {
	if v == "" {
		if required {
			bad("required")
			return 0, false
		}
		return 0, true
	}
	if strings.Trim(v, "0123456789.eE+-") != "" {
		bad(fmt.Sprintf("must be a number, got %q", clip(v)))
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	switch {
	case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
		bad(fmt.Sprintf("must be a number, got %q", clip(v)))
	case f <= 0:
		bad("must be greater than 0")
	case f > upper:
		bad(fmt.Sprintf("must be at most %g %s", upper, unit))
	default:
		return f, true
	}
	return 0, false
}

// clip shortens a cell value quoted in a reason.
func clip(v string) string {
	const maxRunes = 40
	if utf8.RuneCountInString(v) <= maxRunes {
		return v
	}
	return string([]rune(v)[:maxRunes]) + "…"
}
