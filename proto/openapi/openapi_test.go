package openapi_test

import (
	"encoding/json"
	"testing"

	"github.com/hashinsight/platform/proto/openapi"
)

func TestSpecs(t *testing.T) {
	specs := openapi.Specs()
	for _, svc := range []string{"auth", "mining", "billing", "sla", "analytics"} {
		t.Run(svc, func(t *testing.T) {
			b, ok := specs[svc]
			if !ok {
				t.Fatalf("no document for %q", svc)
			}
			var doc struct {
				Swagger string         `json:"swagger"`
				Paths   map[string]any `json:"paths"`
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if doc.Swagger != "2.0" || len(doc.Paths) == 0 {
				t.Fatalf("swagger = %q, %d paths; want 2.0 and some paths", doc.Swagger, len(doc.Paths))
			}
		})
	}
	if len(specs) != 5 {
		t.Errorf("got %d documents, want 5", len(specs))
	}
}
