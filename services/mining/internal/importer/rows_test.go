package importer

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hashinsight/platform/services/mining/internal/platform"
)

const (
	modelID   = "11111111-1111-4111-8111-111111111111"
	customerA = "aaaaaaaa-0000-4000-8000-00000000000a"
)

func TestCheckRow(t *testing.T) {
	h, errs := parseHeader(1, strings.Split(" Serial ,CUSTOMER_ID,efficiency,power_w,hashrate_th,model,name,site", ","))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	broker := &rowChecker{h: h, models: map[string]string{"antminer s19": modelID},
		scope: platform.Scope{CustomerIDs: []string{customerA}}}
	admin := &rowChecker{h: h, models: broker.models, scope: platform.Scope{All: true}}
	tests := []struct {
		name    string
		c       *rowChecker
		fields  string
		want    row
		wantErr []string
	}{
		{name: "any column order, upper-case uuid, spaces trimmed", c: broker,
			fields: "SN-1," + strings.ToUpper(customerA) + ", ,3250 ,95,ANTMINER S19, m1 ,dc1",
			want: row{line: 2, name: "m1", modelID: modelID, hashrateTH: 95, powerW: 3250, efficiency: 34.21,
				customerID: customerA, site: "dc1", serial: "SN-1"}},
		{name: "admin may leave the customer empty", c: admin, fields: ",,34.2,3250,95,Antminer S19,m1,",
			want: row{line: 2, name: "m1", modelID: modelID, hashrateTH: 95, powerW: 3250, efficiency: 34.2}},
		{name: "broker must name a customer of theirs", c: broker, fields: ",,,3250,95,Antminer S19,m1,",
			wantErr: []string{"customer_id: required: you may only import miners of your customers"}},
		{name: "every problem of a row", c: admin, fields: "-SN,bbbbbbbb-0000-4000-8000-00000000000b,abc,1e6,0,S9,\tm,",
			wantErr: []string{
				`name: starts with "\t", which spreadsheets evaluate as a formula`,
				`model: unknown model "S9" (not in the catalogue)`,
				`serial: starts with "-", which spreadsheets evaluate as a formula`,
				"hashrate_th: must be greater than 0",
				"power_w: must be at most 100000 W",
				`efficiency: must be a number, got "abc"`,
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := tc.c.check(2, strings.Split(tc.fields, ","))
			var reasons []string
			for _, e := range errs {
				if e.line != 2 {
					t.Errorf("line %d", e.line)
				}
				reasons = append(reasons, e.column+": "+e.reason)
			}
			if !reflect.DeepEqual(reasons, tc.wantErr) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(reasons, "\n"), strings.Join(tc.wantErr, "\n"))
			}
			if tc.wantErr == nil && got != tc.want {
				t.Fatalf("row %+v, want %+v", got, tc.want)
			}
		})
	}
}
