package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pgkit "github.com/hashinsight/platform/pkg/postgres"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// Model is one catalogue entry. The table keeps hashrate to 3 fraction digits, power in whole
// watts and efficiency to 2 fraction digits.
type Model struct {
	ID         string
	Vendor     string
	Name       string
	HashrateTH float64
	PowerW     float64
	Efficiency float64
	Source     string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

func (m *Model) toProto() *miningv1.MinerModel {
	return &miningv1.MinerModel{
		Id:               m.ID,
		Vendor:           m.Vendor,
		Name:             m.Name,
		HashrateTh:       m.HashrateTH,
		PowerW:           m.PowerW,
		EfficiencyJPerTh: m.Efficiency,
		Source:           m.Source,
		CreateTime:       timestamppb.New(m.CreatedAt),
		UpdateTime:       timestamppb.New(m.UpdatedAt),
	}
}

// checkTexts validates m's texts beyond the proto rules.
func (m *Model) checkTexts() error {
	for _, f := range []struct{ field, value string }{{"vendor", m.Vendor}, {"name", m.Name}} {
		if err := checkIdentifier(f.field, f.value); err != nil {
			return err
		}
	}
	return checkNoControl("source", m.Source, false)
}

// checkFigures validates m's figures against the table's precision and derives (or checks) its
// efficiency; given is the efficiency the request named (0: derive).
func (m *Model) checkFigures(given float64) error {
	if m.PowerW != math.Trunc(m.PowerW) {
		return platform.InvalidField("power_w", "must be a whole number of watts")
	}
	if scaled := m.HashrateTH * 1000; math.Abs(scaled-math.Round(scaled)) > 1e-6 {
		return platform.InvalidField("hashrate_th", "must have at most 3 fraction digits")
	}
	eff, err := platform.Efficiency(m.HashrateTH, m.PowerW, given)
	if err != nil {
		return platform.InvalidField("efficiency_j_per_th", err.Error())
	}
	m.Efficiency = math.Round(eff*100) / 100
	return nil
}

// catalogueKey is the Models cache key of the whole catalogue: it is small (tens of entries), so
// every catalogue read is served from one cached list.
const catalogueKey = "catalogue"

// catalogue returns every model, through the model cache, ordered by vendor, name and id (case-
// insensitively).
func (a *API) catalogue(ctx context.Context) ([]*miningv1.MinerModel, error) {
	load := func(ctx context.Context) ([]byte, error) {
		models, err := a.models.all(ctx)
		if err != nil {
			return nil, err
		}
		list := &miningv1.ListMinerModelsResponse{MinerModels: make([]*miningv1.MinerModel, len(models))}
		for i, m := range models {
			list.MinerModels[i] = m.toProto()
		}
		b, err := proto.Marshal(list)
		if err != nil {
			return nil, fmt.Errorf("encode catalogue: %w", err)
		}
		return b, nil
	}
	var (
		b   []byte
		err error
	)
	if a.d.Models != nil {
		b, err = a.d.Models.GetOrLoad(ctx, catalogueKey, load)
	} else {
		b, err = load(ctx)
	}
	if err != nil {
		return nil, err
	}
	var list miningv1.ListMinerModelsResponse
	if err := proto.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("decode cached catalogue: %w", err)
	}
	models := list.GetMinerModels()
	slices.SortFunc(models, func(x, y *miningv1.MinerModel) int { return compareModelKeys(modelKeys(x), modelKeys(y)) })
	return models, nil
}

// modelKeys is the sort key of a model: lower-case vendor, lower-case name, id.
func modelKeys(m *miningv1.MinerModel) []string {
	return []string{strings.ToLower(m.GetVendor()), strings.ToLower(m.GetName()), m.GetId()}
}

func compareModelKeys(x, y []string) int {
	for i := range x {
		if c := cmp.Compare(x[i], y[i]); c != 0 {
			return c
		}
	}
	return 0
}

// ListMinerModels implements MiningService.ListMinerModels.
func (a *API) ListMinerModels(ctx context.Context, req *miningv1.ListMinerModelsRequest) (*miningv1.ListMinerModelsResponse, error) {
	resp, err := a.listModels(ctx, req)
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	return resp, nil
}

func (a *API) listModels(ctx context.Context, req *miningv1.ListMinerModelsRequest) (*miningv1.ListMinerModelsResponse, error) {
	vendor := strings.ToLower(req.GetVendor())
	query := "models|vendor=" + vendor
	var after []string
	if tok := req.GetPageToken(); tok != "" {
		keys, err := platform.DecodePageToken(tok, query, 3)
		if err != nil {
			return nil, err
		}
		after = keys
	}
	all, err := a.catalogue(ctx)
	if err != nil {
		return nil, err
	}
	size := pageSize(req.GetPageSize())
	resp := &miningv1.ListMinerModelsResponse{}
	for _, m := range all {
		if vendor != "" && strings.ToLower(m.GetVendor()) != vendor {
			continue
		}
		if after != nil && compareModelKeys(modelKeys(m), after) <= 0 {
			continue
		}
		if len(resp.MinerModels) == size {
			last := resp.MinerModels[size-1]
			resp.NextPageToken = platform.EncodePageToken(query, modelKeys(last)...)
			break
		}
		resp.MinerModels = append(resp.MinerModels, m)
	}
	return resp, nil
}

// GetMinerModel implements MiningService.GetMinerModel.
func (a *API) GetMinerModel(ctx context.Context, req *miningv1.GetMinerModelRequest) (*miningv1.GetMinerModelResponse, error) {
	all, err := a.catalogue(ctx)
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	id := strings.ToLower(req.GetId())
	for _, m := range all {
		if m.GetId() == id {
			return &miningv1.GetMinerModelResponse{MinerModel: m}, nil
		}
	}
	return nil, platform.ToStatus(ctx, a.d.Logger, platform.NotFound("miner model", req.GetId()))
}

// CreateMinerModel implements MiningService.CreateMinerModel (models:write, enforced by the
// access interceptor).
func (a *API) CreateMinerModel(ctx context.Context, req *miningv1.CreateMinerModelRequest) (*miningv1.CreateMinerModelResponse, error) {
	m := &Model{
		Vendor:     req.GetVendor(),
		Name:       req.GetName(),
		HashrateTH: req.GetHashrateTh(),
		PowerW:     req.GetPowerW(),
		Source:     req.GetSource(),
	}
	err := m.checkTexts()
	if err == nil {
		err = m.checkFigures(req.GetEfficiencyJPerTh())
	}
	if err == nil {
		m, err = a.models.create(ctx, m)
	}
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	a.d.InvalidateModels(ctx)
	return &miningv1.CreateMinerModelResponse{MinerModel: m.toProto()}, nil
}

// UpdateMinerModel implements MiningService.UpdateMinerModel: the fields present change; the
// efficiency is re-derived when hashrate or power change without it, and re-checked when given.
func (a *API) UpdateMinerModel(ctx context.Context, req *miningv1.UpdateMinerModelRequest) (*miningv1.UpdateMinerModelResponse, error) {
	var renamed bool
	m, err := a.models.update(ctx, strings.ToLower(req.GetId()), func(m *Model) error {
		if req.Vendor != nil {
			m.Vendor = *req.Vendor
		}
		if req.Name != nil {
			renamed = *req.Name != m.Name
			m.Name = *req.Name
		}
		if req.Source != nil {
			m.Source = *req.Source
		}
		if req.HashrateTh != nil {
			m.HashrateTH = *req.HashrateTh
		}
		if req.PowerW != nil {
			m.PowerW = *req.PowerW
		}
		if err := m.checkTexts(); err != nil {
			return err
		}
		switch {
		case req.EfficiencyJPerTh != nil:
			return m.checkFigures(*req.EfficiencyJPerTh)
		case req.HashrateTh != nil || req.PowerW != nil:
			return m.checkFigures(0)
		}
		return nil // unchanged figures keep the stored efficiency
	})
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	a.d.InvalidateModels(ctx)
	if renamed {
		// Cached miners carry their model's name.
		a.d.InvalidateAllMiners(ctx)
	}
	return &miningv1.UpdateMinerModelResponse{MinerModel: m.toProto()}, nil
}

// modelStore is the SQL of the miner_models table.
type modelStore struct {
	db *pgxpool.Pool
}

const modelColumns = `id::text, vendor, model, hashrate_th::float8, power_w::float8, efficiency_j_per_th::float8,
	source, created_at, updated_at`

func scanModel(row pgx.Row) (*Model, error) {
	var m Model
	if err := row.Scan(&m.ID, &m.Vendor, &m.Name, &m.HashrateTH, &m.PowerW, &m.Efficiency, &m.Source,
		&m.CreatedAt, &m.UpdatedAt); err != nil {
		return nil, err
	}
	return &m, nil
}

func modelConflict(err error) error {
	if pgkit.IsUniqueViolation(err) && pgkit.ConstraintName(err) == "miner_models_model_lower_key" {
		return platform.Conflict("name", "a model with this name (ignoring case) exists")
	}
	return err
}

// all returns the whole catalogue.
func (s *modelStore) all(ctx context.Context) ([]*Model, error) {
	rows, err := s.db.Query(ctx, `SELECT `+modelColumns+` FROM miner_models ORDER BY lower(vendor), lower(model), id`)
	if err != nil {
		return nil, fmt.Errorf("list miner models: %w", err)
	}
	defer rows.Close()
	var out []*Model
	for rows.Next() {
		m, err := scanModel(rows)
		if err != nil {
			return nil, fmt.Errorf("list miner models: scan: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list miner models: %w", err)
	}
	return out, nil
}

func (s *modelStore) create(ctx context.Context, m *Model) (*Model, error) {
	out, err := scanModel(s.db.QueryRow(ctx, `INSERT INTO miner_models (vendor, model, hashrate_th, power_w,
		efficiency_j_per_th, source) VALUES ($1, $2, $3::float8, $4::float8, $5::float8, $6) RETURNING `+modelColumns,
		m.Vendor, m.Name, m.HashrateTH, m.PowerW, m.Efficiency, m.Source))
	if err != nil {
		return nil, fmt.Errorf("create miner model: %w", modelConflict(err))
	}
	return out, nil
}

// update locks model id, lets change modify it and stores the result.
func (s *modelStore) update(ctx context.Context, id string, change func(*Model) error) (*Model, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("update miner model: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // after Commit, a no-op
	m, err := scanModel(tx.QueryRow(ctx, `SELECT `+modelColumns+` FROM miner_models WHERE id = $1 FOR UPDATE`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, platform.NotFound("miner model", id)
	case err != nil:
		return nil, fmt.Errorf("update miner model: lock: %w", err)
	}
	if err := change(m); err != nil {
		return nil, err
	}
	out, err := scanModel(tx.QueryRow(ctx, `UPDATE miner_models SET vendor = $2, model = $3, hashrate_th = $4::float8,
		power_w = $5::float8, efficiency_j_per_th = $6::float8, source = $7, updated_at = now()
		WHERE id = $1 RETURNING `+modelColumns,
		id, m.Vendor, m.Name, m.HashrateTH, m.PowerW, m.Efficiency, m.Source))
	if err != nil {
		return nil, fmt.Errorf("update miner model: %w", modelConflict(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("update miner model: commit: %w", err)
	}
	return out, nil
}
