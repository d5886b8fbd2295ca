// Package uptime derives 5-minute uptime windows from telemetry and attributes downtime causes.
//
// Windows are aligned to UTC 5-minute boundaries. A window is up when the miner reported a
// hashrate (hashrate_ghs) above 0 in it; a window without samples is down. The ingest path
// (package telemetry) maintains uptime_windows, one row per miner and window with samples, and
// uptime_days, the up windows per miner and UTC day, from the samples it newly stores; uptime
// over a period sums a row per miner and whole day and counts windows only for the partial days
// at its edges, so a month of thousands of miners reads thousands of rows, not samples. A miner is counted from the later of the period's start
// and its start of service (the earlier of its creation and its first telemetry window) to the
// earlier of the period's end and the start of the current window (see countedSpan).
//
// Downtime causes are recorded for a miner or a whole site and a time range; a down window
// overlapping a record carries the cause of the latest such record, other down windows are host
// faults. Only host faults count against sla_uptime_percent.
//
// Percentages (uptime_percent = up / total, sla_uptime_percent = up / (up + host faults)) are
// computed in integers with 4 fraction digits, rounded down so uptime is never overstated, and
// are "100.0000" when nothing was counted.
//
// Tenancy: an invisible miner answers NOT_FOUND; GetUptime covers the caller's visible miners (a
// customer filter outside the scope gives an empty answer); site-wide causes may be recorded by
// unscoped callers only (PermissionDenied otherwise); ListDowntimeCauses shows the records of
// visible miners and the site-wide records of sites where the caller sees a miner.
package uptime

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/errcode"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// Page sizes of GetUptime's per-miner results and of ListDowntimeCauses.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// API serves GetMinerUptime, GetUptime, SetDowntimeCause and ListDowntimeCauses.
type API struct {
	d   *platform.Deps
	now func() time.Time
}

// New returns the uptime API on d.
func New(_ context.Context, d *platform.Deps) (*API, error) {
	return &API{d: d, now: time.Now}, nil
}

// GetMinerUptime returns one miner's uptime over a period, with every window when asked.
func (a *API) GetMinerUptime(ctx context.Context, req *miningv1.GetMinerUptimeRequest) (*miningv1.GetMinerUptimeResponse, error) {
	u, err := a.minerUptime(ctx, req)
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	return &miningv1.GetMinerUptimeResponse{Uptime: u}, nil
}

func (a *API) minerUptime(ctx context.Context, req *miningv1.GetMinerUptimeRequest) (*miningv1.MinerUptime, error) {
	m, ok, err := loadMiner(ctx, a.d.DB, req.GetId())
	if err != nil {
		return nil, err
	}
	if !ok || !platform.ScopeFrom(ctx).Sees(m.customer) {
		return nil, platform.NotFound("miner", req.GetId())
	}
	m.span = countedSpan(req.GetFrom().AsTime(), req.GetTo().AsTime(), a.now(), m.created, m.first)
	ev, err := evaluate(ctx, a.d.DB, []minerRow{m})
	if err != nil {
		return nil, err
	}
	u := minerProto(m, ev.stats[0])
	if req.GetIncludeWindows() && m.span.len() > 0 {
		rows, err := loadWindows(ctx, a.d.DB, m.id, m.span)
		if err != nil {
			return nil, err
		}
		u.Windows = windowsProto(m.span, rows, ev.segments[0])
	}
	return u, nil
}

// windowsProto lists every window of s: up or down, with the cause of a down window.
func windowsProto(s span, rows []windowRow, segs []segment) []*miningv1.UptimeWindow {
	out := make([]*miningv1.UptimeWindow, 0, s.len())
	ri, si := 0, 0
	for w := s.from; w < s.to; w++ {
		pw := &miningv1.UptimeWindow{StartTime: timestamppb.New(windowStart(w))}
		for ri < len(rows) && floorWindow(rows[ri].start) < w {
			ri++
		}
		if ri < len(rows) && floorWindow(rows[ri].start) == w {
			r := rows[ri]
			pw.Up = r.max > 0
			pw.AvgHashrateTh = r.sumGHs / float64(r.samples) / 1000
		}
		if !pw.Up {
			for si < len(segs) && segs[si].span.to <= w {
				si++
			}
			pw.Cause = miningv1.DowntimeCause_DOWNTIME_CAUSE_HOST_FAULT
			if si < len(segs) && segs[si].span.from <= w {
				pw.Cause = segs[si].cause
			}
		}
		out = append(out, pw)
	}
	return out
}

func minerProto(m minerRow, s stats) *miningv1.MinerUptime {
	return &miningv1.MinerUptime{
		MinerId: m.id, MinerName: m.name, Site: m.site, CustomerId: m.customer, Stats: s.proto(),
	}
}

// GetUptime returns the uptime of the visible miners of a customer, a site or the whole fleet.
func (a *API) GetUptime(ctx context.Context, req *miningv1.GetUptimeRequest) (*miningv1.GetUptimeResponse, error) {
	resp, err := a.fleetUptime(ctx, req)
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	return resp, nil
}

func (a *API) fleetUptime(ctx context.Context, req *miningv1.GetUptimeRequest) (*miningv1.GetUptimeResponse, error) {
	from, to := req.GetFrom().AsTime(), req.GetTo().AsTime()
	pageQuery := fmt.Sprintf("uptime|%s|%q|%d|%d", req.GetCustomerId(), req.GetSite(), from.UnixNano(), to.UnixNano())
	after := ""
	if req.GetPageToken() != "" {
		keys, err := platform.DecodePageToken(req.GetPageToken(), pageQuery, 1)
		if err != nil {
			return nil, err
		}
		after = keys[0]
	}
	scope := platform.ScopeFrom(ctx).Narrow(req.GetCustomerId())
	miners, err := loadMiners(ctx, a.d.DB, scope, req.GetSite())
	if err != nil {
		return nil, err
	}
	now := a.now()
	for i := range miners {
		miners[i].span = countedSpan(from, to, now, miners[i].created, miners[i].first)
	}
	ev, err := evaluate(ctx, a.d.DB, miners)
	if err != nil {
		return nil, err
	}
	var total stats
	for _, s := range ev.stats {
		total.add(s)
	}
	resp := &miningv1.GetUptimeResponse{Total: total.proto(), MinerCount: int64(len(miners))}
	if !req.GetIncludeMiners() {
		return resp, nil
	}
	size := pageSize(req.GetPageSize())
	for i, m := range miners { // id order
		if m.id <= after {
			continue
		}
		if len(resp.Miners) == size {
			resp.NextPageToken = platform.EncodePageToken(pageQuery, miners[i-1].id)
			break
		}
		resp.Miners = append(resp.Miners, minerProto(m, ev.stats[i]))
	}
	return resp, nil
}

func pageSize(n int32) int {
	switch {
	case n <= 0:
		return defaultPageSize
	case n > maxPageSize:
		return maxPageSize
	}
	return int(n)
}

// SetDowntimeCause records a cause for a miner or a site and a time range. A scoped caller may
// record causes for its visible miners only; site-wide records are for unscoped callers.
func (a *API) SetDowntimeCause(ctx context.Context, req *miningv1.SetDowntimeCauseRequest) (*miningv1.SetDowntimeCauseResponse, error) {
	resp, err := a.setCause(ctx, req)
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	return resp, nil
}

func (a *API) setCause(ctx context.Context, req *miningv1.SetDowntimeCauseRequest) (*miningv1.SetDowntimeCauseResponse, error) {
	scope := platform.ScopeFrom(ctx)
	start, end := req.GetStartTime().AsTime(), req.GetEndTime().AsTime()
	var (
		targets       []minerRow
		minerID, site any
	)
	switch req.GetTarget().(type) {
	case *miningv1.SetDowntimeCauseRequest_MinerId:
		m, ok, err := loadMiner(ctx, a.d.DB, req.GetMinerId())
		if err != nil {
			return nil, err
		}
		if !ok || !scope.Sees(m.customer) {
			return nil, platform.NotFound("miner", req.GetMinerId())
		}
		targets, minerID = []minerRow{m}, m.id
	default:
		if !scope.All {
			return nil, errcode.Error(errcode.AuthForbidden, codes.PermissionDenied,
				"site-wide downtime causes need access to every customer; set the cause per miner")
		}
		ms, err := loadMiners(ctx, a.d.DB, scope, req.GetSite())
		if err != nil {
			return nil, err
		}
		targets, site = ms, req.GetSite()
	}
	var createdBy string
	if p, ok := authn.FromContext(ctx); ok {
		createdBy = p.Subject
	}
	var rec storedRecord
	rows, err := a.d.DB.Query(ctx, `
		INSERT INTO downtime_causes AS d (miner_id, site, cause, start_time, end_time, note, created_by_user_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING `+recordColumns, minerID, site, causeToDB(req.GetCause()), start, end, req.GetNote(), createdBy)
	if err != nil {
		return nil, fmt.Errorf("record downtime cause: %w", err)
	}
	if rec, err = collectOne(rows); err != nil {
		return nil, fmt.Errorf("record downtime cause: %w", err)
	}
	// The new record is the latest: every down window of its range now carries its cause.
	now := a.now()
	qs := make([]query, 0, len(targets))
	var down int64
	for _, m := range targets {
		s := countedSpan(start, end, now, m.created, m.first)
		if s.len() > 0 {
			qs = append(qs, query{miner: m.id, s: s})
			down += s.len()
		}
	}
	up, err := countUp(ctx, a.d.DB, qs)
	if err != nil {
		return nil, err
	}
	for _, n := range up {
		down -= n
	}
	return &miningv1.SetDowntimeCauseResponse{Record: recordProto(rec), AffectedWindows: down}, nil
}

// ListDowntimeCauses lists the records the caller may see, oldest first: records of visible
// miners, and site-wide records of sites where the caller sees a miner (every site for unscoped
// callers).
func (a *API) ListDowntimeCauses(ctx context.Context, req *miningv1.ListDowntimeCausesRequest) (*miningv1.ListDowntimeCausesResponse, error) {
	resp, err := a.listCauses(ctx, req)
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	return resp, nil
}

func (a *API) listCauses(ctx context.Context, req *miningv1.ListDowntimeCausesRequest) (*miningv1.ListDowntimeCausesResponse, error) {
	var from, to, minerID any
	if req.GetFrom() != nil {
		from = req.GetFrom().AsTime()
	}
	if req.GetTo() != nil {
		to = req.GetTo().AsTime()
	}
	if req.GetMinerId() != "" {
		minerID = req.GetMinerId()
	}
	pageQuery := fmt.Sprintf("downtime-causes|%s|%q|%v|%v", req.GetMinerId(), req.GetSite(), from, to)
	var after int64
	if req.GetPageToken() != "" {
		keys, err := platform.DecodePageToken(req.GetPageToken(), pageQuery, 1)
		if err != nil {
			return nil, err
		}
		if _, err := fmt.Sscan(keys[0], &after); err != nil {
			return nil, platform.InvalidField("page_token", "is not a token from a previous response to this query")
		}
	}
	size := pageSize(req.GetPageSize())
	scope := platform.ScopeFrom(ctx)
	rows, err := a.d.DB.Query(ctx, `
		SELECT `+recordColumns+` FROM downtime_causes d
		LEFT JOIN miners m ON m.id = d.miner_id
		WHERE d.seq > $3
		  AND ((d.miner_id IS NOT NULL AND `+platform.ScopePredicate+`)
		    OR (d.site IS NOT NULL AND ($1::bool OR EXISTS (
		          SELECT 1 FROM miners sm WHERE sm.site = d.site AND sm.customer_id = ANY($2::uuid[])))))
		  AND ($4::uuid IS NULL OR d.miner_id = $4 OR d.site = (SELECT tm.site FROM miners tm WHERE tm.id = $4))
		  AND ($5 = '' OR d.site = $5 OR m.site = $5)
		  AND ($6::timestamptz IS NULL OR d.end_time > $6)
		  AND ($7::timestamptz IS NULL OR d.start_time < $7)
		ORDER BY d.seq
		LIMIT $8`, scope.All, scope.CustomerIDs, after, minerID, req.GetSite(), from, to, size+1)
	if err != nil {
		return nil, fmt.Errorf("list downtime causes: %w", err)
	}
	recs, err := collectAll(rows)
	if err != nil {
		return nil, fmt.Errorf("list downtime causes: %w", err)
	}
	resp := &miningv1.ListDowntimeCausesResponse{}
	if len(recs) > size {
		recs = recs[:size]
		resp.NextPageToken = platform.EncodePageToken(pageQuery, fmt.Sprint(recs[size-1].seq))
	}
	for _, r := range recs {
		resp.Records = append(resp.Records, recordProto(r))
	}
	return resp, nil
}

func recordProto(r storedRecord) *miningv1.DowntimeCauseRecord {
	return &miningv1.DowntimeCauseRecord{
		Id: r.id, MinerId: r.miner, Site: r.site, Cause: r.cause,
		StartTime: timestamppb.New(r.start), EndTime: timestamppb.New(r.end), Note: r.note,
		CreatedByUserId: r.createdBy, CreateTime: timestamppb.New(r.created),
	}
}
