package mtls_test

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"

	"github.com/hashinsight/platform/pkg/mtls"
)

func TestParseDNPatternsErrors(t *testing.T) {
	for _, in := range [][]string{
		{"CN"},                 // no '='
		{"XX=foo"},             // unknown attribute
		{"CN=a;;O=b"},          // empty alternative
		{"CN=a\\"},             // lone backslash
		{"EMAILADDRESS=a@b.c"}, // unsupported attribute
	} {
		if f, err := mtls.ParseDNPatterns(in); err == nil {
			t.Errorf("ParseDNPatterns(%q) = %v, want error", in, f)
		}
	}
	for _, in := range [][]string{nil, {}, {""}, {" ", ","}} {
		f, err := mtls.ParseDNPatterns(in)
		if err != nil || f != nil {
			t.Errorf("ParseDNPatterns(%q) = %v, %v; want nil filter", in, f, err)
		}
	}
}

func TestDNFilterMatch(t *testing.T) {
	dev := pkix.Name{CommonName: "x.svc.hashinsight.local", Organization: []string{"HashInsight"}, Country: []string{"US"}}
	prod := pkix.Name{CommonName: "mining.hashinsight.net", Organization: []string{"HashInsight"}, Country: []string{"US"}, OrganizationalUnit: []string{"platform", "ops"}}
	odd := pkix.Name{CommonName: "a*b,c", Organization: []string{"Acme; Inc"}}
	tests := []struct {
		name     string
		patterns []string
		subject  pkix.Name
		want     bool
	}{
		{"manual example", []string{"CN=*.hashinsight.net,O=HashInsight,C=US"}, prod, true},
		{"manual example pre-split", []string{"CN=*.hashinsight.net", "O=HashInsight", "C=US"}, prod, true},
		{"manual example, dev cert", []string{"CN=*.hashinsight.net,O=HashInsight,C=US"}, dev, false},
		{"all terms must match", []string{"CN=*.hashinsight.net,O=Other"}, prod, false},
		{"alternatives", []string{"CN=*.hashinsight.net;CN=*.svc.hashinsight.local"}, dev, true},
		{"alternatives pre-split", []string{"O=Other", "C=US;O=HashInsight", "C=US"}, dev, true},
		{"alternatives none", []string{"O=Other;C=DE"}, dev, false},
		{"case-insensitive attr and value", []string{"cn=X.SVC.*, o = hashinsight"}, dev, true},
		{"star matches dots", []string{"CN=*"}, dev, true},
		{"star in middle", []string{"CN=x.*.hashinsight.local"}, dev, true},
		{"whole value", []string{"CN=x.svc"}, dev, false},
		{"missing attribute fails", []string{"OU=*"}, dev, false},
		{"any of multi-valued", []string{"OU=ops"}, prod, true},
		{"repeated attr needs both", []string{"OU=ops,OU=platform"}, prod, true},
		{"repeated attr missing one", []string{"OU=ops,OU=finance"}, prod, false},
		{"escaped star is literal", []string{`CN=a\*b\,c`}, odd, true},
		{"escaped star not a glob", []string{`CN=a\*`}, pkix.Name{CommonName: "abc"}, false},
		{"escaped semicolon", []string{`O=Acme\; Inc`}, odd, true},
		{"backtracking", []string{"CN=*a*b*c"}, pkix.Name{CommonName: "xaxbxbxc"}, true},
		{"backtracking no match", []string{"CN=*a*b*c"}, pkix.Name{CommonName: "xaxbxbx"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := mtls.ParseDNPatterns(tt.patterns)
			if err != nil {
				t.Fatalf("ParseDNPatterns(%q): %v", tt.patterns, err)
			}
			if got := f.Match(tt.subject); got != tt.want {
				t.Fatalf("filter %q Match(%v) = %v, want %v", f, tt.subject, got, tt.want)
			}
		})
	}
}

func TestDNFilterUsesAllParsedNames(t *testing.T) {
	// A parsed certificate may carry two CNs; the convenience field keeps one.
	cn := asn1.ObjectIdentifier{2, 5, 4, 3}
	subject := pkix.Name{
		CommonName: "second",
		Names:      []pkix.AttributeTypeAndValue{{Type: cn, Value: "first"}, {Type: cn, Value: "second"}},
	}
	f, err := mtls.ParseDNPatterns([]string{"CN=first"})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Match(subject) {
		t.Fatal("first CN not considered")
	}
	var nilFilter *mtls.DNFilter
	if !nilFilter.Match(subject) {
		t.Fatal("nil filter must allow everything")
	}
}

func FuzzParseDNPatterns(f *testing.F) {
	for _, s := range []string{"CN=*.hashinsight.net,O=HashInsight,C=US", `O=a\;b;OU=*x*`, "cn = x", `CN=\`, ";", "CN=*a*b*c"} {
		f.Add(s, "x.svc.hashinsight.local")
	}
	f.Fuzz(func(t *testing.T, patterns, cn string) {
		flt, err := mtls.ParseDNPatterns([]string{patterns})
		if err != nil {
			return
		}
		subject := pkix.Name{CommonName: cn, Organization: []string{cn}}
		got := flt.Match(subject)
		// Splitting the input on commas, as an environment parser does, must
		// not change the meaning.
		split, err := mtls.ParseDNPatterns(strings.Split(patterns, ","))
		if err != nil {
			t.Fatalf("split form of %q does not parse: %v", patterns, err)
		}
		if split.Match(subject) != got {
			t.Fatalf("split form of %q matches differently", patterns)
		}
	})
}
