// Package collectorwire decodes the upload body of the HashInsight Remote edge collector
// (DESIGN.md §5): an optionally gzip-compressed JSON array of miner records, in the flat
// cgminer form (hashrate_ghs, temperature_avg, …) or the board-level snapshot form
// (hashrate_total_ths, power_watts, boards[], …). Decoding is bounded: the decompressed body and
// the record count have limits, so a small compressed body cannot expand without end.
package collectorwire

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Default limits of Decode.
const (
	// DefaultMaxRecords is the record limit of one upload. DESIGN.md §5 says "up to 1,000 a
	// request by default"; the collector sends at most that many, so more is refused.
	DefaultMaxRecords = 1000
	// DefaultMaxDecompressedBytes bounds the decompressed body. A flat record is about 700
	// bytes and a board-level snapshot about 2 KB, so 1,000 records fit in 8 MiB with ample room
	// for chip-temperature arrays; a gzip bomb stops here.
	DefaultMaxDecompressedBytes = 8 << 20
	// MaxMinerIDLen bounds a record's miner_id (the length of a miner's serial and name).
	MaxMinerIDLen = 128
	// maxTextLen bounds the other text fields of a record; longer values are cut.
	maxTextLen = 2000
	// maxArrayLen bounds the per-chip temperature and fan arrays.
	maxArrayLen = 1024
)

// Limits bound a decode. Zero fields take the defaults.
type Limits struct {
	MaxRecords           int
	MaxDecompressedBytes int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultMaxRecords
	}
	if l.MaxDecompressedBytes <= 0 {
		l.MaxDecompressedBytes = DefaultMaxDecompressedBytes
	}
	return l
}

// Record is one decoded miner snapshot, in the platform's units.
type Record struct {
	MinerID         string
	MinerKey        string
	ObservedAt      time.Time // UTC
	Online          bool
	HashrateGHs     float64
	Hashrate5sGHs   float64
	TempAvgC        float64
	TempMaxC        float64
	TempChipsC      []float64
	FanSpeedsRPM    []float64
	FrequencyAvgMHz float64
	AcceptedShares  int64
	RejectedShares  int64
	HardwareErrors  int64
	UptimeSeconds   int64
	PowerW          float64
	EfficiencyJTH   float64
	PoolURL         string
	WorkerName      string
	FirmwareVersion string
	ErrorType       string
	ErrorMessage    string
}

// Error is a payload the decoder refuses. Field names what is wrong ("body", "body[3].timestamp")
// and Reason says how, in words fit for the client.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return e.Field + ": " + e.Reason }

func bad(field, format string, args ...any) error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Decode decodes body, compressed as contentEncoding says ("gzip", "identity" or ""). Every
// refusal is an *Error; no partial result is returned with one.
func Decode(body []byte, contentEncoding string, lim Limits) ([]Record, error) {
	lim = lim.withDefaults()
	raw := body
	switch strings.ToLower(strings.TrimSpace(contentEncoding)) {
	case "", "identity":
		if int64(len(raw)) > lim.MaxDecompressedBytes {
			return nil, bad("body", "larger than %d bytes", lim.MaxDecompressedBytes)
		}
	case "gzip":
		var err error
		if raw, err = gunzip(body, lim.MaxDecompressedBytes); err != nil {
			return nil, err
		}
	default:
		return nil, bad("content_encoding", "must be gzip or identity")
	}
	return decodeJSON(raw, lim)
}

// gunzip decompresses body, refusing more than limit bytes of output.
func gunzip(body []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, bad("body", "not valid gzip: %v", err)
	}
	defer zr.Close()
	var out bytes.Buffer
	n, err := io.Copy(&out, io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, bad("body", "not valid gzip: %v", err)
	}
	if n > limit {
		return nil, bad("body", "decompresses to more than %d bytes", limit)
	}
	return out.Bytes(), nil
}

// decodeJSON decodes the array in one pass; when that fails it decodes again record by record
// (decodeEach) to name what is wrong.
func decodeJSON(raw []byte, lim Limits) ([]Record, error) {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return decodeEach(raw, lim)
	}
	var ws []*wireRecord
	if err := json.Unmarshal(raw, &ws); err != nil {
		return decodeEach(raw, lim)
	}
	if len(ws) > lim.MaxRecords {
		return nil, bad("body", "more than %d records", lim.MaxRecords)
	}
	out := make([]Record, len(ws))
	for i, w := range ws {
		field := fmt.Sprintf("body[%d]", i)
		if w == nil {
			return nil, bad(field, "must be a JSON object")
		}
		r, err := w.record(field)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

// decodeEach decodes the array record by record, stopping at the first fault.
func decodeEach(raw []byte, lim Limits) ([]Record, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, bad("body", "not JSON: %v", trimJSONErr(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, bad("body", "must be a JSON array of records")
	}
	var out []Record
	for i := 0; dec.More(); i++ {
		if i >= lim.MaxRecords {
			return nil, bad("body", "more than %d records", lim.MaxRecords)
		}
		field := fmt.Sprintf("body[%d]", i)
		raw, err := nextValue(dec)
		if err != nil {
			return nil, bad(field, "not JSON: %v", trimJSONErr(err))
		}
		if raw[0] != '{' {
			return nil, bad(field, "must be a JSON object")
		}
		var w wireRecord
		if err := json.Unmarshal(raw, &w); err != nil {
			return nil, recordError(field, raw, err)
		}
		r, err := w.record(field)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("body", "not JSON: %v", trimJSONErr(err))
	}
	if dec.More() {
		return nil, bad("body", "data after the JSON array")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("body", "data after the JSON array")
	}
	return out, nil
}

func trimJSONErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func jsonKind(k string) string {
	switch k {
	case "struct", "map":
		return "JSON object"
	case "slice":
		return "JSON array"
	case "string":
		return "string"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}

// wireRecord is a record as the collector sends it, in either form. Unknown fields are ignored;
// numbers may be integers or floats (counters are converted after decoding).
type wireRecord struct {
	MinerID   text   `json:"miner_id"`
	MinerKey  string `json:"miner_key"`
	IPAddress string `json:"ip_address"`
	Timestamp string `json:"timestamp"`
	Online    *bool  `json:"online"`

	// Flat (cgminer) form.
	HashrateGHs     *float64  `json:"hashrate_ghs"`
	Hashrate5sGHs   float64   `json:"hashrate_5s_ghs"`
	TempAvg         float64   `json:"temperature_avg"`
	TempMax         float64   `json:"temperature_max"`
	TempChips       []float64 `json:"temperature_chips"`
	FanSpeeds       []float64 `json:"fan_speeds"`
	FrequencyAvg    float64   `json:"frequency_avg"`
	AcceptedShares  float64   `json:"accepted_shares"`
	RejectedShares  float64   `json:"rejected_shares"`
	HardwareErrors  float64   `json:"hardware_errors"`
	UptimeSeconds   float64   `json:"uptime_seconds"`
	PowerConsump    float64   `json:"power_consumption"`
	Efficiency      float64   `json:"efficiency"`
	PoolURL         string    `json:"pool_url"`
	WorkerName      string    `json:"worker_name"`
	FirmwareVersion string    `json:"firmware_version"`
	ErrorType       string    `json:"error_type"`
	ErrorMessage    string    `json:"error_message"`

	// Board-level snapshot form.
	HashrateTotalTHs *float64    `json:"hashrate_total_ths"`
	Hashrate5sTHs    float64     `json:"hashrate_5s_ths"`
	PowerWatts       float64     `json:"power_watts"`
	EfficiencyJTHs   float64     `json:"efficiency_jths"`
	TempAvgC         float64     `json:"temp_avg_c"`
	TempMaxC         float64     `json:"temp_max_c"`
	FanSpeedsRPM     []float64   `json:"fan_speeds_rpm"`
	Boards           []wireBoard `json:"boards"`
	PoolUser         string      `json:"pool_user"`
	SharesAccepted   float64     `json:"shares_accepted"`
	SharesRejected   float64     `json:"shares_rejected"`
	Firmware         string      `json:"firmware"`
}

// wireBoard is one hash board of a board-level snapshot.
type wireBoard struct {
	HashrateTHs  float64 `json:"hashrate_ths"`
	TemperatureC float64 `json:"temperature_c"`
	FrequencyMHz float64 `json:"frequency_mhz"`
}

func (w *wireRecord) record(field string) (Record, error) {
	id := strings.TrimSpace(string(w.MinerID))
	switch {
	case id == "":
		return Record{}, bad(field+".miner_id", "is required")
	case len(id) > MaxMinerIDLen:
		return Record{}, bad(field+".miner_id", "longer than %d bytes", MaxMinerIDLen)
	}
	if w.Timestamp == "" {
		return Record{}, bad(field+".timestamp", "is required")
	}
	ts, err := ParseTimestamp(w.Timestamp)
	if err != nil {
		return Record{}, bad(field+".timestamp", "%v", err)
	}
	r := Record{
		MinerID:         id,
		MinerKey:        cut(w.MinerKey),
		ObservedAt:      ts,
		Online:          w.Online == nil || *w.Online,
		Hashrate5sGHs:   w.Hashrate5sGHs,
		TempAvgC:        w.TempAvg,
		TempMaxC:        w.TempMax,
		TempChipsC:      capped(w.TempChips),
		FanSpeedsRPM:    capped(w.FanSpeeds),
		FrequencyAvgMHz: w.FrequencyAvg,
		PowerW:          w.PowerConsump,
		EfficiencyJTH:   w.Efficiency,
		PoolURL:         cut(w.PoolURL),
		WorkerName:      cut(w.WorkerName),
		FirmwareVersion: cut(w.FirmwareVersion),
		ErrorType:       cut(w.ErrorType),
		ErrorMessage:    cut(w.ErrorMessage),
	}
	if r.MinerKey == "" {
		r.MinerKey = cut(w.IPAddress)
	}
	ints := []struct {
		name string
		v    float64
		dst  *int64
	}{
		{"accepted_shares", w.AcceptedShares, &r.AcceptedShares},
		{"rejected_shares", w.RejectedShares, &r.RejectedShares},
		{"hardware_errors", w.HardwareErrors, &r.HardwareErrors},
		{"uptime_seconds", w.UptimeSeconds, &r.UptimeSeconds},
	}
	if w.HashrateGHs != nil {
		r.HashrateGHs = *w.HashrateGHs
	} else if w.HashrateTotalTHs != nil || len(w.Boards) > 0 {
		w.boardForm(&r)
		ints[0].v, ints[0].name = w.SharesAccepted, "shares_accepted"
		ints[1].v, ints[1].name = w.SharesRejected, "shares_rejected"
	}
	for _, f := range ints {
		n, ok := toInt(f.v)
		if !ok {
			return Record{}, bad(field+"."+f.name, "must be an integer between 0 and %d", int64(math.MaxInt64))
		}
		*f.dst = n
	}
	if r.HashrateGHs < 0 || r.Hashrate5sGHs < 0 {
		return Record{}, bad(field+".hashrate_ghs", "must not be negative")
	}
	return r, nil
}

// boardForm fills r from the board-level snapshot fields (TH/s become GH/s).
func (w *wireRecord) boardForm(r *Record) {
	var total float64
	if w.HashrateTotalTHs != nil {
		total = *w.HashrateTotalTHs
	}
	var boardSum, freqSum float64
	var freqN int
	boards := w.Boards
	if len(boards) > maxArrayLen {
		boards = boards[:maxArrayLen]
	}
	for _, b := range boards {
		boardSum += b.HashrateTHs
		if b.TemperatureC > 0 {
			r.TempChipsC = append(r.TempChipsC, b.TemperatureC)
		}
		if b.FrequencyMHz > 0 {
			freqSum += b.FrequencyMHz
			freqN++
		}
	}
	if total == 0 {
		total = boardSum
	}
	r.HashrateGHs = total * 1000
	r.Hashrate5sGHs = w.Hashrate5sTHs * 1000
	r.PowerW = w.PowerWatts
	r.EfficiencyJTH = w.EfficiencyJTHs
	r.TempAvgC = w.TempAvgC
	r.TempMaxC = w.TempMaxC
	if len(w.FanSpeedsRPM) > 0 {
		r.FanSpeedsRPM = capped(w.FanSpeedsRPM)
	}
	if freqN > 0 {
		r.FrequencyAvgMHz = freqSum / float64(freqN)
	}
	if r.WorkerName == "" {
		r.WorkerName = cut(w.PoolUser)
	}
	if r.FirmwareVersion == "" {
		r.FirmwareVersion = cut(w.Firmware)
	}
}

// toInt converts a JSON number to a non-negative int64 (fractions are truncated: some
// collectors send counters as floats).
func toInt(f float64) (int64, bool) {
	if f < 0 || f >= math.MaxInt64 || math.IsNaN(f) {
		return 0, false
	}
	return int64(f), true
}

func cut(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) > maxTextLen {
		s = strings.ToValidUTF8(s[:maxTextLen], "")
	}
	return s
}

// Timestamps outside [minTime, maxTime) are refused: they are clock errors, not observations.
var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// naiveLayouts are the offset-less forms Python's datetime.isoformat() produces (the fraction
// is absent when zero), and the same with a space separator (str(datetime)).
var naiveLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
}

// ParseTimestamp parses a record timestamp: naive ISO-8601 (taken as UTC) with an optional
// fraction, or RFC 3339 with an offset or Z. The result is UTC.
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	var (
		t   time.Time
		err error
	)
	if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
		parsed := false
		for _, layout := range naiveLayouts {
			if t, err = time.ParseInLocation(layout, s, time.UTC); err == nil {
				parsed = true
				break
			}
		}
		if !parsed {
			return time.Time{}, fmt.Errorf("%q is not an ISO-8601 timestamp such as 2026-11-24T20:41:51.795363", clip(s))
		}
	}
	t = t.UTC()
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, fmt.Errorf("%q is outside the years 2000-2099", clip(s))
	}
	return t, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// text is a JSON string; null is "". Numbers are accepted and kept as written (collectors send
// some ids as numbers).
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*t = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
		return nil
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*t = text(b)
		return nil
	}
	return &fieldErr{reason: "must be a string"}
}

// capped cuts a per-chip or per-fan array at maxArrayLen values.
func capped(a []float64) []float64 {
	if len(a) > maxArrayLen {
		return a[:maxArrayLen]
	}
	return a
}

// fieldErr is an unmarshal error of a custom type, with a reason for the client.
type fieldErr struct {
	reason string
}

func (e *fieldErr) Error() string { return e.reason }

// nextValue returns the next JSON value of dec as raw bytes.
func nextValue(dec *json.Decoder) (json.RawMessage, error) {
	var raw json.RawMessage
	err := dec.Decode(&raw)
	return raw, err
}

// recordError names what is wrong with the record raw at field, which json.Unmarshal refused
// with err.
func recordError(field string, raw json.RawMessage, err error) error {
	var te *json.UnmarshalTypeError
	var fe *fieldErr
	switch {
	case errors.As(err, &te) && te.Field != "":
		name := te.Field
		if i := strings.IndexByte(name, '.'); i > 0 {
			name = name[:i] // boards.0.hashrate_ths → boards
		}
		return bad(field+"."+name, "must be a %s", jsonKind(te.Type.Kind().String()))
	case errors.As(err, &fe):
		return bad(field+".miner_id", "%s", fe.reason)
	}
	return bad(field, "not a valid record: %v", trimJSONErr(err))
}
