package app_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/service/servicetest"
	"github.com/hashinsight/platform/pkg/testkit/freeport"
	"github.com/hashinsight/platform/pkg/testkit/redistest"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/app"
)

// invS19 is a valid CreateMinerRequest for an Antminer S19 Pro named name.
func invS19(name string) *miningv1.CreateMinerRequest {
	return &miningv1.CreateMinerRequest{
		Name: name, Model: "Antminer S19 Pro", Site: "site-1", HashrateTh: 110, PowerW: 3250,
	}
}

// invCreateMiner creates req as ctx's caller and fails the test on error.
func (m *mesh) invCreateMiner(ctx context.Context, req *miningv1.CreateMinerRequest) *miningv1.Miner {
	m.t.Helper()
	resp, err := m.gw.CreateMiner(ctx, req)
	if err != nil {
		m.t.Fatalf("create miner %q: %v", req.GetName(), err)
	}
	return resp.GetMiner()
}

// invWithCustomer returns req assigned to customer.
func invWithCustomer(req *miningv1.CreateMinerRequest, customer string) *miningv1.CreateMinerRequest {
	req.CustomerId = customer
	return req
}

func TestInventoryMinerCRUD(t *testing.T) {
	m := startMining(t, nil)
	ctx := m.as(admin())

	created := m.invCreateMiner(ctx, &miningv1.CreateMinerRequest{
		Name: "rack-1-a", Model: "antminer s19 PRO", Serial: "SN-1", Site: "austin", Zone: "row-1",
		CustomerId: strings.ToUpper(customerA), HashrateTh: 110, PowerW: 3250, Notes: "tuned\nfirmware 2",
	})
	if created.GetId() == "" || created.GetModel() != "Antminer S19 Pro" || created.GetEfficiencyJPerTh() != 29.55 ||
		created.GetStatus() != miningv1.MinerStatus_MINER_STATUS_ACTIVE || created.GetCustomerId() != customerA ||
		created.GetSerial() != "SN-1" || created.GetZone() != "row-1" || created.GetCreateTime() == nil ||
		created.GetLastSeenTime() != nil {
		t.Fatalf("created %v", created)
	}
	// A given efficiency within 5% is kept as given; a status is kept.
	other := m.invCreateMiner(ctx, &miningv1.CreateMinerRequest{
		Name: "rack-1-b", Model: "Antminer S21", Site: "austin", HashrateTh: 200, PowerW: 3500,
		EfficiencyJPerTh: 17.9, Status: miningv1.MinerStatus_MINER_STATUS_MAINTENANCE,
	})
	if other.GetEfficiencyJPerTh() != 17.9 || other.GetStatus() != miningv1.MinerStatus_MINER_STATUS_MAINTENANCE ||
		other.GetCustomerId() != "" || other.GetSerial() != "" {
		t.Fatalf("other %v", other)
	}

	got, err := m.gw.GetMiner(ctx, &miningv1.GetMinerRequest{Id: created.GetId()})
	if err != nil || !proto.Equal(got.GetMiner(), created) {
		t.Fatalf("get: %v, %v; want %v", got, err, created)
	}
	list, err := m.gw.ListMiners(ctx, &miningv1.ListMinersRequest{})
	if err != nil || len(list.GetMiners()) != 2 || list.GetTotalSize() != 2 || list.GetNextPageToken() != "" ||
		list.GetMiners()[0].GetId() != created.GetId() {
		t.Fatalf("list: %v, %v", list, err)
	}

	// Partial update: only present fields change; new figures re-derive the efficiency.
	upd, err := m.gw.UpdateMiner(ctx, &miningv1.UpdateMinerRequest{
		Id: created.GetId(), HashrateTh: proto.Float64(100), Status: miningv1.MinerStatus_MINER_STATUS_OFFLINE.Enum(),
		Model: proto.String("ANTMINER S19J PRO"),
	})
	if err != nil {
		t.Fatal(err)
	}
	u := upd.GetMiner()
	if u.GetHashrateTh() != 100 || u.GetPowerW() != 3250 || u.GetEfficiencyJPerTh() != 32.5 ||
		u.GetStatus() != miningv1.MinerStatus_MINER_STATUS_OFFLINE || u.GetModel() != "Antminer S19j Pro" ||
		u.GetName() != "rack-1-a" || u.GetSerial() != "SN-1" || u.GetNotes() != "tuned\nfirmware 2" ||
		!u.GetUpdateTime().AsTime().After(created.GetUpdateTime().AsTime()) ||
		!u.GetCreateTime().AsTime().Equal(created.GetCreateTime().AsTime()) {
		t.Fatalf("updated %v", u)
	}
	// Present and empty: the serial is cleared and the miner unassigned.
	upd, err = m.gw.UpdateMiner(ctx, &miningv1.UpdateMinerRequest{
		Id: created.GetId(), Serial: proto.String(""), CustomerId: proto.String(""), EfficiencyJPerTh: proto.Float64(33),
	})
	if err != nil || upd.GetMiner().GetSerial() != "" || upd.GetMiner().GetCustomerId() != "" ||
		upd.GetMiner().GetEfficiencyJPerTh() != 33 {
		t.Fatalf("clear: %v, %v", upd, err)
	}
	// The serial is free again.
	m.invCreateMiner(ctx, &miningv1.CreateMinerRequest{Name: "rack-2", Model: "Antminer S9", Serial: "SN-1", HashrateTh: 13.5, PowerW: 1323})

	if _, err := m.gw.DeleteMiner(ctx, &miningv1.DeleteMinerRequest{Id: created.GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = m.gw.GetMiner(ctx, &miningv1.GetMinerRequest{Id: created.GetId()})
	wantCode(t, err, codes.NotFound, errcode.NotFound)
	_, err = m.gw.DeleteMiner(ctx, &miningv1.DeleteMinerRequest{Id: created.GetId()})
	wantCode(t, err, codes.NotFound, errcode.NotFound)
	_, err = m.gw.UpdateMiner(ctx, &miningv1.UpdateMinerRequest{Id: created.GetId(), Name: proto.String("x")})
	wantCode(t, err, codes.NotFound, errcode.NotFound)
}

func TestInventoryCreateMinerBadInputs(t *testing.T) {
	m := startMining(t, nil)
	ctx := m.as(admin())
	m.invCreateMiner(ctx, func() *miningv1.CreateMinerRequest { r := invS19("taken"); r.Serial = "SN-TAKEN"; return r }())

	tests := []struct {
		name  string
		edit  func(*miningv1.CreateMinerRequest)
		code  codes.Code
		field string
	}{
		{"empty name", func(r *miningv1.CreateMinerRequest) { r.Name = "" }, codes.InvalidArgument, "name"},
		{"long name", func(r *miningv1.CreateMinerRequest) { r.Name = strings.Repeat("n", 129) }, codes.InvalidArgument, "name"},
		{"name with spaces around", func(r *miningv1.CreateMinerRequest) { r.Name = " a " }, codes.InvalidArgument, "name"},
		{"name with control character", func(r *miningv1.CreateMinerRequest) { r.Name = "a\x07b" }, codes.InvalidArgument, "name"},
		{"empty model", func(r *miningv1.CreateMinerRequest) { r.Model = "" }, codes.InvalidArgument, "model"},
		{"unknown model", func(r *miningv1.CreateMinerRequest) { r.Model = "Antminer S99" }, codes.InvalidArgument, "model"},
		{"long serial", func(r *miningv1.CreateMinerRequest) { r.Serial = strings.Repeat("s", 129) }, codes.InvalidArgument, "serial"},
		{"serial with tab", func(r *miningv1.CreateMinerRequest) { r.Serial = "SN\t1" }, codes.InvalidArgument, "serial"},
		{"long site", func(r *miningv1.CreateMinerRequest) { r.Site = strings.Repeat("s", 129) }, codes.InvalidArgument, "site"},
		{"long zone", func(r *miningv1.CreateMinerRequest) { r.Zone = strings.Repeat("z", 129) }, codes.InvalidArgument, "zone"},
		{"customer not a uuid", func(r *miningv1.CreateMinerRequest) { r.CustomerId = "acme" }, codes.InvalidArgument, "customer_id"},
		{"undefined status", func(r *miningv1.CreateMinerRequest) { r.Status = 99 }, codes.InvalidArgument, "status"},
		{"zero hashrate", func(r *miningv1.CreateMinerRequest) { r.HashrateTh = 0 }, codes.InvalidArgument, "hashrate_th"},
		{"negative hashrate", func(r *miningv1.CreateMinerRequest) { r.HashrateTh = -110 }, codes.InvalidArgument, "hashrate_th"},
		{"implausible hashrate", func(r *miningv1.CreateMinerRequest) { r.HashrateTh = 10_001 }, codes.InvalidArgument, "hashrate_th"},
		{"infinite hashrate", func(r *miningv1.CreateMinerRequest) { r.HashrateTh = math.Inf(1) }, codes.InvalidArgument, "hashrate_th"},
		{"NaN power", func(r *miningv1.CreateMinerRequest) { r.PowerW = math.NaN() }, codes.InvalidArgument, "power_w"},
		{"zero power", func(r *miningv1.CreateMinerRequest) { r.PowerW = 0 }, codes.InvalidArgument, "power_w"},
		{"negative power", func(r *miningv1.CreateMinerRequest) { r.PowerW = -3250 }, codes.InvalidArgument, "power_w"},
		{"implausible power", func(r *miningv1.CreateMinerRequest) { r.PowerW = 100_001 }, codes.InvalidArgument, "power_w"},
		{"negative efficiency", func(r *miningv1.CreateMinerRequest) { r.EfficiencyJPerTh = -29.5 }, codes.InvalidArgument, "efficiency_j_per_th"},
		{"implausible efficiency", func(r *miningv1.CreateMinerRequest) { r.EfficiencyJPerTh = 5001 }, codes.InvalidArgument, "efficiency_j_per_th"},
		{"efficiency disagrees", func(r *miningv1.CreateMinerRequest) { r.EfficiencyJPerTh = 31.1 }, codes.InvalidArgument, "efficiency_j_per_th"},
		{"long notes", func(r *miningv1.CreateMinerRequest) { r.Notes = strings.Repeat("x", 2001) }, codes.InvalidArgument, "notes"},
		{"notes with NUL", func(r *miningv1.CreateMinerRequest) { r.Notes = "a\x00b" }, codes.InvalidArgument, "notes"},
		{"duplicate serial", func(r *miningv1.CreateMinerRequest) { r.Serial = "SN-TAKEN" }, codes.AlreadyExists, "serial"},
		{"duplicate name at the site", func(r *miningv1.CreateMinerRequest) { r.Name = "taken" }, codes.AlreadyExists, "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := invS19("fresh")
			tc.edit(req)
			_, err := m.gw.CreateMiner(ctx, req)
			wantField(t, err, tc.code, tc.field)
		})
	}
	// Nothing but the first miner was written; the same name at another site is fine.
	list, err := m.gw.ListMiners(ctx, &miningv1.ListMinersRequest{})
	if err != nil || list.GetTotalSize() != 1 {
		t.Fatalf("after bad creates: %v, %v", list, err)
	}
	r := invS19("taken")
	r.Site = "site-2"
	m.invCreateMiner(ctx, r)
}

func TestInventoryUpdateMinerBadInputs(t *testing.T) {
	m := startMining(t, nil)
	ctx := m.as(admin())
	a := m.invCreateMiner(ctx, func() *miningv1.CreateMinerRequest { r := invS19("a"); r.Serial = "SN-A"; return r }())
	m.invCreateMiner(ctx, func() *miningv1.CreateMinerRequest { r := invS19("b"); r.Serial = "SN-B"; r.Site = "site-2"; return r }())

	tests := []struct {
		name  string
		req   *miningv1.UpdateMinerRequest
		code  codes.Code
		field string
	}{
		{"id not a uuid", &miningv1.UpdateMinerRequest{Id: "1", Name: proto.String("x")}, codes.InvalidArgument, "id"},
		{"empty name", &miningv1.UpdateMinerRequest{Name: proto.String("")}, codes.InvalidArgument, "name"},
		{"name with spaces around", &miningv1.UpdateMinerRequest{Name: proto.String("x ")}, codes.InvalidArgument, "name"},
		{"empty model", &miningv1.UpdateMinerRequest{Model: proto.String("")}, codes.InvalidArgument, "model"},
		{"unknown model", &miningv1.UpdateMinerRequest{Model: proto.String("Antminer S99")}, codes.InvalidArgument, "model"},
		{"long serial", &miningv1.UpdateMinerRequest{Serial: proto.String(strings.Repeat("s", 129))}, codes.InvalidArgument, "serial"},
		{"long site", &miningv1.UpdateMinerRequest{Site: proto.String(strings.Repeat("s", 129))}, codes.InvalidArgument, "site"},
		{"zone with control character", &miningv1.UpdateMinerRequest{Zone: proto.String("r\x1b1")}, codes.InvalidArgument, "zone"},
		{"customer not a uuid", &miningv1.UpdateMinerRequest{CustomerId: proto.String("acme")}, codes.InvalidArgument, "customer_id"},
		{"unspecified status", &miningv1.UpdateMinerRequest{Status: miningv1.MinerStatus_MINER_STATUS_UNSPECIFIED.Enum()}, codes.InvalidArgument, "status"},
		{"undefined status", &miningv1.UpdateMinerRequest{Status: miningv1.MinerStatus(42).Enum()}, codes.InvalidArgument, "status"},
		{"zero hashrate", &miningv1.UpdateMinerRequest{HashrateTh: proto.Float64(0)}, codes.InvalidArgument, "hashrate_th"},
		{"implausible hashrate", &miningv1.UpdateMinerRequest{HashrateTh: proto.Float64(20_000)}, codes.InvalidArgument, "hashrate_th"},
		{"negative power", &miningv1.UpdateMinerRequest{PowerW: proto.Float64(-1)}, codes.InvalidArgument, "power_w"},
		{"infinite power", &miningv1.UpdateMinerRequest{PowerW: proto.Float64(math.Inf(1))}, codes.InvalidArgument, "power_w"},
		{"zero efficiency", &miningv1.UpdateMinerRequest{EfficiencyJPerTh: proto.Float64(0)}, codes.InvalidArgument, "efficiency_j_per_th"},
		{"efficiency disagrees with stored figures", &miningv1.UpdateMinerRequest{EfficiencyJPerTh: proto.Float64(25)}, codes.InvalidArgument, "efficiency_j_per_th"},
		{"efficiency disagrees with new figures", &miningv1.UpdateMinerRequest{PowerW: proto.Float64(4000), EfficiencyJPerTh: proto.Float64(29.55)}, codes.InvalidArgument, "efficiency_j_per_th"},
		{"long notes", &miningv1.UpdateMinerRequest{Notes: proto.String(strings.Repeat("x", 2001))}, codes.InvalidArgument, "notes"},
		{"duplicate serial", &miningv1.UpdateMinerRequest{Serial: proto.String("SN-B")}, codes.AlreadyExists, "serial"},
		{"duplicate name at the new site", &miningv1.UpdateMinerRequest{Site: proto.String("site-2"), Name: proto.String("b")}, codes.AlreadyExists, "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.req.Id == "" {
				tc.req.Id = a.GetId()
			}
			_, err := m.gw.UpdateMiner(ctx, tc.req)
			wantField(t, err, tc.code, tc.field)
		})
	}
	got, err := m.gw.GetMiner(ctx, &miningv1.GetMinerRequest{Id: a.GetId()})
	if err != nil || !proto.Equal(got.GetMiner(), a) {
		t.Fatalf("after bad updates: %v, %v; want unchanged %v", got, err, a)
	}
	for _, id := range []string{"00000000-0000-4000-8000-0000000000ff"} {
		_, err := m.gw.UpdateMiner(ctx, &miningv1.UpdateMinerRequest{Id: id, Name: proto.String("x")})
		wantCode(t, err, codes.NotFound, errcode.NotFound)
		_, err = m.gw.GetMiner(ctx, &miningv1.GetMinerRequest{Id: id})
		wantCode(t, err, codes.NotFound, errcode.NotFound)
	}
	_, err = m.gw.GetMiner(ctx, &miningv1.GetMinerRequest{Id: "nope"})
	wantField(t, err, codes.InvalidArgument, "id")
	_, err = m.gw.DeleteMiner(ctx, &miningv1.DeleteMinerRequest{Id: "nope"})
	wantField(t, err, codes.InvalidArgument, "id")
}

// invWithPermission returns p also holding permission.
func invWithPermission(p *authn.Principal, permission string) *authn.Principal {
	p.Permissions = append(p.Permissions, permission)
	return p
}

func TestInventoryMinerTenancy(t *testing.T) {
	m := startMining(t, nil)
	adm := m.as(admin())
	minerA := m.invCreateMiner(adm, invWithCustomer(invS19("a"), customerA))
	minerB := m.invCreateMiner(adm, invWithCustomer(invS19("b"), customerB))
	unassigned := m.invCreateMiner(adm, invS19("free"))
	const customerC = "cccccccc-0000-4000-8000-00000000000c"

	t.Run("client reads", func(t *testing.T) {
		ctx := m.as(client(customerA))
		got, err := m.gw.GetMiner(ctx, &miningv1.GetMinerRequest{Id: minerA.GetId()})
		if err != nil || got.GetMiner().GetId() != minerA.GetId() {
			t.Fatalf("own miner: %v, %v", got, err)
		}
		for _, other := range []*miningv1.Miner{minerB, unassigned} {
			_, err := m.gw.GetMiner(ctx, &miningv1.GetMinerRequest{Id: other.GetId()})
			wantCode(t, err, codes.NotFound, errcode.NotFound)
		}
		list, err := m.gw.ListMiners(ctx, &miningv1.ListMinersRequest{})
		if err != nil || len(list.GetMiners()) != 1 || list.GetTotalSize() != 1 || list.GetMiners()[0].GetId() != minerA.GetId() {
			t.Fatalf("list: %v, %v", list, err)
		}
		list, err = m.gw.ListMiners(ctx, &miningv1.ListMinersRequest{CustomerId: customerB})
		if err != nil || len(list.GetMiners()) != 0 || list.GetTotalSize() != 0 {
			t.Fatalf("list of another customer: %v, %v", list, err)
		}
		// Clients have no write permissions at all.
		_, err = m.gw.CreateMiner(ctx, invWithCustomer(invS19("c"), customerA))
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		_, err = m.gw.UpdateMiner(ctx, &miningv1.UpdateMinerRequest{Id: minerA.GetId(), Notes: proto.String("x")})
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		_, err = m.gw.DeleteMiner(ctx, &miningv1.DeleteMinerRequest{Id: minerA.GetId()})
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
	})

	t.Run("broker", func(t *testing.T) {
		ctx := m.as(broker(customerA, customerC))
		list, err := m.gw.ListMiners(ctx, &miningv1.ListMinersRequest{})
		if err != nil || list.GetTotalSize() != 1 {
			t.Fatalf("list: %v, %v", list, err)
		}
		made := m.invCreateMiner(ctx, invWithCustomer(invS19("c"), customerC))
		if made.GetCustomerId() != customerC {
			t.Fatalf("created %v", made)
		}
		_, err = m.gw.CreateMiner(ctx, invWithCustomer(invS19("x"), customerB))
		wantField(t, err, codes.PermissionDenied, "customer_id")
		_, err = m.gw.CreateMiner(ctx, invS19("x"))
		wantField(t, err, codes.InvalidArgument, "customer_id")

		upd, err := m.gw.UpdateMiner(ctx, &miningv1.UpdateMinerRequest{Id: minerA.GetId(), CustomerId: proto.String(customerC)})
		if err != nil || upd.GetMiner().GetCustomerId() != customerC {
			t.Fatalf("move within scope: %v, %v", upd, err)
		}
		_, err = m.gw.UpdateMiner(ctx, &miningv1.UpdateMinerRequest{Id: minerA.GetId(), CustomerId: proto.String(customerB)})
		wantField(t, err, codes.PermissionDenied, "customer_id")
		_, err = m.gw.UpdateMiner(ctx, &miningv1.UpdateMinerRequest{Id: minerA.GetId(), CustomerId: proto.String("")})
		wantField(t, err, codes.PermissionDenied, "customer_id")
		for _, other := range []*miningv1.Miner{minerB, unassigned} {
			_, err := m.gw.UpdateMiner(ctx, &miningv1.UpdateMinerRequest{Id: other.GetId(), CustomerId: proto.String(customerA)})
			wantCode(t, err, codes.NotFound, errcode.NotFound)
		}
		// Brokers may not delete; one that was given miners:delete still sees only its scope.
		_, err = m.gw.DeleteMiner(ctx, &miningv1.DeleteMinerRequest{Id: minerA.GetId()})
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		deleter := m.as(invWithPermission(broker(customerA, customerC), authn.PermMinersDelete))
		for _, other := range []*miningv1.Miner{minerB, unassigned} {
			_, err := m.gw.DeleteMiner(deleter, &miningv1.DeleteMinerRequest{Id: other.GetId()})
			wantCode(t, err, codes.NotFound, errcode.NotFound)
		}
		if _, err := m.gw.DeleteMiner(deleter, &miningv1.DeleteMinerRequest{Id: made.GetId()}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("unrestricted callers see everything", func(t *testing.T) {
		for name, ctx := range map[string]context.Context{"owner": m.as(owner()), "admin": adm, "operator": m.ctx()} {
			c := m.gw
			if name == "operator" {
				c = m.op
			}
			list, err := c.ListMiners(ctx, &miningv1.ListMinersRequest{})
			if err != nil || list.GetTotalSize() != 3 {
				t.Fatalf("%s list: %v, %v", name, list, err)
			}
			if _, err := c.GetMiner(ctx, &miningv1.GetMinerRequest{Id: unassigned.GetId()}); err != nil {
				t.Fatalf("%s get: %v", name, err)
			}
		}
	})

	t.Run("catalogue", func(t *testing.T) {
		for _, p := range []*authn.Principal{client(customerA), broker(customerA)} {
			ctx := m.as(p)
			list, err := m.gw.ListMinerModels(ctx, &miningv1.ListMinerModelsRequest{})
			if err != nil || len(list.GetMinerModels()) != 14 {
				t.Fatalf("%s list models: %v, %v", p.Role, list, err)
			}
			if _, err := m.gw.GetMinerModel(ctx, &miningv1.GetMinerModelRequest{Id: list.GetMinerModels()[0].GetId()}); err != nil {
				t.Fatalf("%s get model: %v", p.Role, err)
			}
			_, err = m.gw.CreateMinerModel(ctx, &miningv1.CreateMinerModelRequest{Vendor: "X", Name: "Y", HashrateTh: 1, PowerW: 30})
			wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
			_, err = m.gw.UpdateMinerModel(ctx, &miningv1.UpdateMinerModelRequest{Id: list.GetMinerModels()[0].GetId(), Source: proto.String("x")})
			wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		}
	})
}

func TestInventoryListMinersFiltersAndPages(t *testing.T) {
	m := startMining(t, nil)
	ctx := m.as(admin())
	var want []string
	for i := range 23 {
		r := invS19(fmt.Sprintf("m-%02d", i))
		if i%2 == 1 {
			r.CustomerId = customerA
		}
		if i%3 == 0 {
			r.Model, r.HashrateTh, r.PowerW = "Antminer S21", 200, 3500
		}
		if i%4 == 0 {
			r.Site = "site-2"
		}
		if i%5 == 0 {
			r.Status = miningv1.MinerStatus_MINER_STATUS_RETIRED
		}
		want = append(want, m.invCreateMiner(ctx, r).GetId())
	}

	t.Run("filters", func(t *testing.T) {
		count := func(pred func(i int) bool) int64 {
			n := int64(0)
			for i := range 23 {
				if pred(i) {
					n++
				}
			}
			return n
		}
		tests := []struct {
			name string
			req  *miningv1.ListMinersRequest
			want int64
		}{
			{"customer", &miningv1.ListMinersRequest{CustomerId: customerA}, count(func(i int) bool { return i%2 == 1 })},
			{"model, any case", &miningv1.ListMinersRequest{Model: "antminer s21"}, count(func(i int) bool { return i%3 == 0 })},
			{"site", &miningv1.ListMinersRequest{Site: "site-2"}, count(func(i int) bool { return i%4 == 0 })},
			{"status", &miningv1.ListMinersRequest{Status: miningv1.MinerStatus_MINER_STATUS_RETIRED}, count(func(i int) bool { return i%5 == 0 })},
			{"all combined", &miningv1.ListMinersRequest{CustomerId: customerA, Model: "Antminer S21", Site: "site-1", Status: miningv1.MinerStatus_MINER_STATUS_ACTIVE},
				count(func(i int) bool { return i%2 == 1 && i%3 == 0 && i%4 != 0 && i%5 != 0 })},
			{"unknown model", &miningv1.ListMinersRequest{Model: "nope"}, 0},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tc.req.PageSize = 2
				var seen int64
				for {
					resp, err := m.gw.ListMiners(ctx, tc.req)
					if err != nil {
						t.Fatal(err)
					}
					if resp.GetTotalSize() != tc.want {
						t.Fatalf("total %d, want %d", resp.GetTotalSize(), tc.want)
					}
					seen += int64(len(resp.GetMiners()))
					if resp.GetNextPageToken() == "" {
						break
					}
					tc.req.PageToken = resp.GetNextPageToken()
				}
				if seen != tc.want {
					t.Fatalf("saw %d miners, want %d", seen, tc.want)
				}
			})
		}
	})

	t.Run("stable pages while miners are added", func(t *testing.T) {
		var got []string
		req := &miningv1.ListMinersRequest{PageSize: 5}
		for page := 0; ; page++ {
			resp, err := m.gw.ListMiners(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, mi := range resp.GetMiners() {
				got = append(got, mi.GetId())
			}
			// A miner added between pages sorts after every miner listed so far.
			added := m.invCreateMiner(ctx, invS19(fmt.Sprintf("late-%d", page)))
			want = append(want, added.GetId())
			if resp.GetNextPageToken() == "" {
				break
			}
			req.PageToken = resp.GetNextPageToken()
		}
		// Every miner exactly once, in creation order; the last page ended before the last insert.
		if !slices.Equal(got, want[:len(want)-1]) {
			t.Fatalf("paged ids\n%v\nwant\n%v", got, want[:len(want)-1])
		}
	})

	t.Run("default and maximum page size", func(t *testing.T) {
		for range 100 - len(want) + 5 {
			want = append(want, m.invCreateMiner(ctx, invS19(fmt.Sprintf("bulk-%d", len(want)))).GetId())
		}
		resp, err := m.gw.ListMiners(ctx, &miningv1.ListMinersRequest{})
		if err != nil || len(resp.GetMiners()) != 100 || resp.GetNextPageToken() == "" || resp.GetTotalSize() != int64(len(want)) {
			t.Fatalf("default page: %d miners, next %q, total %d, %v", len(resp.GetMiners()), resp.GetNextPageToken(), resp.GetTotalSize(), err)
		}
		resp, err = m.gw.ListMiners(ctx, &miningv1.ListMinersRequest{PageSize: 1000})
		if err != nil || len(resp.GetMiners()) != len(want) || resp.GetNextPageToken() != "" {
			t.Fatalf("maximum page: %d miners, next %q, %v", len(resp.GetMiners()), resp.GetNextPageToken(), err)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		first, err := m.gw.ListMiners(ctx, &miningv1.ListMinersRequest{PageSize: 3, Site: "site-1"})
		if err != nil || first.GetNextPageToken() == "" {
			t.Fatalf("first page: %v, %v", first, err)
		}
		tok := first.GetNextPageToken()
		tampered := []byte(tok)
		tampered[len(tampered)/2] ^= 1 // a middle character: every bit of it is payload
		tests := []struct {
			name  string
			req   *miningv1.ListMinersRequest
			field string
		}{
			{"garbage token", &miningv1.ListMinersRequest{PageToken: "not a token", Site: "site-1"}, "page_token"},
			{"tampered token", &miningv1.ListMinersRequest{PageToken: string(tampered), Site: "site-1"}, "page_token"},
			{"truncated token", &miningv1.ListMinersRequest{PageToken: tok[:len(tok)-3], Site: "site-1"}, "page_token"},
			{"token of other filters", &miningv1.ListMinersRequest{PageToken: tok, Site: "site-2"}, "page_token"},
			{"token without its filters", &miningv1.ListMinersRequest{PageToken: tok}, "page_token"},
			{"long token", &miningv1.ListMinersRequest{PageToken: strings.Repeat("a", 1025)}, "page_token"},
			{"negative page size", &miningv1.ListMinersRequest{PageSize: -1}, "page_size"},
			{"page size over 1000", &miningv1.ListMinersRequest{PageSize: 1001}, "page_size"},
			{"customer not a uuid", &miningv1.ListMinersRequest{CustomerId: "acme"}, "customer_id"},
			{"undefined status", &miningv1.ListMinersRequest{Status: 7}, "status"},
			{"long model", &miningv1.ListMinersRequest{Model: strings.Repeat("m", 129)}, "model"},
			{"long site", &miningv1.ListMinersRequest{Site: strings.Repeat("s", 129)}, "site"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := m.gw.ListMiners(ctx, tc.req)
				wantField(t, err, codes.InvalidArgument, tc.field)
			})
		}
		// The same token with the same filters (and another page size) goes on.
		next, err := m.gw.ListMiners(ctx, &miningv1.ListMinersRequest{PageSize: 50, Site: "site-1", PageToken: tok})
		if err != nil || len(next.GetMiners()) == 0 || next.GetMiners()[0].GetId() == first.GetMiners()[2].GetId() {
			t.Fatalf("next page: %v, %v", next, err)
		}
	})
}

// TestInventoryMinerCache: reads of a miner are served from the cache (a change behind the service's back
// stays invisible), and every write through the service invalidates it at once.
func TestInventoryMinerCache(t *testing.T) {
	// A real Redis as the second level, as in production: the test does not depend on the
	// short in-process TTL, and a second replica shares it.
	rdb := redistest.Start(t)
	m := startMining(t, map[string]string{"REDIS_URL": rdb.URL()})
	ctx := m.as(admin())
	mi := m.invCreateMiner(ctx, invWithCustomer(invS19("cached"), customerA))
	get := func() (*miningv1.Miner, error) {
		resp, err := m.gw.GetMiner(ctx, &miningv1.GetMinerRequest{Id: mi.GetId()})
		return resp.GetMiner(), err
	}
	if _, err := get(); err != nil { // fills the cache
		t.Fatal(err)
	}
	if _, err := m.h.Runtime.DB.Exec(ctx, `UPDATE miners SET notes = 'behind the back' WHERE id = $1`, mi.GetId()); err != nil {
		t.Fatal(err)
	}
	if got, err := get(); err != nil || got.GetNotes() != "" {
		t.Fatalf("cached read: %v, %v", got, err)
	}
	// The tenancy check runs on every cached read.
	_, err := m.gw.GetMiner(m.as(client(customerB)), &miningv1.GetMinerRequest{Id: mi.GetId()})
	wantCode(t, err, codes.NotFound, errcode.NotFound)

	if _, err := m.gw.UpdateMiner(ctx, &miningv1.UpdateMinerRequest{Id: mi.GetId(), Name: proto.String("renamed")}); err != nil {
		t.Fatal(err)
	}
	if got, err := get(); err != nil || got.GetName() != "renamed" || got.GetNotes() != "behind the back" {
		t.Fatalf("after update: %v, %v", got, err)
	}
	// A second replica (same database and Redis) never saw the miner: its first read must not
	// find the value the first replica cached before the update.
	second := invStartReplica(t, m)
	if got, err := second.GetMiner(ctx, &miningv1.GetMinerRequest{Id: mi.GetId()}); err != nil || got.GetMiner().GetName() != "renamed" {
		t.Fatalf("second replica: %v, %v", got, err)
	}
	if _, err := m.gw.UpdateMiner(ctx, &miningv1.UpdateMinerRequest{Id: mi.GetId(), Zone: proto.String("row-9")}); err != nil {
		t.Fatal(err)
	}
	// Moving the miner to another customer takes effect for both customers at once.
	if _, err := m.gw.UpdateMiner(ctx, &miningv1.UpdateMinerRequest{Id: mi.GetId(), CustomerId: proto.String(customerB)}); err != nil {
		t.Fatal(err)
	}
	_, err = m.gw.GetMiner(m.as(client(customerA)), &miningv1.GetMinerRequest{Id: mi.GetId()})
	wantCode(t, err, codes.NotFound, errcode.NotFound)
	if _, err := m.gw.GetMiner(m.as(client(customerB)), &miningv1.GetMinerRequest{Id: mi.GetId()}); err != nil {
		t.Fatal(err)
	}
	// Renaming its model shows in the miner.
	models, err := m.gw.ListMinerModels(ctx, &miningv1.ListMinerModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var modelID string
	for _, md := range models.GetMinerModels() {
		if md.GetName() == mi.GetModel() {
			modelID = md.GetId()
		}
	}
	if _, err := m.gw.UpdateMinerModel(ctx, &miningv1.UpdateMinerModelRequest{Id: modelID, Name: proto.String("Antminer S19 Pro (110T)")}); err != nil {
		t.Fatal(err)
	}
	if got, err := get(); err != nil || got.GetModel() != "Antminer S19 Pro (110T)" {
		t.Fatalf("after model rename: %v, %v", got, err)
	}
	if _, err := m.gw.DeleteMiner(ctx, &miningv1.DeleteMinerRequest{Id: mi.GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = get()
	wantCode(t, err, codes.NotFound, errcode.NotFound)
}

func TestInventoryMinerModels(t *testing.T) {
	m := startMining(t, nil)
	ctx := m.as(admin())

	all, err := m.gw.ListMinerModels(ctx, &miningv1.ListMinerModelsRequest{})
	if err != nil || len(all.GetMinerModels()) != 14 || all.GetNextPageToken() != "" {
		t.Fatalf("seeded catalogue: %v, %v", all, err)
	}
	var order []string
	for _, md := range all.GetMinerModels() {
		order = append(order, md.GetVendor()+"/"+md.GetName())
	}
	if !slices.IsSortedFunc(order, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) }) ||
		order[0] != "Bitmain/Antminer S17" || order[13] != "MicroBT/Whatsminer M66S+" {
		t.Fatalf("order %v", order)
	}
	pro := all.GetMinerModels()[slices.Index(order, "Bitmain/Antminer S19 Pro")]
	if pro.GetHashrateTh() != 110 || pro.GetPowerW() != 3250 || pro.GetEfficiencyJPerTh() != 29.5 || pro.GetSource() == "" {
		t.Fatalf("S19 Pro %v", pro)
	}

	// Vendor filter (any case) and pages of 4.
	var bitmain []string
	req := &miningv1.ListMinerModelsRequest{Vendor: "BITMAIN", PageSize: 4}
	for {
		resp, err := m.gw.ListMinerModels(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, md := range resp.GetMinerModels() {
			bitmain = append(bitmain, md.GetVendor()+"/"+md.GetName())
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if !slices.Equal(bitmain, order[:10]) {
		t.Fatalf("bitmain pages %v, want %v", bitmain, order[:10])
	}

	got, err := m.gw.GetMinerModel(ctx, &miningv1.GetMinerModelRequest{Id: pro.GetId()})
	if err != nil || !proto.Equal(got.GetMinerModel(), pro) {
		t.Fatalf("get: %v, %v", got, err)
	}
	_, err = m.gw.GetMinerModel(ctx, &miningv1.GetMinerModelRequest{Id: "00000000-0000-4000-8000-0000000000ff"})
	wantCode(t, err, codes.NotFound, errcode.NotFound)

	// An admin adds a model: efficiency derived; a miner of it can be created at once.
	created, err := m.gw.CreateMinerModel(ctx, &miningv1.CreateMinerModelRequest{
		Vendor: "Bitdeer", Name: "SealMiner A2", HashrateTh: 226, PowerW: 3730, Source: "vendor spec sheet",
	})
	if err != nil {
		t.Fatal(err)
	}
	cm := created.GetMinerModel()
	if cm.GetEfficiencyJPerTh() != 16.5 || cm.GetId() == "" || cm.GetCreateTime() == nil {
		t.Fatalf("created %v", cm)
	}
	m.invCreateMiner(ctx, &miningv1.CreateMinerRequest{Name: "seal-1", Model: "sealminer a2", HashrateTh: 226, PowerW: 3730})
	if all, err := m.gw.ListMinerModels(ctx, &miningv1.ListMinerModelsRequest{}); err != nil || len(all.GetMinerModels()) != 15 ||
		all.GetMinerModels()[0].GetName() != "SealMiner A2" {
		t.Fatalf("after create: %v, %v", all, err)
	}

	// Partial updates.
	upd, err := m.gw.UpdateMinerModel(ctx, &miningv1.UpdateMinerModelRequest{Id: cm.GetId(), Source: proto.String("review")})
	if err != nil || upd.GetMinerModel().GetSource() != "review" || upd.GetMinerModel().GetEfficiencyJPerTh() != 16.5 ||
		upd.GetMinerModel().GetName() != "SealMiner A2" {
		t.Fatalf("source update: %v, %v", upd, err)
	}
	upd, err = m.gw.UpdateMinerModel(ctx, &miningv1.UpdateMinerModelRequest{Id: cm.GetId(), PowerW: proto.Float64(3390)})
	if err != nil || upd.GetMinerModel().GetEfficiencyJPerTh() != 15 || upd.GetMinerModel().GetHashrateTh() != 226 {
		t.Fatalf("power update: %v, %v", upd, err)
	}
	upd, err = m.gw.UpdateMinerModel(ctx, &miningv1.UpdateMinerModelRequest{Id: cm.GetId(), EfficiencyJPerTh: proto.Float64(15.2)})
	if err != nil || upd.GetMinerModel().GetEfficiencyJPerTh() != 15.2 {
		t.Fatalf("efficiency update: %v, %v", upd, err)
	}
	got, err = m.gw.GetMinerModel(ctx, &miningv1.GetMinerModelRequest{Id: cm.GetId()})
	if err != nil || !proto.Equal(got.GetMinerModel(), upd.GetMinerModel()) {
		t.Fatalf("get after update: %v, %v; want %v", got, err, upd)
	}
	// An edit of the texts alone leaves the stored figures alone.
	upd, err = m.gw.UpdateMinerModel(ctx, &miningv1.UpdateMinerModelRequest{Id: pro.GetId(), Vendor: proto.String("Bitmain Technologies")})
	if err != nil || upd.GetMinerModel().GetEfficiencyJPerTh() != 29.5 {
		t.Fatalf("vendor update: %v, %v", upd, err)
	}

	t.Run("bad creates", func(t *testing.T) {
		tests := []struct {
			name  string
			edit  func(*miningv1.CreateMinerModelRequest)
			code  codes.Code
			field string
		}{
			{"empty vendor", func(r *miningv1.CreateMinerModelRequest) { r.Vendor = "" }, codes.InvalidArgument, "vendor"},
			{"long vendor", func(r *miningv1.CreateMinerModelRequest) { r.Vendor = strings.Repeat("v", 129) }, codes.InvalidArgument, "vendor"},
			{"vendor with spaces around", func(r *miningv1.CreateMinerModelRequest) { r.Vendor = "Acme " }, codes.InvalidArgument, "vendor"},
			{"empty name", func(r *miningv1.CreateMinerModelRequest) { r.Name = "" }, codes.InvalidArgument, "name"},
			{"name with control character", func(r *miningv1.CreateMinerModelRequest) { r.Name = "X\x00" }, codes.InvalidArgument, "name"},
			{"zero hashrate", func(r *miningv1.CreateMinerModelRequest) { r.HashrateTh = 0 }, codes.InvalidArgument, "hashrate_th"},
			{"hashrate too precise", func(r *miningv1.CreateMinerModelRequest) { r.HashrateTh = 100.0001 }, codes.InvalidArgument, "hashrate_th"},
			{"implausible power", func(r *miningv1.CreateMinerModelRequest) { r.PowerW = 1e6 }, codes.InvalidArgument, "power_w"},
			{"fractional power", func(r *miningv1.CreateMinerModelRequest) { r.PowerW = 3000.5 }, codes.InvalidArgument, "power_w"},
			{"efficiency disagrees", func(r *miningv1.CreateMinerModelRequest) { r.EfficiencyJPerTh = 40 }, codes.InvalidArgument, "efficiency_j_per_th"},
			{"implausible efficiency", func(r *miningv1.CreateMinerModelRequest) { r.EfficiencyJPerTh = 6000 }, codes.InvalidArgument, "efficiency_j_per_th"},
			{"long source", func(r *miningv1.CreateMinerModelRequest) { r.Source = strings.Repeat("s", 513) }, codes.InvalidArgument, "source"},
			{"duplicate name, other case", func(r *miningv1.CreateMinerModelRequest) { r.Name = "ANTMINER S21" }, codes.AlreadyExists, "name"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req := &miningv1.CreateMinerModelRequest{Vendor: "Acme", Name: "Acme One", HashrateTh: 100, PowerW: 3000}
				tc.edit(req)
				_, err := m.gw.CreateMinerModel(ctx, req)
				wantField(t, err, tc.code, tc.field)
			})
		}
	})

	t.Run("bad updates", func(t *testing.T) {
		tests := []struct {
			name  string
			req   *miningv1.UpdateMinerModelRequest
			code  codes.Code
			field string
		}{
			{"id not a uuid", &miningv1.UpdateMinerModelRequest{Id: "x"}, codes.InvalidArgument, "id"},
			{"empty vendor", &miningv1.UpdateMinerModelRequest{Vendor: proto.String("")}, codes.InvalidArgument, "vendor"},
			{"empty name", &miningv1.UpdateMinerModelRequest{Name: proto.String("")}, codes.InvalidArgument, "name"},
			{"name with spaces around", &miningv1.UpdateMinerModelRequest{Name: proto.String(" X")}, codes.InvalidArgument, "name"},
			{"negative hashrate", &miningv1.UpdateMinerModelRequest{HashrateTh: proto.Float64(-1)}, codes.InvalidArgument, "hashrate_th"},
			{"fractional power", &miningv1.UpdateMinerModelRequest{PowerW: proto.Float64(1.5)}, codes.InvalidArgument, "power_w"},
			{"zero power", &miningv1.UpdateMinerModelRequest{PowerW: proto.Float64(0)}, codes.InvalidArgument, "power_w"},
			{"efficiency disagrees with stored figures", &miningv1.UpdateMinerModelRequest{EfficiencyJPerTh: proto.Float64(20)}, codes.InvalidArgument, "efficiency_j_per_th"},
			{"efficiency disagrees with new figures", &miningv1.UpdateMinerModelRequest{HashrateTh: proto.Float64(300), EfficiencyJPerTh: proto.Float64(15.2)}, codes.InvalidArgument, "efficiency_j_per_th"},
			{"long source", &miningv1.UpdateMinerModelRequest{Source: proto.String(strings.Repeat("s", 513))}, codes.InvalidArgument, "source"},
			{"duplicate name, other case", &miningv1.UpdateMinerModelRequest{Name: proto.String("avalon a16")}, codes.AlreadyExists, "name"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if tc.req.Id == "" {
					tc.req.Id = cm.GetId()
				}
				_, err := m.gw.UpdateMinerModel(ctx, tc.req)
				wantField(t, err, tc.code, tc.field)
			})
		}
		_, err := m.gw.UpdateMinerModel(ctx, &miningv1.UpdateMinerModelRequest{Id: "00000000-0000-4000-8000-0000000000ff", Source: proto.String("x")})
		wantCode(t, err, codes.NotFound, errcode.NotFound)
		got, err := m.gw.GetMinerModel(ctx, &miningv1.GetMinerModelRequest{Id: cm.GetId()})
		if err != nil || got.GetMinerModel().GetEfficiencyJPerTh() != 15.2 || got.GetMinerModel().GetName() != "SealMiner A2" {
			t.Fatalf("after bad updates: %v, %v", got, err)
		}
	})

	t.Run("bad lists", func(t *testing.T) {
		first, err := m.gw.ListMinerModels(ctx, &miningv1.ListMinerModelsRequest{PageSize: 2})
		if err != nil || first.GetNextPageToken() == "" {
			t.Fatalf("first page: %v, %v", first, err)
		}
		m.invCreateMiner(ctx, &miningv1.CreateMinerRequest{Name: "seal-2", Model: "SealMiner A2", HashrateTh: 226, PowerW: 3730})
		for name, req := range map[string]*miningv1.ListMinerModelsRequest{
			"garbage token":          {PageToken: "zzz"},
			"token of other filters": {PageToken: first.GetNextPageToken(), Vendor: "canaan"},
			"miner token": {PageToken: func() string {
				r, _ := m.gw.ListMiners(ctx, &miningv1.ListMinersRequest{PageSize: 1})
				return r.GetNextPageToken()
			}()},
		} {
			t.Run(name, func(t *testing.T) {
				_, err := m.gw.ListMinerModels(ctx, req)
				wantField(t, err, codes.InvalidArgument, "page_token")
			})
		}
		_, err = m.gw.ListMinerModels(ctx, &miningv1.ListMinerModelsRequest{PageSize: 1001})
		wantField(t, err, codes.InvalidArgument, "page_size")
		_, err = m.gw.ListMinerModels(ctx, &miningv1.ListMinerModelsRequest{Vendor: strings.Repeat("v", 129)})
		wantField(t, err, codes.InvalidArgument, "vendor")
	})
}

// invStartReplica runs a second mining process on m's database, Redis and certificates, and returns
// a gateway client of it (its calls take m.as credentials).
func invStartReplica(t *testing.T, m *mesh) miningv1.MiningServiceClient {
	t.Helper()
	env := maps.Clone(m.h.Env)
	env["GRPC_ADDR"], env["HTTP_ADDR"] = freeport.Addr(t), freeport.Addr(t)
	cfg, err := app.LoadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	h := servicetest.Start(t, app.Spec(), app.Register(cfg), env)
	h.Certs = m.h.Certs
	return miningv1.NewMiningServiceClient(h.Dial(gatewayID))
}
