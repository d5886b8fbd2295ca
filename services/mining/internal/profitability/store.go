package profitability

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// Profitability reads miners straight from Postgres under the caller's scope (in SQL, so an
// invisible miner is simply absent). It does not fill the shared miner cache: its values are the
// inventory's complete Miner messages, and a calculation needs only two figures.

// figures are a miner's hashrate and power.
type figures struct {
	id       string
	hashrate float64
	power    float64
}

// minerFigures returns the figures of miner id if the scope sees it.
func (a *API) minerFigures(ctx context.Context, s platform.Scope, id string) (figures, error) {
	f := figures{id: id}
	err := a.d.DB.QueryRow(ctx, `SELECT m.id::text, m.hashrate_th, m.power_w FROM miners m
		WHERE m.id = $3::uuid AND `+platform.ScopePredicate, s.All, s.CustomerIDs, id).
		Scan(&f.id, &f.hashrate, &f.power)
	if errors.Is(err, pgx.ErrNoRows) {
		return figures{}, platform.NotFound("miner", id)
	}
	if err != nil {
		return figures{}, fmt.Errorf("read miner %s: %w", id, err)
	}
	return f, nil
}

// modelFigures returns the nameplate figures of catalogue model name (case-insensitive).
func (a *API) modelFigures(ctx context.Context, name string) (figures, error) {
	var f figures
	err := a.d.DB.QueryRow(ctx, `SELECT hashrate_th::float8, power_w::float8 FROM miner_models
		WHERE lower(model) = lower($1)`, name).Scan(&f.hashrate, &f.power)
	if errors.Is(err, pgx.ErrNoRows) {
		return figures{}, platform.InvalidField("model", "no catalogue model is called "+quote(name))
	}
	if err != nil {
		return figures{}, fmt.Errorf("read model %q: %w", name, err)
	}
	return f, nil
}

// minersByID returns the visible miners among ids, keyed by their canonical (lower-case) id.
func (a *API) minersByID(ctx context.Context, s platform.Scope, ids []string) (map[string]figures, error) {
	rows, err := a.d.DB.Query(ctx, `SELECT m.id::text, m.hashrate_th, m.power_w FROM miners m
		WHERE m.id = ANY($3::uuid[]) AND `+platform.ScopePredicate, s.All, s.CustomerIDs, ids)
	if err != nil {
		return nil, fmt.Errorf("read miners by id: %w", err)
	}
	out := make(map[string]figures, len(ids))
	var f figures
	_, err = pgx.ForEachRow(rows, []any{&f.id, &f.hashrate, &f.power}, func() error {
		out[f.id] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read miners by id: %w", err)
	}
	return out, nil
}

// fleet is a struct of arrays of miner figures, as calc.Sum takes them.
type fleet struct {
	ids       []string // nil when only totals are wanted
	hashrates []float64
	powers    []float64
}

// errTooMany stops a filter scan that would return more per-miner results than allowed.
var errTooMany = errors.New("too many miners")

// minersByFilter streams every visible miner matching f, in id order, into a fleet. withIDs
// reads the ids too (per-miner results); limit > 0 stops with errTooMany past limit miners.
func (a *API) minersByFilter(ctx context.Context, s platform.Scope, f *miningv1.MinerFilter, withIDs bool, limit int) (*fleet, error) {
	s = s.Narrow(f.GetCustomerId())
	status := ""
	if f.GetStatus() != miningv1.MinerStatus_MINER_STATUS_UNSPECIFIED {
		status = statusName(f.GetStatus())
	}
	cols := "m.hashrate_th, m.power_w"
	if withIDs {
		cols = "m.id::text, " + cols
	}
	rows, err := a.d.DB.Query(ctx, `SELECT `+cols+` FROM miners m
		WHERE `+platform.ScopePredicate+`
		  AND ($3 = '' OR m.status = $3)
		  AND ($4 = '' OR m.model_id = (SELECT mm.id FROM miner_models mm WHERE lower(mm.model) = lower($4)))
		  AND ($5 = '' OR m.site = $5)
		ORDER BY m.id`, s.All, s.CustomerIDs, status, f.GetModel(), f.GetSite())
	if err != nil {
		return nil, fmt.Errorf("read miners by filter: %w", err)
	}
	out := &fleet{}
	var (
		id   string
		h, w float64
	)
	scan := []any{&h, &w}
	if withIDs {
		scan = []any{&id, &h, &w}
	}
	_, err = pgx.ForEachRow(rows, scan, func() error {
		if limit > 0 && len(out.hashrates) >= limit {
			return errTooMany
		}
		if withIDs {
			out.ids = append(out.ids, id)
		}
		out.hashrates = append(out.hashrates, h)
		out.powers = append(out.powers, w)
		return nil
	})
	if err != nil {
		if errors.Is(err, errTooMany) {
			return nil, err
		}
		return nil, fmt.Errorf("read miners by filter: %w", err)
	}
	return out, nil
}

// fleetAggregate is the one-query summary of the visible fleet.
type fleetAggregate struct {
	total, active, offline, maintenance, retired int64
	hashrate, power, activeHashrate              float64
}

// aggregate sums the miners the scope sees, optionally of one site.
func (a *API) aggregate(ctx context.Context, s platform.Scope, site string) (fleetAggregate, error) {
	var g fleetAggregate
	err := a.d.DB.QueryRow(ctx, `SELECT
			count(*),
			count(*) FILTER (WHERE m.status = 'active'),
			count(*) FILTER (WHERE m.status = 'offline'),
			count(*) FILTER (WHERE m.status = 'maintenance'),
			count(*) FILTER (WHERE m.status = 'retired'),
			coalesce(sum(m.hashrate_th) FILTER (WHERE m.status <> 'retired'), 0),
			coalesce(sum(m.power_w) FILTER (WHERE m.status <> 'retired'), 0),
			coalesce(sum(m.hashrate_th) FILTER (WHERE m.status = 'active'), 0)
		FROM miners m
		WHERE `+platform.ScopePredicate+` AND ($3 = '' OR m.site = $3)`, s.All, s.CustomerIDs, site).
		Scan(&g.total, &g.active, &g.offline, &g.maintenance, &g.retired, &g.hashrate, &g.power, &g.activeHashrate)
	if err != nil {
		return fleetAggregate{}, fmt.Errorf("aggregate fleet: %w", err)
	}
	return g, nil
}

// statusName is the stored spelling of a status ("active").
func statusName(s miningv1.MinerStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "MINER_STATUS_"))
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
