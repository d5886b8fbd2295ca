package uptime

import (
	"testing"
	"time"

	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

func TestPercent(t *testing.T) {
	tests := []struct {
		num, den int64
		want     string
	}{
		{0, 0, "100.0000"},
		{0, 10, "0.0000"},
		{10, 10, "100.0000"},
		{2879, 2880, "99.9652"}, // 99.965277… rounds down
		{1, 3, "33.3333"},
		{2, 3, "66.6666"},
		{8639, 8640, "99.9884"},
	}
	for _, tc := range tests {
		if got := percent(tc.num, tc.den); got != tc.want {
			t.Errorf("percent(%d, %d) = %s, want %s", tc.num, tc.den, got, tc.want)
		}
	}
}

func TestWindowRounding(t *testing.T) {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	if got := windowStart(floorWindow(at("2026-01-01T00:04:59Z"))); !got.Equal(at("2026-01-01T00:00:00Z")) {
		t.Errorf("floor: %v", got)
	}
	if got := windowStart(ceilWindow(at("2026-01-01T00:00:01Z"))); !got.Equal(at("2026-01-01T00:05:00Z")) {
		t.Errorf("ceil: %v", got)
	}
	if got := windowStart(ceilWindow(at("2026-01-01T00:05:00Z"))); !got.Equal(at("2026-01-01T00:05:00Z")) {
		t.Errorf("ceil of a boundary: %v", got)
	}
	// Offsets do not matter: windows are UTC.
	if floorWindow(at("2026-01-01T05:32:00+05:30")) != floorWindow(at("2026-01-01T00:00:00Z")) {
		t.Error("offset changed the window")
	}
}

func TestCountedSpan(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w0 := floorWindow(base)
	min := func(n int) time.Time { return base.Add(time.Duration(n) * time.Minute) }
	tests := []struct {
		name                string
		from, to, now, made time.Time
		first               *time.Time
		want                span
	}{
		{"created before the period", min(0), min(60), min(1000), min(-100), nil, span{w0, w0 + 12}},
		{"created inside the period (rounded down)", min(0), min(60), min(1000), min(22), nil, span{w0 + 4, w0 + 12}},
		{"telemetry before creation", min(0), min(60), min(1000), min(40), ptr(min(10)), span{w0 + 2, w0 + 12}},
		{"period reaching past now: completed windows only", min(0), min(60), min(33), min(-100), nil, span{w0, w0 + 6}},
		{"to rounded up, from down", min(2), min(58), min(1000), min(-100), nil, span{w0, w0 + 12}},
		{"created after the period", min(0), min(60), min(1000), min(120), nil, span{w0 + 24, w0 + 24}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := countedSpan(tc.from, tc.to, tc.now, tc.made, tc.first); got != tc.want {
				t.Errorf("got [%d, %d), want [%d, %d)", got.from-w0, got.to-w0, tc.want.from-w0, tc.want.to-w0)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSegmentsLaterWins(t *testing.T) {
	const (
		curt  = miningv1.DowntimeCause_DOWNTIME_CAUSE_CURTAILMENT
		maint = miningv1.DowntimeCause_DOWNTIME_CAUSE_MAINTENANCE
		host  = miningv1.DowntimeCause_DOWNTIME_CAUSE_HOST_FAULT
	)
	records := []causeRecord{
		{seq: 1, cause: curt, span: span{0, 10}},
		{seq: 2, cause: maint, span: span{5, 15}}, // later: wins on 5-10
		{seq: 3, cause: host, span: span{8, 9}},   // later still: back to host fault on 8
		{seq: 0, cause: maint, span: span{20, 30}},
	}
	got := segments(span{2, 25}, records)
	want := []segment{
		{span{2, 5}, curt}, {span{5, 8}, maint}, {span{8, 9}, host}, {span{9, 15}, maint}, {span{20, 25}, maint},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("segment %d: got %v, want %v", i, got[i], want[i])
		}
	}
}
