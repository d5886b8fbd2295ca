// Package telemetry ingests miner telemetry: uploads of the HashInsight Remote edge collector and
// streams of internal collectors, stored idempotently in a time-partitioned table.
//
// Both paths share one write (store.ingest): the batch is staged with COPY into a temporary
// table and moved with one INSERT … SELECT … ON CONFLICT DO NOTHING, so a replayed upload stores
// nothing new and reports its records as duplicates. Collector miner ids are matched to the
// site's miners by serial, else name; unknown ids are stored with no miner and reported. The same
// transaction maintains the per-miner 5-minute uptime windows (package uptime reads them), the
// latest state per collector miner (pool_url and worker_name are never blanked by a sample that
// does not carry them, as in "latest" upload mode) and miners.last_seen_at.
//
// Limits: an upload holds at most COLLECTOR_MAX_RECORDS records (default 1,000, DESIGN.md §5) and
// decompresses to at most max(8 MiB, 8 KiB × that limit); more is refused whole, never cut.
//
// Partitions: telemetry_samples is partitioned by month of observation time. Migration 00003
// creates the months around its run; ingest creates a missing month's partition on demand
// (telemetry_ensure_partition) for months from 24 months back to 1 month ahead; anything else
// (a collector with a wrong clock) lands in the default partition, so no sample is rejected for
// its time. A month whose rows already sit in the default partition keeps them there.
//
// Matching: a collector id is matched when the sample is stored; a miner added to the inventory
// later does not adopt samples stored before as unknown.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/errcode"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/platform"
	"github.com/hashinsight/platform/services/mining/internal/telemetry/collectorwire"
)

// DefaultMaxRecordsPerUpload is the record limit of one collector upload unless
// COLLECTOR_MAX_RECORDS (platform.Config.CollectorMaxRecords) says otherwise: DESIGN.md §5's "up
// to 1,000 a request by default", which is what the collector sends at most. A larger upload is
// refused whole (InvalidArgument); a collector with more to send makes several requests (each
// idempotent).
const DefaultMaxRecordsPerUpload = collectorwire.DefaultMaxRecords

// bytesPerRecord is the decompressed allowance per record (a flat record is about 700 bytes, a
// board-level snapshot about 2 KB); the decompressed body may be at most the larger of
// collectorwire.DefaultMaxDecompressedBytes and limit × bytesPerRecord, so a gzip bomb stops
// there.
const bytesPerRecord = 8 << 10

// limits returns the decode limits for a record limit of maxRecords (≤ 0: the default).
func limits(maxRecords int) collectorwire.Limits {
	if maxRecords <= 0 {
		maxRecords = DefaultMaxRecordsPerUpload
	}
	return collectorwire.Limits{
		MaxRecords:           maxRecords,
		MaxDecompressedBytes: max(collectorwire.DefaultMaxDecompressedBytes, int64(maxRecords)*bytesPerRecord),
	}
}

// API serves UploadCollectorBatch and RecordTelemetry.
type API struct {
	d     *platform.Deps
	store *store
	lim   collectorwire.Limits
}

// New returns the telemetry API on d.
func New(_ context.Context, d *platform.Deps) (*API, error) {
	return &API{
		d:     d,
		store: newStore(d.DB),
		lim:   limits(d.Config.CollectorMaxRecords),
	}, nil
}

// UploadCollectorBatch ingests one edge-collector upload (DESIGN.md §5). The body is decoded
// completely before anything is written; a bad body stores nothing.
func (a *API) UploadCollectorBatch(ctx context.Context, req *miningv1.UploadCollectorBatchRequest) (*miningv1.UploadCollectorBatchResponse, error) {
	res, err := a.upload(ctx, req)
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	return &miningv1.UploadCollectorBatchResponse{
		Success:         true,
		Received:        res.received,
		Online:          res.online,
		SiteId:          req.GetSiteId(),
		IngestedAt:      timestamppb.New(res.ingestedAt),
		Stored:          res.stored,
		Duplicates:      res.duplicates,
		UnknownMinerIds: res.unknown,
	}, nil
}

func (a *API) upload(ctx context.Context, req *miningv1.UploadCollectorBatchRequest) (result, error) {
	if err := checkSite(ctx, req.GetSiteId()); err != nil {
		return result{}, err
	}
	records, err := collectorwire.Decode(req.GetBody(), req.GetContentEncoding(), a.lim)
	if err != nil {
		var de *collectorwire.Error
		if errors.As(err, &de) {
			return result{}, platform.InvalidField(de.Field, de.Reason)
		}
		return result{}, err
	}
	res, err := a.store.ingest(ctx, batch{
		site: req.GetSiteId(), deviceID: req.GetDeviceId(), zoneID: req.GetZoneId(),
		mode: modeOf(req.GetUploadMode()), records: records,
	})
	if err != nil {
		return result{}, err
	}
	a.d.InvalidateMiners(ctx, res.touched...)
	return res, nil
}

// RecordTelemetry ingests a client stream of batches from an internal collector. Each message is
// validated and stored as it arrives (in its own transaction; replays are idempotent), so a
// stream of any length needs memory for one message only; a refused message ends the stream
// with its error, the earlier messages staying stored.
func (a *API) RecordTelemetry(stream miningv1.MiningService_RecordTelemetryServer) error {
	ctx := stream.Context()
	var total result
	unknown := map[string]bool{}
	for n := 0; ; n++ {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&miningv1.RecordTelemetryResponse{
				ReceivedCount: total.received, OnlineCount: total.online, StoredCount: total.stored,
				DuplicateCount: total.duplicates, UnknownMinerIds: total.unknown,
			})
		}
		if err != nil {
			return err
		}
		res, err := a.record(ctx, msg)
		if err != nil {
			if n > 0 {
				a.d.Logger.WarnContext(ctx, "telemetry stream refused a message", "message", n)
			}
			return platform.ToStatus(ctx, a.d.Logger, err)
		}
		total.received += res.received
		total.online += res.online
		total.stored += res.stored
		total.duplicates += res.duplicates
		for _, id := range res.unknown {
			if !unknown[id] {
				unknown[id] = true
				total.unknown = append(total.unknown, id)
			}
		}
	}
}

func (a *API) record(ctx context.Context, msg *miningv1.RecordTelemetryRequest) (result, error) {
	if err := checkSite(ctx, msg.GetSiteId()); err != nil {
		return result{}, err
	}
	records := make([]collectorwire.Record, len(msg.GetSamples()))
	for i, s := range msg.GetSamples() {
		r, err := fromSample(s)
		if err != nil {
			var de *collectorwire.Error
			if errors.As(err, &de) {
				return result{}, platform.InvalidField(fmt.Sprintf("samples[%d].%s", i, de.Field), de.Reason)
			}
			return result{}, err
		}
		records[i] = r
	}
	res, err := a.store.ingest(ctx, batch{site: msg.GetSiteId(), mode: modeOf(msg.GetUploadMode()), records: records})
	if err != nil {
		return result{}, err
	}
	a.d.InvalidateMiners(ctx, res.touched...)
	return res, nil
}

// checkSite refuses a collector token bound to another site than site (AUTH_002). Operators,
// services and unscoped users may write for any site; a tenant-scoped user may not write
// telemetry at all, because a site's samples decide the uptime of every customer's miners there.
func checkSite(ctx context.Context, site string) error {
	p, _ := authn.FromContext(ctx)
	switch {
	case p == nil:
		return nil
	case p.Kind == authn.KindCollector && p.SiteID != site:
		return errcode.Error(errcode.AuthForbidden, codes.PermissionDenied,
			"the collector token is bound to another site than site_id")
	case p.Kind != authn.KindCollector && !p.AllCustomers:
		return errcode.Error(errcode.AuthForbidden, codes.PermissionDenied,
			"telemetry needs the site's collector token or a caller that sees every customer")
	}
	return nil
}

func modeOf(m miningv1.UploadMode) string {
	if m == miningv1.UploadMode_UPLOAD_MODE_LATEST {
		return modeLatest
	}
	return modeRaw
}
