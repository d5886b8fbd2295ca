package inventory

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/platform"
)

func TestApplyUpdate(t *testing.T) {
	stored := func() *Miner {
		return &Miner{Name: "a", Model: "Antminer S19 Pro", ModelID: "m1", Serial: "SN", CustomerID: "c",
			Status: StatusActive, HashrateTH: 110, PowerW: 3250, Efficiency: 29.5, Notes: "n"}
	}
	tests := []struct {
		name      string
		req       *miningv1.UpdateMinerRequest
		want      func(*Miner)
		wantModel bool
		wantField string
	}{
		{name: "nothing present", req: &miningv1.UpdateMinerRequest{}, want: func(*Miner) {}},
		{name: "efficiency kept when figures are absent", req: &miningv1.UpdateMinerRequest{Notes: proto.String("")},
			want: func(m *Miner) { m.Notes = "" }},
		{name: "efficiency re-derived from new hashrate", req: &miningv1.UpdateMinerRequest{HashrateTh: proto.Float64(100)},
			want: func(m *Miner) { m.HashrateTH, m.Efficiency = 100, 32.5 }},
		{name: "efficiency re-derived from new power", req: &miningv1.UpdateMinerRequest{PowerW: proto.Float64(3300)},
			want: func(m *Miner) { m.PowerW, m.Efficiency = 3300, 30 }},
		{name: "efficiency given with new figures", req: &miningv1.UpdateMinerRequest{PowerW: proto.Float64(3300), EfficiencyJPerTh: proto.Float64(30.5)},
			want: func(m *Miner) { m.PowerW, m.Efficiency = 3300, 30.5 }},
		{name: "efficiency given against stored figures", req: &miningv1.UpdateMinerRequest{EfficiencyJPerTh: proto.Float64(35)},
			wantField: "efficiency_j_per_th"},
		{name: "serial and customer cleared", req: &miningv1.UpdateMinerRequest{Serial: proto.String(""), CustomerId: proto.String("")},
			want: func(m *Miner) { m.Serial, m.CustomerID = "", "" }},
		{name: "customer lower-cased", req: &miningv1.UpdateMinerRequest{CustomerId: proto.String("AAAAAAAA-0000-4000-8000-00000000000A")},
			want: func(m *Miner) { m.CustomerID = "aaaaaaaa-0000-4000-8000-00000000000a" }},
		{name: "same model in other case is no change", req: &miningv1.UpdateMinerRequest{Model: proto.String("antminer s19 pro")},
			want: func(*Miner) {}},
		{name: "other model", req: &miningv1.UpdateMinerRequest{Model: proto.String("Antminer S21")}, wantModel: true,
			want: func(m *Miner) { m.Model, m.ModelID = "Antminer S21", "" }},
		{name: "status", req: &miningv1.UpdateMinerRequest{Status: miningv1.MinerStatus_MINER_STATUS_RETIRED.Enum()},
			want: func(m *Miner) { m.Status = StatusRetired }},
		{name: "site with trailing space", req: &miningv1.UpdateMinerRequest{Site: proto.String("x ")}, wantField: "site"},
		{name: "notes may span lines", req: &miningv1.UpdateMinerRequest{Notes: proto.String("a\r\n\tb")},
			want: func(m *Miner) { m.Notes = "a\r\n\tb" }},
		{name: "notes with escape", req: &miningv1.UpdateMinerRequest{Notes: proto.String("\x1b[31m")}, wantField: "notes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := stored()
			modelChanged, err := m.applyUpdate(tc.req)
			if tc.wantField != "" {
				var fe *platform.FieldError
				if !errors.As(err, &fe) || fe.Field != tc.wantField {
					t.Fatalf("err = %v, want field %s", err, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := stored()
			tc.want(want)
			if *m != *want || modelChanged != tc.wantModel {
				t.Fatalf("got %+v (model changed %v)\nwant %+v (%v)", *m, modelChanged, *want, tc.wantModel)
			}
		})
	}
}

func TestMinerFromCreateDefaults(t *testing.T) {
	m, err := minerFromCreate(&miningv1.CreateMinerRequest{Name: "a", Model: "x", HashrateTh: 95, PowerW: 3250})
	if err != nil || m.Status != StatusActive || m.Efficiency != 34.21 {
		t.Fatalf("%+v, %v", m, err)
	}
}

func TestPageSize(t *testing.T) {
	for in, want := range map[int32]int{0: 100, -5: 100, 1: 1, 999: 999, 1000: 1000, 5000: 1000} {
		if got := pageSize(in); got != want {
			t.Errorf("pageSize(%d) = %d, want %d", in, got, want)
		}
	}
}
