package importer

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/importer/csvparse"
	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// options are an import's switches.
type options struct {
	validateOnly bool
	upsert       bool
}

// progressFunc receives progress reports (streaming imports); nil ignores them.
type progressFunc func(*miningv1.ImportProgress) error

// job is one import in progress.
type job struct {
	d        *platform.Deps
	opts     options
	scope    platform.Scope
	progress progressFunc
	parser   *csvparse.Parser
	hasSite  bool // the file has a site column

	rows    []row
	errs    []rowError
	total   int64 // data rows
	invalid int64 // data rows with at least one problem
	written int64
}

// report sends a progress message in phase.
func (j *job) report(phase miningv1.ImportPhase) error {
	if j.progress == nil {
		return nil
	}
	var bytes int64
	if j.parser != nil {
		bytes = j.parser.BytesRead()
	}
	return j.progress(&miningv1.ImportProgress{
		Phase:         phase,
		BytesReceived: bytes,
		RowsParsed:    j.total,
		RowsInvalid:   j.invalid,
		RowsWritten:   j.written,
	})
}

// run imports the CSV read from r: parse and check every row, then, only when every row is
// good, write them all in one transaction (rolled back for validate_only). A file with problems
// gives a result listing them and no error; the error is for failures of the import itself.
func run(ctx context.Context, d *platform.Deps, r io.Reader, opts options, progress progressFunc) (*miningv1.ImportResult, tally, error) {
	j := &job{d: d, opts: opts, scope: platform.ScopeFrom(ctx), progress: progress}
	models, err := loadCatalogue(ctx, d.DB)
	if err != nil {
		return nil, tally{}, err
	}
	j.parser = csvparse.New(r, csvparse.Options{MaxLineBytes: MaxLineBytes})
	if err := j.parse(models); err != nil {
		return nil, tally{}, err
	}
	var c counts
	if len(j.rows) > 0 {
		c, err = j.write(ctx)
		if err != nil {
			return nil, tally{}, err
		}
	}
	res := &miningv1.ImportResult{
		TotalRows:    j.total,
		ValidateOnly: opts.validateOnly,
	}
	if len(j.errs) > 0 {
		res.Errors = toProto(j.errs)
		return res, tally{problems: len(j.errs), lines: max(j.invalid, 1)}, nil
	}
	res.CreatedCount, res.UpdatedCount, res.UnchangedCount = c.created, c.updated, c.unchanged
	res.Committed = !opts.validateOnly
	return res, tally{}, nil
}

// tally counts the problems of a refused file and the lines they are on (the result's list may
// be capped).
type tally struct {
	problems int
	lines    int64
}

// parse reads the header and every data row, collecting good rows and problems.
func (j *job) parse(models map[string]string) error {
	if err := j.report(miningv1.ImportPhase_IMPORT_PHASE_PARSING); err != nil {
		return err
	}
	first, err := j.parser.Next()
	switch {
	case errors.Is(err, io.EOF):
		j.errs = append(j.errs, rowError{1, "", "the file is empty: the header line is missing"})
		return nil
	case err != nil:
		return fmt.Errorf("read csv: %w", err)
	case first.Err != "":
		j.errs = append(j.errs, rowError{first.Line, "", "header: " + first.Err})
		return nil
	}
	h, herrs := parseHeader(first.Line, first.Fields)
	if len(herrs) > 0 {
		j.errs = herrs
		return nil
	}
	j.hasSite = h.has(colSite)
	checker := &rowChecker{h: h, models: models, scope: j.scope}
	serials := map[string]int64{}
	names := map[string]int64{}
	maxRows := int64(j.d.Config.ImportMaxRows)
	for {
		rec, err := j.parser.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read csv: %w", err)
		}
		if j.total == maxRows {
			j.errs = append(j.errs, rowError{rec.Line, "",
				fmt.Sprintf("more than %d data rows (IMPORT_MAX_ROWS); split the file", maxRows)})
			break
		}
		j.total++
		if j.total%progressEvery == 0 {
			if err := j.report(miningv1.ImportPhase_IMPORT_PHASE_PARSING); err != nil {
				return err
			}
		}
		if rec.Err != "" {
			j.invalid++
			j.errs = append(j.errs, rowError{rec.Line, "", rec.Err})
			continue
		}
		r, errs := checker.check(rec.Line, rec.Fields)
		if r.serial != "" {
			if prev, dup := serials[r.serial]; dup {
				errs = append(errs, rowError{rec.Line, colSerial, fmt.Sprintf("duplicate serial: line %d has it too", prev)})
			} else {
				serials[r.serial] = rec.Line
			}
		}
		if r.name != "" {
			key := r.site + "\x00" + r.name
			if prev, dup := names[key]; dup {
				errs = append(errs, rowError{rec.Line, colName, fmt.Sprintf("duplicate name at site %q: line %d has it too", clip(r.site), prev)})
			} else {
				names[key] = rec.Line
			}
		}
		if len(errs) > 0 {
			j.invalid++
			j.errs = append(j.errs, errs...)
			continue
		}
		j.rows = append(j.rows, r)
	}
	if j.total == 0 && len(j.errs) == 0 {
		j.errs = append(j.errs, rowError{first.Line + 1, "", "the file has no data rows"})
	}
	return j.report(miningv1.ImportPhase_IMPORT_PHASE_PARSING)
}

// write stages the good rows and checks them against the existing miners, so that collisions
// are reported with the file's other problems; then, when the file has no problem at all, it
// writes them: one transaction, committed unless validate_only.
func (j *job) write(ctx context.Context) (counts, error) {
	var c counts
	if err := j.report(miningv1.ImportPhase_IMPORT_PHASE_VALIDATING); err != nil {
		return c, err
	}
	tx, err := j.d.DB.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return c, fmt.Errorf("begin import: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if !j.opts.validateOnly {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(importLockKey)); err != nil {
			return c, fmt.Errorf("lock imports: %w", err)
		}
	}
	if err := stage(ctx, tx, j.rows); err != nil {
		return c, err
	}
	var dbErrs []rowError
	if j.opts.upsert {
		dbErrs, err = match(ctx, tx, j.scope, !j.hasSite)
	} else {
		dbErrs, err = checkNew(ctx, tx)
	}
	if err != nil {
		return c, err
	}
	j.errs = append(j.errs, dbErrs...)
	j.invalid += distinctLines(dbErrs)
	if len(j.errs) > 0 {
		return c, nil
	}
	if err := j.report(miningv1.ImportPhase_IMPORT_PHASE_WRITING); err != nil {
		return c, err
	}
	if j.opts.upsert {
		if c, err = update(ctx, tx, !j.hasSite); err != nil {
			return c, conflictErr(err)
		}
	}
	if c.created, err = insert(ctx, tx); err != nil {
		return c, conflictErr(err)
	}
	if j.opts.validateOnly {
		return c, nil // rolled back by the deferred Rollback
	}
	if err := tx.Commit(ctx); err != nil {
		return c, conflictErr(fmt.Errorf("commit import: %w", err))
	}
	j.d.InvalidateMiners(ctx, c.updatedIDs...)
	j.written = c.created + c.updated
	return c, j.report(miningv1.ImportPhase_IMPORT_PHASE_WRITING)
}
