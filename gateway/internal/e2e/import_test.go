package e2e_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/hashinsight/platform/gateway/internal/e2e"
	"github.com/hashinsight/platform/pkg/authn"
)

// importFile is a CSV file of n good rows named prefix-i with serials at site.
func importFile(prefix, site string, n int) []byte {
	var b bytes.Buffer
	b.WriteString("name,model,hashrate_th,power_w,efficiency,site,serial\n")
	for i := range n {
		fmt.Fprintf(&b, "%s-%d,Antminer S19 Pro,110,3250,,%s,%s-SN-%d\n", prefix, i, site, prefix, i)
	}
	return b.Bytes()
}

// importAdmin mints an admin's access token (every customer).
func importAdmin(t testing.TB, m *e2e.Mesh) map[string]string {
	t.Helper()
	return e2e.Bearer(m.Token(t, e2e.TokenOptions{Role: authn.RoleAdmin,
		Permissions: authn.PermissionsForRole(authn.RoleAdmin), AllCustomers: true}))
}

// importResult is the JSON answer of the import route.
type importResult struct {
	Result struct {
		TotalRows      string `json:"total_rows"`
		CreatedCount   string `json:"created_count"`
		UpdatedCount   string `json:"updated_count"`
		UnchangedCount string `json:"unchanged_count"`
		ValidateOnly   bool   `json:"validate_only"`
		Committed      bool   `json:"committed"`
	} `json:"result"`
}

func decodeImport(t testing.TB, r e2e.Response) importResult {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	var out importResult
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	return out
}

// multipartBody puts file in a part named "file".
func multipartBody(t testing.TB, file []byte) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if err := w.WriteField("note", "ignored"); err != nil {
		t.Fatal(err)
	}
	fw, err := w.CreateFormFile("file", "miners.csv")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(file)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), w.FormDataContentType()
}

// TestImportREST: POST /api/v1/miners:import with a text/csv body, a multipart upload and the
// JSON body; a bad file answers 400 listing every bad row; a file over MAX_BODY_BYTES but
// within the route's own limit reaches mining.
func TestImportREST(t *testing.T) {
	m := startMesh(t, e2e.Options{GatewayEnv: map[string]string{"RATE_LIMIT_REQUESTS_PER_MINUTE": "100000"}})
	auth := importAdmin(t, m)
	with := func(h map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for hk, hv := range h {
			out[hk] = hv
		}
		return out
	}
	csvHeader := with(auth, "Content-Type", "text/csv; charset=utf-8")

	// text/csv, then the same file again with upsert: nothing changes.
	file := importFile("rest", "dc1", 100)
	r := decodeImport(t, m.Do(t, nil, http.MethodPost, "/api/v1/miners:import", file, csvHeader))
	if r.Result.CreatedCount != "100" || !r.Result.Committed {
		t.Fatalf("text/csv: %+v", r)
	}
	r = decodeImport(t, m.Do(t, nil, http.MethodPost, "/api/v1/miners:import?upsert=true", file, csvHeader))
	if r.Result.UnchangedCount != "100" || r.Result.CreatedCount != "" || !r.Result.Committed {
		t.Fatalf("upsert re-import: %+v", r)
	}

	// multipart, validate_only as a query parameter: counted, not written.
	body, ct := multipartBody(t, importFile("multi", "dc2", 10))
	r = decodeImport(t, m.Do(t, nil, http.MethodPost, "/api/v1/miners:import?validate_only=true", body, with(auth, "Content-Type", ct)))
	if r.Result.CreatedCount != "10" || r.Result.Committed || !r.Result.ValidateOnly {
		t.Fatalf("multipart validate_only: %+v", r)
	}
	r = decodeImport(t, m.Do(t, nil, http.MethodPost, "/api/v1/miners:import", body, with(auth, "Content-Type", ct)))
	if r.Result.CreatedCount != "10" || !r.Result.Committed {
		t.Fatalf("multipart: %+v", r)
	}

	// The generated JSON body still works.
	r = decodeImport(t, m.Do(t, nil, http.MethodPost, "/api/v1/miners:import", map[string]any{
		"csv": base64.StdEncoding.EncodeToString(importFile("json", "dc3", 5)), "upsert": true}, auth))
	if r.Result.CreatedCount != "5" {
		t.Fatalf("json: %+v", r)
	}

	// A bad file, 12 MB with its 10 MB line (over MAX_BODY_BYTES' 10 MiB): 400 with every row.
	var bad bytes.Buffer
	bad.WriteString("name,model,hashrate_th,power_w,efficiency,serial\n")
	bad.WriteString("ok,Antminer S19,95,3250,,NEW-1\n")
	bad.WriteString("missing,Antminer S19,95,3250\n")
	bad.WriteString("text,Antminer S19,fast,3250,,NEW-3\n")
	bad.WriteString("negative,Antminer S19,95,-3250,,NEW-4\n")
	bad.WriteString("unknown,Antminer Z99,95,3250,,NEW-5\n")
	bad.WriteString("dup,Antminer S19,95,3250,,NEW-1\n")
	bad.WriteString("huge," + strings.Repeat("x", 10<<20) + ",95,3250,,NEW-7\n")
	bad.WriteString("utf8-\xff,Antminer S19,95,3250,,NEW-8\n")
	bad.WriteString(`=cmd|' /C calc'!A0,Antminer S19,95,3250,,NEW-9` + "\n")
	bad.WriteString("existing,Antminer S19,95,3250,,rest-SN-0\n")
	bad.WriteString("filler,Antminer S19,95,3250,,\n")
	resp := m.Do(t, nil, http.MethodPost, "/api/v1/miners:import", bad.Bytes(), csvHeader)
	var e struct {
		Code   string `json:"code"`
		Fields []struct {
			Field       string `json:"field"`
			Description string `json:"description"`
		} `json:"fields"`
	}
	_ = json.Unmarshal(resp.Body, &e)
	if resp.Status != http.StatusBadRequest || e.Code != "VALIDATION_001" {
		t.Fatalf("bad file: %d %.500s", resp.Status, resp.Body)
	}
	var got []string
	for _, f := range e.Fields {
		got = append(got, f.Field)
	}
	want := []string{"line 3", "line 4: hashrate_th", "line 5: power_w", "line 6: model", "line 7: serial",
		"line 8", "line 9", "line 10: name", "line 11: serial"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fields %v, want %v (%s)", got, want, resp.Body)
	}

	// Nothing of the bad file was written: its good rows import now.
	r = decodeImport(t, m.Do(t, nil, http.MethodPost, "/api/v1/miners:import", []byte(
		"name,model,hashrate_th,power_w,efficiency,serial\nok,Antminer S19,95,3250,,NEW-1\nfiller,Antminer S19,95,3250,,\n"), csvHeader))
	if r.Result.CreatedCount != "2" {
		t.Fatalf("good rows: %+v", r)
	}

	// Other body kinds and options are refused with 400.
	for name, h := range map[string]map[string]string{
		"xml":                with(auth, "Content-Type", "application/xml"),
		"bad option":         csvHeader,
		"multipart w/o file": with(auth, "Content-Type", "multipart/form-data; boundary=x"),
	} {
		path := "/api/v1/miners:import"
		payload := []byte("name\n")
		if name == "bad option" {
			path += "?upsert=maybe"
		}
		if strings.HasPrefix(name, "multipart") {
			payload = []byte("--x--\r\n")
		}
		if resp := m.Do(t, nil, http.MethodPost, path, payload, h); resp.Status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, resp.Status, resp.Body)
		}
	}

	// Clients may not import.
	client := e2e.Bearer(m.Token(t, e2e.TokenOptions{Role: authn.RoleClient,
		Permissions: authn.PermissionsForRole(authn.RoleClient), CustomerIDs: []string{e2e.RandomUUID()}}))
	if resp := m.Do(t, nil, http.MethodPost, "/api/v1/miners:import", file, with(client, "Content-Type", "text/csv")); resp.Status != http.StatusForbidden {
		t.Fatalf("client: %d %s", resp.Status, resp.Body)
	}
}
