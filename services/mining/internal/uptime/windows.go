package uptime

import (
	"fmt"
	"slices"
	"time"

	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

// WindowSeconds is the length of an uptime window. Windows are aligned to the Unix epoch, i.e.
// to UTC 5-minute boundaries.
const WindowSeconds = 300

// window is a window index: the window [window*300 s, (window+1)*300 s) since the Unix epoch.
type window = int64

// floorWindow is the window holding t.
func floorWindow(t time.Time) window {
	s := t.Unix()
	w := s / WindowSeconds
	if s%WindowSeconds < 0 {
		w--
	}
	return w
}

// ceilWindow is the first window starting at or after t.
func ceilWindow(t time.Time) window {
	w := floorWindow(t)
	if t.After(windowStart(w)) {
		w++
	}
	return w
}

func windowStart(w window) time.Time { return time.Unix(w*WindowSeconds, 0).UTC() }

// span is the windows [from, to).
type span struct{ from, to window }

func (s span) len() int64 {
	if s.to <= s.from {
		return 0
	}
	return s.to - s.from
}

func (s span) clip(o span) span {
	return span{max(s.from, o.from), min(s.to, o.to)}
}

// countedSpan is the period a miner is counted for in a request for [from, to) at now: from the
// later of from (rounded down to a window) and the miner's start of service to the earlier of to
// (rounded up) and the start of the current window, so the window in progress is never counted.
// A miner is in service from the earlier of its creation and its first telemetry window (a
// collector may replay samples older than the inventory entry), rounded down.
func countedSpan(from, to, now, created time.Time, firstWindow *time.Time) span {
	inService := created
	if firstWindow != nil && firstWindow.Before(inService) {
		inService = *firstWindow
	}
	s := span{
		from: max(floorWindow(from), floorWindow(inService)),
		to:   min(ceilWindow(to), floorWindow(now)),
	}
	if s.to < s.from {
		s.to = s.from
	}
	return s
}

// causeRecord is a recorded cause, as the windows it covers: a window carries the cause when it
// overlaps the record's [start_time, end_time).
type causeRecord struct {
	seq   int64
	cause miningv1.DowntimeCause
	span  span
}

func recordSpan(start, end time.Time) span { return span{floorWindow(start), ceilWindow(end)} }

// segment is a run of windows carrying one cause.
type segment struct {
	span  span
	cause miningv1.DowntimeCause
}

// segments resolves overlapping records within period: each window carries the cause of the
// latest record (highest seq) covering it. Windows no record covers are left out (host faults
// when down).
func segments(period span, records []causeRecord) []segment {
	var bounds []window
	for _, r := range records {
		c := r.span.clip(period)
		if c.len() > 0 {
			bounds = append(bounds, c.from, c.to)
		}
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	var out []segment
	for i := 0; i+1 < len(bounds); i++ {
		piece := span{bounds[i], bounds[i+1]}
		var best *causeRecord
		for j := range records {
			r := &records[j]
			if r.span.from <= piece.from && piece.to <= r.span.to && (best == nil || r.seq > best.seq) {
				best = r
			}
		}
		if best == nil {
			continue
		}
		if n := len(out); n > 0 && out[n-1].cause == best.cause && out[n-1].span.to == piece.from {
			out[n-1].span.to = piece.to
			continue
		}
		out = append(out, segment{span: piece, cause: best.cause})
	}
	return out
}

// stats are window counts of one miner or summed over miners.
type stats struct {
	total, up                                          int64
	hostFault, curtailment, maintenance, clientRequest int64
}

func (s *stats) add(o stats) {
	s.total += o.total
	s.up += o.up
	s.hostFault += o.hostFault
	s.curtailment += o.curtailment
	s.maintenance += o.maintenance
	s.clientRequest += o.clientRequest
}

// excuse counts n down windows under cause (anything but host fault).
func (s *stats) excuse(cause miningv1.DowntimeCause, n int64) {
	switch cause {
	case miningv1.DowntimeCause_DOWNTIME_CAUSE_CURTAILMENT:
		s.curtailment += n
	case miningv1.DowntimeCause_DOWNTIME_CAUSE_MAINTENANCE:
		s.maintenance += n
	case miningv1.DowntimeCause_DOWNTIME_CAUSE_CLIENT_REQUEST:
		s.clientRequest += n
	}
}

// finish makes the down windows no excuse covers host faults.
func (s *stats) finish() {
	s.hostFault = s.total - s.up - s.curtailment - s.maintenance - s.clientRequest
}

func (s stats) proto() *miningv1.UptimeStats {
	return &miningv1.UptimeStats{
		TotalWindows:         s.total,
		UpWindows:            s.up,
		HostFaultWindows:     s.hostFault,
		CurtailmentWindows:   s.curtailment,
		MaintenanceWindows:   s.maintenance,
		ClientRequestWindows: s.clientRequest,
		UptimePercent:        percent(s.up, s.total),
		SlaUptimePercent:     percent(s.up, s.up+s.hostFault),
	}
}

// percent is num/den × 100 with 4 fraction digits, computed in integers and rounded down (an
// uptime figure never overstates); "100.0000" when den is 0 (nothing counted, nothing down).
func percent(num, den int64) string {
	if den <= 0 {
		return "100.0000"
	}
	v := num * 1_000_000 / den // in 1/10,000 of a percent; num ≤ den ≤ 2^63 / 10^6 windows
	return fmt.Sprintf("%d.%04d", v/10_000, v%10_000)
}
