// Package importer imports miners in bulk from CSV: every bad row reported, all-or-nothing,
// COPY into a staging table and one set-based insert or upsert.
//
// File format: a header line naming the columns, in any order (case-insensitive):
// name, model, hashrate_th, power_w and efficiency are required, customer_id, site and serial
// optional. efficiency may be empty in a row (derived from power_w / hashrate_th), otherwise it
// must agree with them within 5%. Values follow CreateMiner's rules; model is a catalogue
// model name (case-insensitive); a text cell may not start with = + - @ tab or CR (spreadsheet
// formula injection); scoped callers (clients, brokers) must give a customer_id of theirs on
// every row. A file may not repeat a serial, or a name at a site.
//
// Outcome: when any row has a problem nothing is written and the answer is InvalidArgument
// (VALIDATION_001) whose BadRequest field violations list every problem as field "line N:
// column" (or "line N" for the whole line) with the reason; the status also carries the
// ImportResult with the same list as a detail. The list is sorted by line and capped at
// MaxReportedErrors entries; when there are more, a last entry at the first unlisted line
// says how many were left out. ImportMiners (streaming) sends that ImportResult as its last
// message before ending with the same status, so a stream always ends with exactly one result.
//
// Existing miners: without upsert a row whose serial, or name at its site, exists is a problem.
// With upsert a row updates the miner with its serial, else the one with its name at its site;
// an empty serial or customer_id keeps the miner's, and its site is kept when the file has no
// site column. A row identical to its miner leaves it untouched (unchanged_count), so a repeated
// import changes nothing. validate_only runs the same checks and counts in a transaction that is
// rolled back.
package importer

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/hashinsight/platform/pkg/errcode"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// MaxLineBytes bounds one line of an import file; a longer line is one problem ("line too
// long") and parsing goes on with the next line.
const MaxLineBytes = 64 << 10

// MaxReportedErrors caps the problems listed in an answer (plus one entry saying how many more
// there are).
const MaxReportedErrors = 1000

// progressEvery is how many data rows a streaming import parses between progress messages.
const progressEvery = 2000

// API serves ImportMiners and ImportMinersCsv.
type API struct {
	d *platform.Deps
}

// New returns the import API on d.
func New(_ context.Context, d *platform.Deps) (*API, error) {
	return &API{d: d}, nil
}

// ImportMinersCsv imports a whole CSV file sent in one request.
func (a *API) ImportMinersCsv(ctx context.Context, req *miningv1.ImportMinersCsvRequest) (*miningv1.ImportMinersCsvResponse, error) {
	res, sum, err := run(ctx, a.d, bytes.NewReader(req.GetCsv()), options{validateOnly: req.GetValidateOnly(), upsert: req.GetUpsert()}, nil)
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	a.log(ctx, "", res)
	if len(res.GetErrors()) > 0 {
		return nil, rowsStatus(res, sum)
	}
	return &miningv1.ImportMinersCsvResponse{Result: res}, nil
}

// ImportMiners imports a CSV file streamed in chunks after a header message, streaming progress
// and ending with exactly one result.
func (a *API) ImportMiners(stream grpc.BidiStreamingServer[miningv1.ImportMinersRequest, miningv1.ImportMinersResponse]) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return platform.ToStatus(ctx, a.d.Logger, platform.InvalidField("header", "the stream must start with a header message"))
	case err != nil:
		return err
	case first.GetHeader() == nil:
		return platform.ToStatus(ctx, a.d.Logger, platform.InvalidField("header", "the first message must be the header"))
	}
	hdr := first.GetHeader()
	progress := func(p *miningv1.ImportProgress) error {
		return stream.Send(&miningv1.ImportMinersResponse{Event: &miningv1.ImportMinersResponse_Progress{Progress: p}})
	}
	res, sum, err := run(ctx, a.d, &chunkReader{recv: stream.Recv}, options{validateOnly: hdr.GetValidateOnly(), upsert: hdr.GetUpsert()}, progress)
	if err != nil {
		return platform.ToStatus(ctx, a.d.Logger, err)
	}
	a.log(ctx, hdr.GetFileName(), res)
	if err := stream.Send(&miningv1.ImportMinersResponse{Event: &miningv1.ImportMinersResponse_Result{Result: res}}); err != nil {
		return err
	}
	if len(res.GetErrors()) > 0 {
		return rowsStatus(res, sum)
	}
	return nil
}

// log records the outcome of an import.
func (a *API) log(ctx context.Context, file string, res *miningv1.ImportResult) {
	a.d.Logger.InfoContext(ctx, "miner import",
		slog.String("file_name", file),
		slog.Int64("rows", res.GetTotalRows()),
		slog.Int("problems", len(res.GetErrors())),
		slog.Int64("created", res.GetCreatedCount()),
		slog.Int64("updated", res.GetUpdatedCount()),
		slog.Int64("unchanged", res.GetUnchangedCount()),
		slog.Bool("validate_only", res.GetValidateOnly()),
		slog.Bool("committed", res.GetCommitted()))
}

// chunkReader reads the CSV chunks of an import stream.
type chunkReader struct {
	recv func() (*miningv1.ImportMinersRequest, error)
	buf  []byte
	eof  bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.eof {
			return 0, io.EOF
		}
		msg, err := c.recv()
		if errors.Is(err, io.EOF) {
			c.eof = true
			return 0, io.EOF
		}
		if err != nil {
			return 0, err
		}
		if msg.GetHeader() != nil {
			return 0, platform.InvalidField("header", "only the first message may be a header")
		}
		c.buf = msg.GetChunk()
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// toProto sorts problems by line and caps the list at MaxReportedErrors, adding an entry that
// counts the rest.
func toProto(errs []rowError) []*miningv1.ImportRowError {
	slices.SortStableFunc(errs, func(a, b rowError) int { return cmp.Compare(a.line, b.line) })
	n := min(len(errs), MaxReportedErrors)
	out := make([]*miningv1.ImportRowError, 0, n+1)
	for _, e := range errs[:n] {
		out = append(out, &miningv1.ImportRowError{Line: e.line, Column: e.column, Reason: e.reason})
	}
	if rest := len(errs) - n; rest > 0 {
		out = append(out, &miningv1.ImportRowError{Line: errs[n].line,
			Reason: fmt.Sprintf("%d more problems from this line on are not listed", rest)})
	}
	return out
}

// distinctLines counts the lines of errs.
func distinctLines(errs []rowError) int64 {
	seen := map[int64]bool{}
	for _, e := range errs {
		seen[e.line] = true
	}
	return int64(len(seen))
}

// rowsStatus is the answer to a file with problems: InvalidArgument VALIDATION_001 with one
// field violation per listed problem ("line 7: power_w") and the result as a detail.
func rowsStatus(res *miningv1.ImportResult, sum tally) error {
	fields := make([]errcode.FieldViolation, 0, len(res.GetErrors()))
	for _, e := range res.GetErrors() {
		field := fmt.Sprintf("line %d", e.GetLine())
		if e.GetColumn() != "" {
			field += ": " + e.GetColumn()
		}
		fields = append(fields, errcode.FieldViolation{Field: field, Description: e.GetReason()})
	}
	msg := fmt.Sprintf("import refused: %d problems on %d lines; nothing was written", sum.problems, sum.lines)
	if sum.problems > MaxReportedErrors {
		msg += fmt.Sprintf(" (the first %d are listed)", MaxReportedErrors)
	}
	st := errcode.New(errcode.Validation, codes.InvalidArgument, msg, fields...)
	if withResult, err := st.WithDetails(res); err == nil {
		st = withResult
	}
	return st.Err()
}
