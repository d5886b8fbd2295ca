// Package openapi merges the per-service Swagger 2.0 documents generated from
// the protos into the single document the gateway serves at /openapi.json.
package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
)

// Title and Version are the info block of the merged document.
const (
	Title   = "HashInsight API"
	Version = "v1"
)

// document is the subset of a Swagger 2.0 document that is merged. Fields
// that are objects keyed by name are kept raw so that unknown extensions
// survive the round trip.
type document struct {
	Swagger             string                                `json:"swagger"`
	Info                map[string]any                        `json:"info"`
	Tags                []map[string]any                      `json:"tags,omitempty"`
	Consumes            []string                              `json:"consumes,omitempty"`
	Produces            []string                              `json:"produces,omitempty"`
	Paths               map[string]map[string]json.RawMessage `json:"paths"`
	Definitions         map[string]json.RawMessage            `json:"definitions,omitempty"`
	SecurityDefinitions map[string]json.RawMessage            `json:"securityDefinitions,omitempty"`
	Security            []map[string][]string                 `json:"security,omitempty"`
}

// Merge combines Swagger 2.0 documents keyed by service name into one
// document: the union of paths (per HTTP method) and definitions, tags,
// consumes, produces and security definitions. The same path+method or the
// same definition name with different content in two documents is an error,
// because silently picking one would publish a wrong contract. Services are
// merged in name order so the output is deterministic.
func Merge(specs map[string][]byte) ([]byte, error) {
	out := document{
		Swagger:             "2.0",
		Info:                map[string]any{"title": Title, "version": Version},
		Paths:               map[string]map[string]json.RawMessage{},
		Definitions:         map[string]json.RawMessage{},
		SecurityDefinitions: map[string]json.RawMessage{},
	}
	seenTags := map[string]bool{}
	pathOwner := map[string]string{}

	for _, svc := range slices.Sorted(maps.Keys(specs)) {
		var doc document
		if err := json.Unmarshal(specs[svc], &doc); err != nil {
			return nil, fmt.Errorf("openapi: parse %s spec: %w", svc, err)
		}
		if doc.Swagger != "" && doc.Swagger != "2.0" {
			return nil, fmt.Errorf("openapi: %s spec is swagger %q, want 2.0", svc, doc.Swagger)
		}
		for path, ops := range doc.Paths {
			dst, ok := out.Paths[path]
			if !ok {
				dst = map[string]json.RawMessage{}
				out.Paths[path] = dst
			}
			for method, op := range ops {
				key := method + " " + path
				if prev, dup := dst[method]; dup && !jsonEqual(prev, op) {
					return nil, fmt.Errorf("openapi: %s is defined by both %s and %s", key, pathOwner[key], svc)
				}
				dst[method] = op
				pathOwner[key] = svc
			}
		}
		if err := mergeRaw(out.Definitions, doc.Definitions, "definition", svc); err != nil {
			return nil, err
		}
		if err := mergeRaw(out.SecurityDefinitions, doc.SecurityDefinitions, "security definition", svc); err != nil {
			return nil, err
		}
		for _, tag := range doc.Tags {
			name, _ := tag["name"].(string)
			if name == "" || seenTags[name] {
				continue
			}
			seenTags[name] = true
			out.Tags = append(out.Tags, tag)
		}
		out.Consumes = union(out.Consumes, doc.Consumes)
		out.Produces = union(out.Produces, doc.Produces)
		if len(out.Security) == 0 {
			out.Security = doc.Security
		}
	}
	if len(out.SecurityDefinitions) == 0 {
		out.SecurityDefinitions = nil
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("openapi: encode merged spec: %w", err)
	}
	return b, nil
}

func mergeRaw(dst, src map[string]json.RawMessage, what, svc string) error {
	for name, v := range src {
		if prev, dup := dst[name]; dup && !jsonEqual(prev, v) {
			return fmt.Errorf("openapi: %s %q of %s conflicts with an earlier service's", what, name, svc)
		}
		dst[name] = v
	}
	return nil
}

func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

// jsonEqual compares two JSON values semantically (key order and whitespace
// do not matter).
func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	ca, _ := json.Marshal(va)
	cb, _ := json.Marshal(vb)
	return bytes.Equal(ca, cb)
}

// Handler serves a precomputed document as application/json.
func Handler(doc []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(doc)
	})
}
