package openapi

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMerge(t *testing.T) {
	auth := `{"swagger":"2.0","info":{"title":"auth","version":"x"},"tags":[{"name":"AuthService"}],
	  "consumes":["application/json"],"produces":["application/json"],
	  "paths":{"/api/v1/auth/login":{"post":{"operationId":"AuthService_Login"}},
	           "/api/v1/users/{id}":{"get":{"operationId":"AuthService_GetUser"}}},
	  "definitions":{"rpcStatus":{"type":"object"},"v1LoginRequest":{"type":"object"}}}`
	mining := `{"swagger":"2.0","info":{"title":"mining","version":"x"},"tags":[{"name":"MiningService"}],
	  "consumes":["application/json"],"produces":["application/json"],
	  "paths":{"/api/v1/miners":{"get":{"operationId":"MiningService_ListMiners"}},
	           "/api/v1/users/{id}":{"delete":{"operationId":"Other_Delete"}}},
	  "definitions":{"rpcStatus":{ "type" : "object" },"v1Miner":{"type":"object"}}}`

	tests := []struct {
		name    string
		specs   map[string][]byte
		wantErr string
		check   func(t *testing.T, doc map[string]any)
	}{
		{
			name:  "union",
			specs: map[string][]byte{"auth": []byte(auth), "mining": []byte(mining)},
			check: func(t *testing.T, doc map[string]any) {
				info := doc["info"].(map[string]any)
				if info["title"] != Title || info["version"] != Version {
					t.Errorf("info = %v", info)
				}
				paths := doc["paths"].(map[string]any)
				for _, p := range []string{"/api/v1/auth/login", "/api/v1/users/{id}", "/api/v1/miners"} {
					if _, ok := paths[p]; !ok {
						t.Errorf("path %s missing", p)
					}
				}
				if ops := paths["/api/v1/users/{id}"].(map[string]any); len(ops) != 2 {
					t.Errorf("users/{id} ops = %v, want get and delete", ops)
				}
				defs := doc["definitions"].(map[string]any)
				if len(defs) != 3 {
					t.Errorf("definitions = %v, want 3", defs)
				}
				if tags := doc["tags"].([]any); len(tags) != 2 {
					t.Errorf("tags = %v", tags)
				}
			},
		},
		{
			name: "conflicting definition",
			specs: map[string][]byte{
				"a": []byte(`{"swagger":"2.0","paths":{},"definitions":{"x":{"type":"object"}}}`),
				"b": []byte(`{"swagger":"2.0","paths":{},"definitions":{"x":{"type":"string"}}}`),
			},
			wantErr: `definition "x"`,
		},
		{
			name: "conflicting operation",
			specs: map[string][]byte{
				"a": []byte(`{"swagger":"2.0","paths":{"/p":{"get":{"operationId":"A"}}}}`),
				"b": []byte(`{"swagger":"2.0","paths":{"/p":{"get":{"operationId":"B"}}}}`),
			},
			wantErr: "get /p is defined by both a and b",
		},
		{
			name:    "not json",
			specs:   map[string][]byte{"a": []byte(`{`)},
			wantErr: "parse a spec",
		},
		{
			name:    "openapi 3",
			specs:   map[string][]byte{"a": []byte(`{"swagger":"3.0","paths":{}}`)},
			wantErr: "want 2.0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Merge(tt.specs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(out, &doc); err != nil {
				t.Fatal(err)
			}
			if doc["swagger"] != "2.0" {
				t.Errorf("swagger = %v", doc["swagger"])
			}
			tt.check(t, doc)
		})
	}
}

func TestMergeDeterministic(t *testing.T) {
	specs := map[string][]byte{
		"a": []byte(`{"swagger":"2.0","paths":{"/a":{"get":{}}},"definitions":{"A":{}}}`),
		"b": []byte(`{"swagger":"2.0","paths":{"/b":{"get":{}}},"definitions":{"B":{}}}`),
		"c": []byte(`{"swagger":"2.0","paths":{"/c":{"get":{}}},"definitions":{"C":{}}}`),
	}
	first, err := Merge(specs)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		again, err := Merge(specs)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(first) {
			t.Fatal("Merge output is not deterministic")
		}
	}
}

func TestMergeBearerSecurity(t *testing.T) {
	specs := map[string][]byte{
		"auth": []byte(`{"swagger":"2.0","paths":{
		  "/api/v1/auth/login":{"post":{"operationId":"AuthService_Login"}},
		  "/api/v1/auth/me":{"get":{"operationId":"AuthService_GetMe"}}}}`),
		"mining": []byte(`{"swagger":"2.0","paths":{"/api/v1/miners":{"get":{"operationId":"MiningService_ListMiners"}}}}`),
	}
	out, err := Merge(specs, WithPublicOperations("AuthService_Login"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SecurityDefinitions map[string]map[string]string         `json:"securityDefinitions"`
		Security            []map[string][]string                `json:"security"`
		Paths               map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	b := doc.SecurityDefinitions[SecurityScheme]
	if b["type"] != "apiKey" || b["in"] != "header" || b["name"] != "Authorization" {
		t.Errorf("securityDefinitions.bearer = %v", b)
	}
	if len(doc.Security) != 1 || doc.Security[0][SecurityScheme] == nil {
		t.Errorf("security = %v, want [{bearer: []}]", doc.Security)
	}
	login := doc.Paths["/api/v1/auth/login"]["post"]
	if sec, ok := login["security"].([]any); !ok || len(sec) != 0 {
		t.Errorf("login security = %v, want [] (public)", login["security"])
	}
	for _, p := range []string{"/api/v1/auth/me", "/api/v1/miners"} {
		for _, op := range doc.Paths[p] {
			if _, ok := op["security"]; ok {
				t.Errorf("%s overrides the document's security: %v", p, op)
			}
		}
	}

	// A service defining "bearer" differently is a conflict, not silently replaced.
	specs["x"] = []byte(`{"swagger":"2.0","paths":{},"securityDefinitions":{"bearer":{"type":"basic"}}}`)
	if _, err := Merge(specs); err == nil || !strings.Contains(err.Error(), `"bearer"`) {
		t.Errorf("conflicting bearer definition: err = %v", err)
	}
}
