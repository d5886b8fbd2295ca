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

// SecurityScheme is the name of the bearer security definition: the
// Authorization header carrying "Bearer <access token or API key>".
const SecurityScheme = "bearer"

// bearerDefinition is the Swagger 2.0 security definition of SecurityScheme.
// Swagger 2.0 has no bearer type; an apiKey in the Authorization header is
// the standard rendering.
var bearerDefinition = json.RawMessage(`{"type":"apiKey","name":"Authorization","in":"header",` +
	`"description":"\"Bearer <access token>\" (from POST /api/v1/auth/login) or \"Bearer <API key>\" (hsi_<env>_key_…)."}`)

// Option configures Merge.
type Option func(*options)

type options struct {
	public map[string]bool
}

// WithPublicOperations names the operations (operationId, e.g.
// "AuthService_Login") that need no credential: they get an empty security
// requirement, overriding the document-wide bearer requirement.
func WithPublicOperations(ids ...string) Option {
	return func(o *options) {
		for _, id := range ids {
			o.public[id] = true
		}
	}
}

// Merge combines Swagger 2.0 documents keyed by service name into one
// document: the union of paths (per HTTP method) and definitions, tags,
// consumes, produces and security definitions. The same path+method or the
// same definition name with different content in two documents is an error,
// because silently picking one would publish a wrong contract. Services are
// merged in name order so the output is deterministic.
//
// The merged document always declares the bearer security definition
// (SecurityScheme) and requires it everywhere except on the operations named
// by WithPublicOperations.
func Merge(specs map[string][]byte, opts ...Option) ([]byte, error) {
	o := options{public: map[string]bool{}}
	for _, opt := range opts {
		opt(&o)
	}
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
				op, err := markPublic(op, o.public)
				if err != nil {
					return nil, fmt.Errorf("openapi: %s of %s: %w", key, svc, err)
				}
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
	if prev, ok := out.SecurityDefinitions[SecurityScheme]; ok && !jsonEqual(prev, bearerDefinition) {
		return nil, fmt.Errorf("openapi: a service defines security definition %q differently", SecurityScheme)
	}
	out.SecurityDefinitions[SecurityScheme] = bearerDefinition
	if !slices.ContainsFunc(out.Security, func(req map[string][]string) bool { _, ok := req[SecurityScheme]; return ok }) {
		out.Security = append(out.Security, map[string][]string{SecurityScheme: {}})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("openapi: encode merged spec: %w", err)
	}
	return b, nil
}

// markPublic gives a public operation an empty security requirement.
func markPublic(op json.RawMessage, public map[string]bool) (json.RawMessage, error) {
	if len(public) == 0 {
		return op, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(op, &m); err != nil {
		return nil, fmt.Errorf("parse operation: %w", err)
	}
	var id string
	if raw, ok := m["operationId"]; ok {
		_ = json.Unmarshal(raw, &id)
	}
	if !public[id] {
		return op, nil
	}
	m["security"] = json.RawMessage(`[]`)
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode operation: %w", err)
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
