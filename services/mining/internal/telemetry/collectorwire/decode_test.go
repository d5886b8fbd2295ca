package collectorwire

import (
	"bytes"
	"compress/gzip"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// flat is a record as the collector sends it (cgminer form), with an unknown field.
const flat = `{"miner_id":"SN-1","miner_key":"10.0.0.5:4028","timestamp":"2026-11-24T20:41:51.795363",
"online":true,"hashrate_ghs":110000,"hashrate_5s_ghs":109500.5,"temperature_avg":65,"temperature_max":71.5,
"temperature_chips":[60,61.5],"fan_speeds":[5400,5460],"frequency_avg":525,"accepted_shares":1200,
"rejected_shares":3.0,"hardware_errors":0,"uptime_seconds":86400,"power_consumption":3250,"efficiency":29.5,
"pool_url":"stratum+tcp://pool:3333","worker_name":"w.1","firmware_version":"fw1","error_type":"",
"error_message":"","something_new":{"x":1}}`

// board is the board-level snapshot form.
const board = `{"miner_id":"SN-2","ip_address":"10.0.0.6","timestamp":"2026-11-24T20:41:51Z","online":true,
"hashrate_total_ths":0,"hashrate_5s_ths":99.5,"power_watts":3010,"efficiency_jths":21.5,"temp_avg_c":60,
"temp_max_c":70,"fan_speeds_rpm":[5000],"boards":[{"board_index":0,"hashrate_ths":50,"temperature_c":61,
"frequency_mhz":500},{"board_index":1,"hashrate_ths":50.5,"temperature_c":62,"frequency_mhz":510}],
"pool_url":"p","pool_user":"u","shares_accepted":7,"shares_rejected":1,"uptime_seconds":5,"firmware":"f"}`

func TestDecodeForms(t *testing.T) {
	recs, err := Decode(gz(t, []byte("["+flat+","+board+"]")), "gzip", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	f := recs[0]
	wantTS := time.Date(2026, 11, 24, 20, 41, 51, 795363000, time.UTC)
	if f.MinerID != "SN-1" || !f.ObservedAt.Equal(wantTS) || f.HashrateGHs != 110000 || f.RejectedShares != 3 ||
		f.PoolURL != "stratum+tcp://pool:3333" || len(f.TempChipsC) != 2 || f.PowerW != 3250 || f.MinerKey != "10.0.0.5:4028" {
		t.Errorf("flat record %+v", f)
	}
	b := recs[1]
	if b.HashrateGHs != 100500 || b.Hashrate5sGHs != 99500 || b.PowerW != 3010 || b.WorkerName != "u" ||
		b.AcceptedShares != 7 || b.FrequencyAvgMHz != 505 || b.MinerKey != "10.0.0.6" || b.FirmwareVersion != "f" {
		t.Errorf("board record %+v", b)
	}
}

func TestDecodeEmptyAndIdentity(t *testing.T) {
	for _, tc := range []struct {
		body []byte
		enc  string
	}{{[]byte("[]"), ""}, {[]byte(" [ ] \n"), "identity"}, {gz(t, []byte("[]")), "gzip"}} {
		recs, err := Decode(tc.body, tc.enc, Limits{})
		if err != nil || len(recs) != 0 {
			t.Errorf("%q: %v %v", tc.body, recs, err)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-11-24T20:41:51.795363", time.Date(2026, 11, 24, 20, 41, 51, 795363000, time.UTC), true},
		{"2026-11-24T20:41:51", time.Date(2026, 11, 24, 20, 41, 51, 0, time.UTC), true},
		{"2026-11-24 20:41:51.5", time.Date(2026, 11, 24, 20, 41, 51, 500000000, time.UTC), true},
		{"2026-11-24T22:41:51+02:00", time.Date(2026, 11, 24, 20, 41, 51, 0, time.UTC), true},
		{"2026-11-24T20:41:51.1Z", time.Date(2026, 11, 24, 20, 41, 51, 100000000, time.UTC), true},
		{"yesterday", time.Time{}, false},
		{"2026-13-01T00:00:00", time.Time{}, false},
		{"1970-01-01T00:00:00", time.Time{}, false},
		{"1700000000", time.Time{}, false},
	}
	for _, tc := range tests {
		got, err := ParseTimestamp(tc.in)
		if (err == nil) != tc.ok || (tc.ok && !got.Equal(tc.want)) {
			t.Errorf("%q: %v %v", tc.in, got, err)
		}
	}
}

func TestDecodeRefusals(t *testing.T) {
	bomb := gz(t, bytes.Repeat([]byte(" "), 2<<20))
	many := "[" + strings.TrimSuffix(strings.Repeat(`{"miner_id":"a","timestamp":"2026-01-01T00:00:00"},`, 3), ",") + "]"
	tests := []struct {
		name  string
		body  []byte
		enc   string
		lim   Limits
		field string
	}{
		{"bad gzip", []byte("[]"), "gzip", Limits{}, "body"},
		{"truncated gzip", gz(t, []byte("[]"))[:10], "gzip", Limits{}, "body"},
		{"not JSON", []byte("hello"), "", Limits{}, "body"},
		{"object not array", []byte(`{"miner_id":"a"}`), "", Limits{}, "body"},
		{"string not array", []byte(`"x"`), "", Limits{}, "body"},
		{"empty body", nil, "", Limits{}, "body"},
		{"unterminated", []byte(`[{"miner_id":"a","timestamp":"2026-01-01T00:00:00"}`), "", Limits{}, "body"},
		{"trailing data", []byte(`[] []`), "", Limits{}, "body"},
		{"record not object", []byte(`[1]`), "", Limits{}, "body[0]"},
		{"null record", []byte(`[null]`), "", Limits{}, "body[0]"},
		{"missing miner_id", []byte(`[{"timestamp":"2026-01-01T00:00:00"}]`), "", Limits{}, "body[0].miner_id"},
		{"missing timestamp", []byte(`[{"miner_id":"a"}]`), "", Limits{}, "body[0].timestamp"},
		{"bad timestamp", []byte(`[{"miner_id":"a","timestamp":"now"}]`), "", Limits{}, "body[0].timestamp"},
		{"text hashrate", []byte(`[{"miner_id":"a","timestamp":"2026-01-01T00:00:00","hashrate_ghs":"fast"}]`), "", Limits{}, "body[0].hashrate_ghs"},
		{"negative hashrate", []byte(`[{"miner_id":"a","timestamp":"2026-01-01T00:00:00","hashrate_ghs":-1}]`), "", Limits{}, "body[0].hashrate_ghs"},
		{"negative shares", []byte(`[{"miner_id":"a","timestamp":"2026-01-01T00:00:00","accepted_shares":-1}]`), "", Limits{}, "body[0].accepted_shares"},
		{"object online", []byte(`[{"miner_id":"a","timestamp":"2026-01-01T00:00:00","online":{}}]`), "", Limits{}, "body[0].online"},
		{"text in chips", []byte(`[{"miner_id":"a","timestamp":"2026-01-01T00:00:00","temperature_chips":["x"]}]`), "", Limits{}, "body[0].temperature_chips"},
		{"long miner_id", []byte(`[{"miner_id":"` + strings.Repeat("x", 129) + `","timestamp":"2026-01-01T00:00:00"}]`), "", Limits{}, "body[0].miner_id"},
		{"too many records", []byte(many), "", Limits{MaxRecords: 2}, "body"},
		{"gzip bomb", bomb, "gzip", Limits{MaxDecompressedBytes: 1 << 20}, "body"},
		{"identity too large", bytes.Repeat([]byte(" "), 1<<20+1), "", Limits{MaxDecompressedBytes: 1 << 20}, "body"},
		{"unknown encoding", []byte("[]"), "br", Limits{}, "content_encoding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := Decode(tc.body, tc.enc, tc.lim)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, %v; want an *Error", recs, err)
			}
			if e.Field != tc.field {
				t.Errorf("field %q (%v), want %q", e.Field, err, tc.field)
			}
			if recs != nil {
				t.Errorf("records returned with an error")
			}
		})
	}
}

// FuzzDecode checks that no input panics, that a refusal is always an *Error and that accepted
// records satisfy the decoder's invariants.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("["+flat+","+board+"]"), false)
	f.Add([]byte("[]"), true)
	f.Add([]byte(`[{"miner_id":1,"timestamp":"2026-01-01 00:00:00","hashrate_ghs":1e308}]`), false)
	f.Add([]byte(`[{"miner_id":"a","timestamp":"2026-01-01T00:00:00+14:00","boards":[{}]}]`), true)
	f.Fuzz(func(t *testing.T, body []byte, compress bool) {
		enc := ""
		if compress {
			body, enc = gz(t, body), "gzip"
		}
		recs, err := Decode(body, enc, Limits{MaxRecords: 50, MaxDecompressedBytes: 1 << 20})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Field == "" || e.Reason == "" {
				t.Fatalf("error %v is not a complete *Error", err)
			}
			return
		}
		if len(recs) > 50 {
			t.Fatalf("%d records past the limit", len(recs))
		}
		if !compress { // the one-pass decode agrees with the record-by-record one
			slow, err := decodeEach(body, Limits{MaxRecords: 50, MaxDecompressedBytes: 1 << 20})
			if err != nil || !reflect.DeepEqual(slow, recs) && !(len(slow) == 0 && len(recs) == 0) {
				t.Fatalf("record-by-record decode differs: %v, %v", err, slow)
			}
		}
		for _, r := range recs {
			if r.MinerID == "" || len(r.MinerID) > MaxMinerIDLen || r.ObservedAt.Location() != time.UTC ||
				r.ObservedAt.Before(minTime) || !r.ObservedAt.Before(maxTime) || r.HashrateGHs < 0 ||
				r.AcceptedShares < 0 || r.UptimeSeconds < 0 {
				t.Fatalf("record breaks an invariant: %+v", r)
			}
		}
	})
}
