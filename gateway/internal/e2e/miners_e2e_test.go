package e2e_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hashinsight/platform/gateway/internal/e2e"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// TestMinersREST: the inventory over REST through the real gateway: JSON field presence reaches
// UpdateMiner (PATCH changes only what the body names; an empty serial clears it), errors map to
// 400/403/404/409 with the HashInsight codes, and tenancy holds for a client's token.
func TestMinersREST(t *testing.T) {
	m := startMesh(t, e2e.Options{})
	customer := e2e.RandomUUID()
	owner := e2e.Bearer(newUser(t, m, authv1.Role_ROLE_OWNER, "").token)
	own := e2e.Bearer(newUser(t, m, authv1.Role_ROLE_CLIENT, customer).token)
	other := e2e.Bearer(newUser(t, m, authv1.Role_ROLE_CLIENT, e2e.RandomUUID()).token)

	resp := m.Do(t, nil, http.MethodPost, "/api/v1/miners", map[string]any{
		"name": "rest-1", "model": "antminer s21", "serial": "REST-SN-1", "site": "rest", "customer_id": customer,
		"hashrate_th": 200, "power_w": 3500,
	}, owner)
	if resp.Status != http.StatusOK {
		t.Fatalf("create: %d %s", resp.Status, resp.Body)
	}
	id := decodeField(t, resp.Body, "miner.id")
	if got := decodeField(t, resp.Body, "miner.model"); got != "Antminer S21" {
		t.Fatalf("model %q", got)
	}
	path := "/api/v1/miners/" + id

	miner := func(h map[string]string) map[string]any {
		t.Helper()
		resp := m.Do(t, nil, http.MethodGet, path, nil, h)
		if resp.Status != http.StatusOK {
			t.Fatalf("get: %d %s", resp.Status, resp.Body)
		}
		var body struct {
			Miner map[string]any `json:"miner"`
		}
		if err := json.Unmarshal(resp.Body, &body); err != nil {
			t.Fatal(err)
		}
		return body.Miner
	}
	if got := miner(own); got["serial"] != "REST-SN-1" || got["efficiency_j_per_th"] != 17.5 {
		t.Fatalf("client reads %v", got)
	}

	// PATCH changes only the fields in the body.
	if resp := m.Do(t, nil, http.MethodPatch, path, map[string]any{"notes": "rack 4"}, owner); resp.Status != http.StatusOK {
		t.Fatalf("patch notes: %d %s", resp.Status, resp.Body)
	}
	if got := miner(owner); got["notes"] != "rack 4" || got["serial"] != "REST-SN-1" || got["name"] != "rest-1" {
		t.Fatalf("after patch: %v", got)
	}
	if resp := m.Do(t, nil, http.MethodPatch, path, map[string]any{"serial": ""}, owner); resp.Status != http.StatusOK {
		t.Fatalf("patch serial: %d %s", resp.Status, resp.Body)
	}
	if got := miner(owner); got["serial"] != nil { // proto names, unpopulated fields omitted
		t.Fatalf("serial not cleared: %v", got)
	}

	for _, tc := range []struct {
		name, method, path string
		body               any
		header             map[string]string
		status             int
		code               string
	}{
		{"unknown model", http.MethodPost, "/api/v1/miners", map[string]any{"name": "x", "model": "nope", "hashrate_th": 1, "power_w": 30}, owner, http.StatusBadRequest, "VALIDATION_001"},
		{"duplicate name at the site", http.MethodPost, "/api/v1/miners", map[string]any{"name": "rest-1", "site": "rest", "model": "Antminer S21", "hashrate_th": 200, "power_w": 3500}, owner, http.StatusConflict, "CONFLICT_001"},
		{"efficiency disagrees", http.MethodPatch, path, map[string]any{"efficiency_j_per_th": 30}, owner, http.StatusBadRequest, "VALIDATION_001"},
		{"another tenant's miner", http.MethodGet, path, nil, other, http.StatusNotFound, "NOT_FOUND_001"},
		{"client may not write", http.MethodPatch, path, map[string]any{"notes": "x"}, own, http.StatusForbidden, "AUTH_002"},
		{"client may not create models", http.MethodPost, "/api/v1/miner-models", map[string]any{"vendor": "x", "name": "y", "hashrate_th": 1, "power_w": 30}, own, http.StatusForbidden, "AUTH_002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := m.Do(t, nil, tc.method, tc.path, tc.body, tc.header)
			if resp.Status != tc.status || resp.Error().Code != tc.code {
				t.Fatalf("%d %s, want %d %s", resp.Status, resp.Body, tc.status, tc.code)
			}
		})
	}

	// Filters as query parameters; another tenant's list is empty.
	resp = m.Do(t, nil, http.MethodGet, "/api/v1/miners?site=rest&status=MINER_STATUS_ACTIVE&model=Antminer%20S21", nil, own)
	if resp.Status != http.StatusOK || !strings.Contains(string(resp.Body), id) {
		t.Fatalf("filtered list: %d %s", resp.Status, resp.Body)
	}
	resp = m.Do(t, nil, http.MethodGet, "/api/v1/miners", nil, other)
	if resp.Status != http.StatusOK || strings.Contains(string(resp.Body), id) {
		t.Fatalf("other tenant's list: %d %s", resp.Status, resp.Body)
	}
	resp = m.Do(t, nil, http.MethodGet, "/api/v1/miner-models?vendor=canaan", nil, own)
	if resp.Status != http.StatusOK || strings.Count(string(resp.Body), `"vendor":"Canaan"`) != 3 {
		t.Fatalf("models of Canaan: %d %s", resp.Status, resp.Body)
	}

	if resp := m.Do(t, nil, http.MethodDelete, path, nil, owner); resp.Status != http.StatusOK {
		t.Fatalf("delete: %d %s", resp.Status, resp.Body)
	}
	if resp := m.Do(t, nil, http.MethodGet, path, nil, owner); resp.Status != http.StatusNotFound {
		t.Fatalf("get after delete: %d %s", resp.Status, resp.Body)
	}
}
