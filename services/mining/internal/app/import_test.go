package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/errcode"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

// impViolations returns the field violations of err as "field: description" lines.
func impViolations(t *testing.T, err error) []string {
	t.Helper()
	st, _ := status.FromError(err)
	var out []string
	for _, v := range errcode.FieldViolations(st) {
		out = append(out, v.Field+": "+v.Description)
	}
	return out
}

// impResultDetail returns the ImportResult carried by a refused import's status.
func impResultDetail(t *testing.T, err error) *miningv1.ImportResult {
	t.Helper()
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if r, ok := d.(*miningv1.ImportResult); ok {
			return r
		}
	}
	t.Fatalf("no ImportResult detail in %v", err)
	return nil
}

// impCount counts the miners in the database.
func impCount(t *testing.T, m *mesh) int {
	t.Helper()
	var n int
	if err := m.h.Runtime.DB.QueryRow(t.Context(), `SELECT count(*) FROM miners`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// impFile builds a CSV file of n good rows named prefix-i, with serials, at site.
func impFile(prefix, site string, n int, customer string) string {
	var b strings.Builder
	b.WriteString("name,model,hashrate_th,power_w,efficiency,site,serial,customer_id\n")
	for i := range n {
		fmt.Fprintf(&b, "%s-%d,Antminer S19 Pro,110,3250,,%s,%s-SN-%d,%s\n", prefix, i, site, prefix, i, customer)
	}
	return b.String()
}

// TestImportBadRows is the file: every kind of bad row is listed with its line and
// column, and nothing is written.
func TestImportBadRows(t *testing.T) {
	m := startMining(t, nil)
	var b strings.Builder
	b.WriteString("name,model,hashrate_th,power_w,efficiency,serial\n")       // 1
	b.WriteString("good-1,Antminer S19,95,3250,,SN-1\n")                      // 2
	b.WriteString("missing-column,Antminer S19,95,3250\n")                    // 3
	b.WriteString("text,Antminer S19,fast,3250,,SN-3\n")                      // 4
	b.WriteString("negative,Antminer S19,95,-3250,,SN-4\n")                   // 5
	b.WriteString("unknown,Antminer Z99,95,3250,,SN-5\n")                     // 6
	b.WriteString("dup-serial,antminer s19,95,3250,34.2,SN-1\n")              // 7
	b.WriteString("huge," + strings.Repeat("x", 10<<20) + ",95,3250,,SN-7\n") // 8
	b.WriteString("bad-utf8-\xff\xfe,Antminer S19,95,3250,,SN-8\n")           // 9
	b.WriteString(`=cmd|' /C calc'!A0,Antminer S19,95,3250,,SN-9` + "\n")     // 10
	b.WriteString("bad-eff,Antminer S19,95,3250,20,SN-10\n")                  // 11
	b.WriteString("good-2,ANTMINER S19 PRO,110,3250,29.5,SN-11\n")            // 12

	_, err := m.gw.ImportMinersCsv(m.as(admin()), &miningv1.ImportMinersCsvRequest{Csv: []byte(b.String())})
	wantCode(t, err, codes.InvalidArgument, errcode.Validation)
	want := []string{
		"line 3: has 4 fields, the header has 6",
		`line 4: hashrate_th: must be a number, got "fast"`,
		"line 5: power_w: must be greater than 0",
		`line 6: model: unknown model "Antminer Z99" (not in the catalogue)`,
		"line 7: serial: duplicate serial: line 2 has it too",
		"line 8: line too long (more than 65536 bytes)",
		"line 9: invalid UTF-8",
		`line 10: name: starts with "=", which spreadsheets evaluate as a formula`,
		"line 11: efficiency: 20.00 J/TH disagrees with power_w / hashrate_th = 34.21 J/TH by more than 5%",
	}
	if got := impViolations(t, err); !reflect.DeepEqual(got, want) {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if msg := status.Convert(err).Message(); msg != "import refused: 9 problems on 9 lines; nothing was written" {
		t.Fatalf("message %q", msg)
	}
	res := impResultDetail(t, err)
	if res.GetTotalRows() != 11 || res.GetCommitted() || len(res.GetErrors()) != len(want) {
		t.Fatalf("result %v", res)
	}
	if n := impCount(t, m); n != 0 {
		t.Fatalf("%d miners written, want 0", n)
	}

	// The good rows alone import.
	good := "name,model,hashrate_th,power_w,efficiency,serial\ngood-1,Antminer S19,95,3250,,SN-1\ngood-2,ANTMINER S19 PRO,110,3250,29.5,SN-11\n"
	resp, err := m.gw.ImportMinersCsv(m.as(admin()), &miningv1.ImportMinersCsvRequest{Csv: []byte(good)})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.GetResult(); r.GetCreatedCount() != 2 || !r.GetCommitted() || r.GetTotalRows() != 2 {
		t.Fatalf("result %v", r)
	}
	var eff float64
	if err := m.h.Runtime.DB.QueryRow(t.Context(), `SELECT efficiency_j_per_th FROM miners WHERE serial = 'SN-1'`).Scan(&eff); err != nil || eff != 34.21 {
		t.Fatalf("derived efficiency %v, %v", eff, err)
	}
}

// TestImportFileErrors covers problems of the file as a whole and of the header.
func TestImportFileErrors(t *testing.T) {
	m := startMining(t, map[string]string{"IMPORT_MAX_ROWS": "3"})
	tests := []struct {
		name string
		csv  string
		want []string
	}{
		{name: "unknown and missing columns", csv: "name,model,hashrate,power_w,efficiency\nx,Antminer S19,1,2,\n",
			want: []string{"line 1: hashrate: unknown column; the header is name,model,hashrate_th,power_w,efficiency plus optionally customer_id,site,serial",
				"line 1: hashrate_th: required column missing from the header"}},
		{name: "column twice", csv: "name,model,hashrate_th,power_w,efficiency,NAME\n",
			want: []string{"line 1: name: column given twice"}},
		{name: "no data rows", csv: "\xEF\xBB\xBFName,Model,Hashrate_TH,Power_W,Efficiency\r\n\r\n",
			want: []string{"line 2: the file has no data rows"}},
		{name: "empty", csv: "\n\n", want: []string{"line 1: the file is empty: the header line is missing"}},
		{name: "too many rows", csv: "name,model,hashrate_th,power_w,efficiency\na,Antminer S19,95,3250,\nb,Antminer S19,95,3250,\nc,Antminer S19,95,3250,\nd,Antminer S19,95,3250,\ne,Antminer S19,95,3250,\n",
			want: []string{"line 5: more than 3 data rows (IMPORT_MAX_ROWS); split the file"}},
		{name: "implausible values", csv: "name,model,hashrate_th,power_w,efficiency,site,customer_id\n" +
			"a,Antminer S19,10001,100001,,,not-a-uuid\n" +
			"b,Antminer S19,0.001,100000,,+site,\n" +
			"," + strings.Repeat("m", 129) + ",1e3,NaN,0x10,@s,\n",
			want: []string{
				"line 2: hashrate_th: must be at most 10000 TH/s",
				"line 2: power_w: must be at most 100000 W",
				"line 2: customer_id: must be a UUID",
				`line 3: site: starts with "+", which spreadsheets evaluate as a formula`,
				"line 3: efficiency: power_w / hashrate_th is 100000000.00 J/TH, above 5000",
				"line 4: name: required",
				"line 4: model: longer than 128 characters",
				`line 4: site: starts with "@", which spreadsheets evaluate as a formula`,
				`line 4: power_w: must be a number, got "NaN"`,
				`line 4: efficiency: must be a number, got "0x10"`,
			}},
		{name: "quoting", csv: "name,model,hashrate_th,power_w,efficiency\n\"a,b\",Antminer S19,95,3250,\n\"open,Antminer S19,95,3250,\n",
			want: []string{"line 3: field 1: unterminated quoted field (quoted fields may not span lines)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.gw.ImportMinersCsv(m.as(admin()), &miningv1.ImportMinersCsvRequest{Csv: []byte(tc.csv)})
			wantCode(t, err, codes.InvalidArgument, errcode.Validation)
			if got := impViolations(t, err); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	if n := impCount(t, m); n != 0 {
		t.Fatalf("%d miners written, want 0", n)
	}
}

// TestImportErrorCap lists at most MaxReportedErrors problems plus one that counts the rest.
func TestImportErrorCap(t *testing.T) {
	m := startMining(t, nil)
	var b strings.Builder
	b.WriteString("name,model,hashrate_th,power_w,efficiency\n")
	for i := range 1500 {
		fmt.Fprintf(&b, "m%d,Antminer S19,-1,3250,\n", i)
	}
	_, err := m.gw.ImportMinersCsv(m.as(admin()), &miningv1.ImportMinersCsvRequest{Csv: []byte(b.String())})
	wantCode(t, err, codes.InvalidArgument, errcode.Validation)
	got := impViolations(t, err)
	if len(got) != 1001 || got[1000] != "line 1002: 500 more problems from this line on are not listed" {
		t.Fatalf("%d violations, last %q", len(got), got[len(got)-1])
	}
	if msg := status.Convert(err).Message(); msg != "import refused: 1500 problems on 1500 lines; nothing was written (the first 1000 are listed)" {
		t.Fatalf("message %q", msg)
	}
}

// TestImportValidateOnly checks and counts but writes nothing.
func TestImportValidateOnly(t *testing.T) {
	m := startMining(t, nil)
	resp, err := m.gw.ImportMinersCsv(m.as(admin()), &miningv1.ImportMinersCsvRequest{
		Csv: []byte(impFile("v", "dc1", 50, customerA)), ValidateOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetResult()
	if !r.GetValidateOnly() || r.GetCommitted() || r.GetCreatedCount() != 50 || r.GetTotalRows() != 50 {
		t.Fatalf("result %v", r)
	}
	if n := impCount(t, m); n != 0 {
		t.Fatalf("%d miners written, want 0", n)
	}
	// A validate_only run still reports collisions with existing miners.
	if _, err := m.gw.ImportMinersCsv(m.as(admin()), &miningv1.ImportMinersCsvRequest{Csv: []byte(impFile("v", "dc1", 2, ""))}); err != nil {
		t.Fatal(err)
	}
	_, err = m.gw.ImportMinersCsv(m.as(admin()), &miningv1.ImportMinersCsvRequest{Csv: []byte(impFile("v", "dc1", 3, "")), ValidateOnly: true})
	wantCode(t, err, codes.InvalidArgument, errcode.Validation)
	want := []string{
		"line 2: serial: a miner with this serial already exists (import with upsert to update it)",
		"line 2: name: a miner with this name already exists at site 'dc1' (import with upsert to update it)",
		"line 3: serial: a miner with this serial already exists (import with upsert to update it)",
		"line 3: name: a miner with this name already exists at site 'dc1' (import with upsert to update it)",
	}
	if got := impViolations(t, err); !reflect.DeepEqual(got, want) {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := impCount(t, m); n != 2 {
		t.Fatalf("%d miners, want 2", n)
	}
}

// TestImportUpsert re-imports a file: the second time nothing changes (not even updated_at);
// a changed row updates its miner, matched by serial, else by name and site.
func TestImportUpsert(t *testing.T) {
	m := startMining(t, nil)
	file := impFile("u", "dc1", 20, customerA)
	imp := func(csv string) *miningv1.ImportResult {
		t.Helper()
		resp, err := m.gw.ImportMinersCsv(m.as(admin()), &miningv1.ImportMinersCsvRequest{Csv: []byte(csv), Upsert: true})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetResult()
	}
	stamps := func() map[string]time.Time {
		t.Helper()
		rows, err := m.h.Runtime.DB.Query(t.Context(), `SELECT id::text, updated_at FROM miners`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]time.Time{}
		for rows.Next() {
			var id string
			var at time.Time
			if err := rows.Scan(&id, &at); err != nil {
				t.Fatal(err)
			}
			out[id] = at
		}
		return out
	}
	if r := imp(file); r.GetCreatedCount() != 20 || r.GetUpdatedCount() != 0 || !r.GetCommitted() {
		t.Fatalf("first import %v", r)
	}
	before := stamps()
	if r := imp(file); r.GetCreatedCount() != 0 || r.GetUpdatedCount() != 0 || r.GetUnchangedCount() != 20 || !r.GetCommitted() {
		t.Fatalf("second import %v", r)
	}
	if after := stamps(); !reflect.DeepEqual(before, after) {
		t.Fatal("a repeated import changed updated_at")
	}
	// Row 0 changes its hashrate (matched by serial); a row without serial matches u-1 by name
	// and site and keeps its serial; one new miner.
	changed := "name,model,hashrate_th,power_w,efficiency,site,serial\n" +
		"u-0-renamed,Antminer S19 Pro,111,3250,,dc1,u-SN-0\n" +
		"u-1,Antminer S19,95,3250,,dc1,\n" +
		"u-2,Antminer S19 Pro,110,3250,,dc1,u-SN-2\n" +
		"new,Antminer S19,95,3250,,dc2,\n"
	if r := imp(changed); r.GetCreatedCount() != 1 || r.GetUpdatedCount() != 2 || r.GetUnchangedCount() != 1 {
		t.Fatalf("changed import %v", r)
	}
	var name, serial, customer string
	var hr float64
	if err := m.h.Runtime.DB.QueryRow(t.Context(),
		`SELECT name, hashrate_th, coalesce(customer_id::text, '') FROM miners WHERE serial = 'u-SN-0'`).Scan(&name, &hr, &customer); err != nil {
		t.Fatal(err)
	}
	if name != "u-0-renamed" || hr != 111 || customer != customerA {
		t.Fatalf("u-SN-0: %s %v %s", name, hr, customer)
	}
	if err := m.h.Runtime.DB.QueryRow(t.Context(), `SELECT serial FROM miners WHERE name = 'u-1' AND site = 'dc1'`).Scan(&serial); err != nil || serial != "u-SN-1" {
		t.Fatalf("u-1 serial %q, %v", serial, err)
	}
	if n := impCount(t, m); n != 21 {
		t.Fatalf("%d miners, want 21", n)
	}

	// Two rows for one miner, and a rename onto another miner's name, are refused.
	bad := "name,model,hashrate_th,power_w,efficiency,site,serial\n" +
		"u-3,Antminer S19 Pro,110,3250,,dc1,\n" +
		"other-name,Antminer S19 Pro,110,3250,,dc1,u-SN-3\n" +
		"u-5,Antminer S19 Pro,110,3250,,dc1,u-SN-4\n"
	_, err := m.gw.ImportMinersCsv(m.as(admin()), &miningv1.ImportMinersCsvRequest{Csv: []byte(bad), Upsert: true})
	wantCode(t, err, codes.InvalidArgument, errcode.Validation)
	want := []string{
		"line 3: updates the same existing miner as line 2",
		"line 4: name: another miner already has this name at site 'dc1'",
	}
	if got := impViolations(t, err); !reflect.DeepEqual(got, want) {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// impStream runs ImportMiners with the header and the file split into chunk-byte pieces, and
// returns the progress messages, the results and the final status.
func impStream(t *testing.T, ctx context.Context, c miningv1.MiningServiceClient, hdr *miningv1.ImportMinersRequest_Header, csv string, chunk int) ([]*miningv1.ImportProgress, []*miningv1.ImportResult, error) {
	t.Helper()
	stream, err := c.ImportMiners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sendErr := make(chan error, 1)
	go func() {
		err := stream.Send(&miningv1.ImportMinersRequest{Payload: &miningv1.ImportMinersRequest_Header_{Header: hdr}})
		for i := 0; err == nil && i < len(csv); i += chunk {
			err = stream.Send(&miningv1.ImportMinersRequest{Payload: &miningv1.ImportMinersRequest_Chunk{Chunk: []byte(csv[i:min(i+chunk, len(csv))])}})
		}
		if err == nil {
			err = stream.CloseSend()
		}
		sendErr <- err
	}()
	var (
		progress []*miningv1.ImportProgress
		results  []*miningv1.ImportResult
	)
	for {
		msg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if serr := <-sendErr; serr != nil && !errors.Is(serr, io.EOF) {
				t.Fatalf("send: %v", serr)
			}
			return progress, results, err
		}
		if len(results) > 0 {
			t.Fatal("a message after the result")
		}
		switch ev := msg.GetEvent().(type) {
		case *miningv1.ImportMinersResponse_Progress:
			progress = append(progress, ev.Progress)
		case *miningv1.ImportMinersResponse_Result:
			results = append(results, ev.Result)
		}
	}
}

// TestImportStream streams a file in small chunks (split inside lines): progress in phase
// order, rows parsed growing, exactly one result at the end.
func TestImportStream(t *testing.T) {
	m := startMining(t, nil)
	file := impFile("s", "dc1", 5000, "")
	progress, results, err := impStream(t, m.ctx(), m.op, &miningv1.ImportMinersRequest_Header{FileName: "s.csv"}, file, 4093)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].GetCreatedCount() != 5000 || !results[0].GetCommitted() {
		t.Fatalf("results %v", results)
	}
	var phase miningv1.ImportPhase
	var rows int64
	for _, p := range progress {
		if p.GetPhase() < phase || p.GetRowsParsed() < rows {
			t.Fatalf("progress went backwards: %v", progress)
		}
		phase, rows = p.GetPhase(), p.GetRowsParsed()
	}
	last := progress[len(progress)-1]
	if len(progress) < 4 || last.GetPhase() != miningv1.ImportPhase_IMPORT_PHASE_WRITING || last.GetRowsWritten() != 5000 ||
		last.GetRowsParsed() != 5000 || last.GetBytesReceived() != int64(len(file)) {
		t.Fatalf("progress %v", progress)
	}
	if n := impCount(t, m); n != 5000 {
		t.Fatalf("%d miners, want 5000", n)
	}

	// A bad file: the result lists the rows, then the stream ends InvalidArgument.
	bad := "name,model,hashrate_th,power_w,efficiency\nx,Antminer S19,95,-1,\n"
	_, results, err = impStream(t, m.ctx(), m.op, &miningv1.ImportMinersRequest_Header{Upsert: true}, bad, 3)
	wantCode(t, err, codes.InvalidArgument, errcode.Validation)
	if len(results) != 1 || len(results[0].GetErrors()) != 1 || results[0].GetErrors()[0].GetColumn() != "power_w" || results[0].GetCommitted() {
		t.Fatalf("results %v", results)
	}

	// validate_only over the stream.
	_, results, err = impStream(t, m.ctx(), m.op, &miningv1.ImportMinersRequest_Header{ValidateOnly: true}, impFile("sv", "dc9", 10, ""), 100)
	if err != nil || len(results) != 1 || results[0].GetCreatedCount() != 10 || results[0].GetCommitted() {
		t.Fatalf("validate_only: %v %v", results, err)
	}

	// The stream must start with the header.
	stream, err := m.op.ImportMiners(m.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&miningv1.ImportMinersRequest{Payload: &miningv1.ImportMinersRequest_Chunk{Chunk: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	_, err = stream.Recv()
	wantCode(t, err, codes.InvalidArgument, errcode.Validation)
	if n := impCount(t, m); n != 5000 {
		t.Fatalf("%d miners, want 5000", n)
	}
}

// TestImportTenancy: clients may not import; brokers import only for their customers and may
// not update other tenants' miners.
func TestImportTenancy(t *testing.T) {
	m := startMining(t, nil)
	_, err := m.gw.ImportMinersCsv(m.as(client(customerA)), &miningv1.ImportMinersCsvRequest{Csv: []byte(impFile("c", "dc1", 1, customerA))})
	wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
	_, results, err := impStream(t, m.as(client(customerA)), m.gw, &miningv1.ImportMinersRequest_Header{}, impFile("c", "dc1", 1, customerA), 100)
	wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
	if len(results) != 0 {
		t.Fatalf("results %v", results)
	}

	// Another tenant's miner and an unassigned one.
	if _, err := m.gw.ImportMinersCsv(m.as(admin()), &miningv1.ImportMinersCsvRequest{
		Csv: []byte("name,model,hashrate_th,power_w,efficiency,site,serial,customer_id\n" +
			"b-1,Antminer S19,95,3250,,dc1,B-SN-1," + customerB + "\n" +
			"free-1,Antminer S19,95,3250,,dc1,F-SN-1,\n")}); err != nil {
		t.Fatal(err)
	}
	bad := "name,model,hashrate_th,power_w,efficiency,site,serial,customer_id\n" +
		"a-1,Antminer S19,95,3250,,dc1,A-SN-1," + customerA + "\n" +
		"a-2,Antminer S19,95,3250,,dc1,A-SN-2," + customerB + "\n" +
		"a-3,Antminer S19,95,3250,,dc1,A-SN-3,\n" +
		"takeover,Antminer S19,95,3250,,dc1,B-SN-1," + customerA + "\n" +
		"free-1,Antminer S19,95,3250,,dc1,," + customerA + "\n"
	_, err = m.gw.ImportMinersCsv(m.as(broker(customerA)), &miningv1.ImportMinersCsvRequest{Csv: []byte(bad), Upsert: true})
	wantCode(t, err, codes.InvalidArgument, errcode.Validation)
	want := []string{
		"line 3: customer_id: not one of your customers",
		"line 4: customer_id: required: you may only import miners of your customers",
		"line 5: serial: a miner with this serial already exists",
		"line 6: name: a miner with this name already exists at this site",
	}
	if got := impViolations(t, err); !reflect.DeepEqual(got, want) {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	resp, err := m.gw.ImportMinersCsv(m.as(broker(customerA)), &miningv1.ImportMinersCsvRequest{Csv: []byte(impFile("a", "dc2", 3, customerA))})
	if err != nil || resp.GetResult().GetCreatedCount() != 3 {
		t.Fatalf("broker import: %v %v", resp, err)
	}
	var owners int
	if err := m.h.Runtime.DB.QueryRow(t.Context(), `SELECT count(*) FROM miners WHERE customer_id = $1`, customerA).Scan(&owners); err != nil || owners != 3 {
		t.Fatalf("%d miners of customer A, %v", owners, err)
	}
}

// TestImportConcurrent runs the same new file twice at once: one import writes it, the other
// is refused (the rows exist by then) and nothing is half written.
func TestImportConcurrent(t *testing.T) {
	m := startMining(t, nil)
	file := []byte(impFile("k", "dc1", 2000, ""))
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := m.gw.ImportMinersCsv(m.as(admin()), &miningv1.ImportMinersCsvRequest{Csv: file})
			errs <- err
		}()
	}
	var ok, refused int
	for range 2 {
		err := <-errs
		switch status.Code(err) {
		case codes.OK:
			ok++
		case codes.InvalidArgument, codes.AlreadyExists:
			refused++
		default:
			t.Fatalf("unexpected %v", err)
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("ok %d refused %d", ok, refused)
	}
	if n := impCount(t, m); n != 2000 {
		t.Fatalf("%d miners, want 2000", n)
	}
}
