package inventory

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/ident"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// Page sizes of the list RPCs (the protos cap page_size at 1000).
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// Tenancy of writes. Callers limited to some customers (brokers) write only miners of those
// customers: a miner outside their scope is NOT_FOUND (as for reads); creating a miner without a
// customer is INVALID_ARGUMENT on customer_id (the field is required for them); naming a customer
// outside the scope, on create or update, or unassigning a miner (customer_id present and empty)
// is PERMISSION_DENIED (AUTH_002) with customer_id as the field at fault: the caller may see the
// miner but not give it away.

// forbiddenCustomer answers a scoped caller's write that would put a miner outside its scope.
func forbiddenCustomer(reason string) error {
	return errcode.Error(errcode.AuthForbidden, codes.PermissionDenied, "customer_id: "+reason,
		errcode.FieldViolation{Field: "customer_id", Description: reason})
}

// checkCustomerWritable checks that scope may own a miner of customerID.
func checkCustomerWritable(scope platform.Scope, customerID string) error {
	switch {
	case scope.All:
		return nil
	case customerID == "":
		return forbiddenCustomer("callers limited to their customers may not leave a miner unassigned")
	case !scope.Sees(customerID):
		return forbiddenCustomer("is not one of the caller's customers")
	}
	return nil
}

// CreateMiner implements MiningService.CreateMiner.
func (a *API) CreateMiner(ctx context.Context, req *miningv1.CreateMinerRequest) (*miningv1.CreateMinerResponse, error) {
	m, err := a.createMiner(ctx, req)
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	return &miningv1.CreateMinerResponse{Miner: m.toProto()}, nil
}

func (a *API) createMiner(ctx context.Context, req *miningv1.CreateMinerRequest) (*Miner, error) {
	scope := platform.ScopeFrom(ctx)
	m, err := minerFromCreate(req)
	if err != nil {
		return nil, err
	}
	if !scope.All && m.CustomerID == "" {
		return nil, platform.InvalidField("customer_id", "is required: the caller may only create miners of its own customers")
	}
	if err := checkCustomerWritable(scope, m.CustomerID); err != nil {
		return nil, err
	}
	out, err := a.miners.create(ctx, m)
	if err != nil {
		return nil, err
	}
	a.d.InvalidateMiners(ctx, out.ID)
	return out, nil
}

// GetMiner implements MiningService.GetMiner. The read goes through the miner cache; the tenant
// check follows it on every call, so a cached miner is never shown outside its scope.
func (a *API) GetMiner(ctx context.Context, req *miningv1.GetMinerRequest) (*miningv1.GetMinerResponse, error) {
	m, err := a.cachedMiner(ctx, req.GetId())
	if err == nil && !platform.ScopeFrom(ctx).Sees(m.GetCustomerId()) {
		err = platform.NotFound("miner", req.GetId())
	}
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	return &miningv1.GetMinerResponse{Miner: m}, nil
}

// cachedMiner reads miner id through the miner cache (concurrent misses share one query).
func (a *API) cachedMiner(ctx context.Context, id string) (*miningv1.Miner, error) {
	id = strings.ToLower(id)
	load := func(ctx context.Context) ([]byte, error) {
		m, err := a.miners.get(ctx, id)
		if err != nil {
			return nil, err
		}
		b, err := proto.Marshal(m.toProto())
		if err != nil {
			return nil, fmt.Errorf("encode miner: %w", err)
		}
		return b, nil
	}
	var (
		b   []byte
		err error
	)
	if a.d.Miners != nil {
		b, err = a.d.Miners.GetOrLoad(ctx, platform.MinerCacheKey(id), load)
	} else {
		b, err = load(ctx)
	}
	if err != nil {
		return nil, err
	}
	m := new(miningv1.Miner)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("decode cached miner: %w", err)
	}
	return m, nil
}

// UpdateMiner implements MiningService.UpdateMiner: the fields present in the request change.
func (a *API) UpdateMiner(ctx context.Context, req *miningv1.UpdateMinerRequest) (*miningv1.UpdateMinerResponse, error) {
	scope := platform.ScopeFrom(ctx)
	m, err := a.miners.update(ctx, strings.ToLower(req.GetId()), func(m *Miner) (bool, error) {
		if !scope.Sees(m.CustomerID) {
			return false, platform.NotFound("miner", req.GetId())
		}
		modelChanged, err := m.applyUpdate(req)
		if err != nil {
			return false, err
		}
		if req.CustomerId != nil {
			if err := checkCustomerWritable(scope, m.CustomerID); err != nil {
				return false, err
			}
		}
		return modelChanged, nil
	})
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	a.d.InvalidateMiners(ctx, m.ID)
	return &miningv1.UpdateMinerResponse{Miner: m.toProto()}, nil
}

// DeleteMiner implements MiningService.DeleteMiner.
func (a *API) DeleteMiner(ctx context.Context, req *miningv1.DeleteMinerRequest) (*miningv1.DeleteMinerResponse, error) {
	id := strings.ToLower(req.GetId())
	if err := a.miners.delete(ctx, id, platform.ScopeFrom(ctx)); err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	a.d.InvalidateMiners(ctx, id)
	return &miningv1.DeleteMinerResponse{}, nil
}

// ListMiners implements MiningService.ListMiners: the caller's miners matching the filters, in
// (created_at, id) order, paged by a keyset token bound to the filters.
func (a *API) ListMiners(ctx context.Context, req *miningv1.ListMinersRequest) (*miningv1.ListMinersResponse, error) {
	resp, err := a.listMiners(ctx, req)
	if err != nil {
		return nil, platform.ToStatus(ctx, a.d.Logger, err)
	}
	return resp, nil
}

func (a *API) listMiners(ctx context.Context, req *miningv1.ListMinersRequest) (*miningv1.ListMinersResponse, error) {
	customer := strings.ToLower(req.GetCustomerId())
	f := minerFilter{
		Scope:  platform.ScopeFrom(ctx).Narrow(customer),
		Status: statusFromProto(req.GetStatus()),
		Model:  req.GetModel(),
		Site:   req.GetSite(),
		Limit:  pageSize(req.GetPageSize()),
	}
	query := fmt.Sprintf("miners|status=%s|model=%s|customer=%s|site=%s",
		f.Status, strconv.Quote(strings.ToLower(f.Model)), customer, strconv.Quote(f.Site))
	if tok := req.GetPageToken(); tok != "" {
		keys, err := platform.DecodePageToken(tok, query, 2)
		if err != nil {
			return nil, err
		}
		micros, err := strconv.ParseInt(keys[0], 10, 64)
		if err != nil || !ident.IsUUID(keys[1]) {
			return nil, platform.InvalidField("page_token", "is not a token from a previous response to this query")
		}
		f.AfterTime, f.AfterID = time.UnixMicro(micros).UTC(), keys[1]
	}
	size := f.Limit
	f.Limit++ // one more tells whether there is a next page
	miners, total, err := a.miners.list(ctx, f)
	if err != nil {
		return nil, err
	}
	resp := &miningv1.ListMinersResponse{TotalSize: total}
	if len(miners) > size {
		last := miners[size-1]
		resp.NextPageToken = platform.EncodePageToken(query, strconv.FormatInt(last.CreatedAt.UnixMicro(), 10), last.ID)
		miners = miners[:size]
	}
	resp.Miners = make([]*miningv1.Miner, len(miners))
	for i, m := range miners {
		resp.Miners[i] = m.toProto()
	}
	return resp, nil
}

// pageSize is the page size a request asks for: the default for 0, at most maxPageSize.
func pageSize(requested int32) int {
	switch {
	case requested <= 0:
		return defaultPageSize
	case requested > maxPageSize:
		return maxPageSize
	}
	return int(requested)
}
