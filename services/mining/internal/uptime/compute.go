package uptime

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

// evaluation is the uptime of each miner of a request.
type evaluation struct {
	stats    []stats     // per miner, in the order given
	segments [][]segment // per miner: the windows carrying a recorded cause
}

// evaluate computes the window counts of miners over their counted spans (already set) with the
// downtime causes recorded for them or their sites: up windows are counted from uptime_windows,
// down windows under a recorded cause (the latest record covering them) are excused, the other
// down windows are host faults. Two queries whatever the number of miners and records.
func evaluate(ctx context.Context, db *pgxpool.Pool, miners []minerRow) (evaluation, error) {
	ev := evaluation{stats: make([]stats, len(miners)), segments: make([][]segment, len(miners))}
	if len(miners) == 0 {
		return ev, nil
	}
	var bounds span
	for _, m := range miners {
		switch {
		case m.span.len() == 0:
		case bounds.len() == 0:
			bounds = m.span
		default:
			bounds.from, bounds.to = min(bounds.from, m.span.from), max(bounds.to, m.span.to)
		}
	}
	var records []storedRecord
	if bounds.len() > 0 {
		var err error
		if records, err = loadRecords(ctx, db, miners, windowStart(bounds.from), windowStart(bounds.to)); err != nil {
			return evaluation{}, err
		}
	}
	byMiner := map[string][]causeRecord{}
	bySite := map[string][]causeRecord{}
	for _, r := range records {
		cr := causeRecord{seq: r.seq, cause: r.cause, span: recordSpan(r.start, r.end)}
		if r.miner != "" {
			byMiner[r.miner] = append(byMiner[r.miner], cr)
		} else {
			bySite[r.site] = append(bySite[r.site], cr)
		}
	}

	// One up-window count per miner, then one per excused segment.
	qs := make([]query, 0, len(miners))
	for _, m := range miners {
		qs = append(qs, query{miner: m.id, s: m.span})
	}
	type ref struct {
		miner int
		cause miningv1.DowntimeCause
		n     int64
	}
	var refs []ref
	for i, m := range miners {
		if m.span.len() == 0 {
			continue
		}
		applicable := append(append([]causeRecord(nil), byMiner[m.id]...), bySite[m.site]...)
		if len(applicable) == 0 {
			continue
		}
		ev.segments[i] = segments(m.span, applicable)
		for _, seg := range ev.segments[i] {
			if seg.cause == miningv1.DowntimeCause_DOWNTIME_CAUSE_HOST_FAULT {
				continue
			}
			qs = append(qs, query{miner: m.id, s: seg.span})
			refs = append(refs, ref{miner: i, cause: seg.cause, n: seg.span.len()})
		}
	}
	counts, err := countUp(ctx, db, qs)
	if err != nil {
		return evaluation{}, err
	}
	for i, m := range miners {
		ev.stats[i].total = m.span.len()
		ev.stats[i].up = counts[i]
	}
	for j, r := range refs {
		ev.stats[r.miner].excuse(r.cause, r.n-counts[len(miners)+j])
	}
	for i := range ev.stats {
		ev.stats[i].finish()
	}
	return ev, nil
}
