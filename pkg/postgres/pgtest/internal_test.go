package pgtest

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		schema  string
		wantErr bool
	}{
		{"mining", false},
		{"", true},
		{"Mining", true},
		{"public", true},
		{strings.Repeat("a", maxSchemaLen), false},
		{strings.Repeat("a", maxSchemaLen+1), true},
	}
	for _, tt := range tests {
		if err := (Options{Schema: tt.schema}).validate(); (err != nil) != tt.wantErr {
			t.Errorf("validate(%q) = %v, want error %v", tt.schema, err, tt.wantErr)
		}
	}
}

func TestHashFS(t *testing.T) {
	a := fstest.MapFS{"00001_a.sql": {Data: []byte("CREATE TABLE a (id int);")}}
	b := fstest.MapFS{"00001_a.sql": {Data: []byte("CREATE TABLE a (id bigint);")}}
	c := fstest.MapFS{"00002_a.sql": {Data: []byte("CREATE TABLE a (id int);")}}
	seen := map[string]string{}
	for name, fsys := range map[string]fstest.MapFS{"a": a, "b": b, "c": c, "nil": nil} {
		h, err := hashFS(fsys)
		if err != nil || len(h) != 8 {
			t.Fatalf("hashFS(%s) = %q, %v", name, h, err)
		}
		if other, dup := seen[h]; dup {
			t.Errorf("%s and %s hash alike", name, other)
		}
		seen[h] = name
	}
	if h1, _ := hashFS(a); h1 != func() string { h, _ := hashFS(a); return h }() {
		t.Error("hashFS is not deterministic")
	}
}

func TestQuoteArgs(t *testing.T) {
	if got := quoteArgs([]string{"/usr/bin/pg_ctl", "-o", "-p 5432", "it's"}); got != `'/usr/bin/pg_ctl' '-o' '-p 5432' 'it'\''s'` {
		t.Errorf("quoteArgs = %s", got)
	}
}
