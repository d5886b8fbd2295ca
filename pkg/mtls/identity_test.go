package mtls_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashinsight/platform/pkg/mtls"
)

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		in      string
		want    mtls.Identity
		wantErr bool
	}{
		{in: "svc/mining", want: mtls.Service("mining")},
		{in: "operator/alice", want: mtls.Operator("alice")},
		{in: "svc/a-1", want: mtls.Service("a-1")},
		{in: "spiffe://hashinsight.local/svc/mining", want: mtls.Service("mining")},
		{in: "spiffe://hashinsight.local/operator/bob-2", want: mtls.Operator("bob-2")},
		{in: "", wantErr: true},
		{in: "svc", wantErr: true},
		{in: "svc/", wantErr: true},
		{in: "/mining", wantErr: true},
		{in: "user/mining", wantErr: true},
		{in: "SVC/mining", wantErr: true},
		{in: "svc/Mining", wantErr: true},
		{in: "svc/min_ing", wantErr: true},
		{in: "svc/min.ing", wantErr: true},
		{in: "svc/a/b", wantErr: true},
		{in: "svc/*", wantErr: true},
		{in: "svc/mining ", wantErr: true},
		{in: "svc/" + strings.Repeat("a", 63), want: mtls.Service(strings.Repeat("a", 63))},
		{in: "svc/" + strings.Repeat("a", 64), wantErr: true},
		{in: "spiffe://other.local/svc/mining", wantErr: true},
		{in: "spiffe://HASHINSIGHT.local/svc/mining", wantErr: true},
		{in: "spiffe://hashinsight.local:443/svc/mining", wantErr: true},
		{in: "spiffe://user@hashinsight.local/svc/mining", wantErr: true},
		{in: "spiffe://hashinsight.local/svc/mining?x=1", wantErr: true},
		{in: "spiffe://hashinsight.local/svc/mining#f", wantErr: true},
		{in: "spiffe://hashinsight.local/svc/min%69ng", wantErr: true},
		{in: "spiffe://hashinsight.local/svc/mining/extra", wantErr: true},
		{in: "spiffe://hashinsight.local//svc/mining", wantErr: true},
		{in: "https://hashinsight.local/svc/mining", wantErr: true},
		{in: "spiffe://hashinsight.local", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := mtls.ParseIdentity(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseIdentity(%q) = %v, want error", tt.in, got)
				}
				if !errors.Is(err, mtls.ErrInvalidIdentity) {
					t.Errorf("error %v does not wrap ErrInvalidIdentity", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseIdentity(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseIdentity(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestIdentityForms(t *testing.T) {
	id := mtls.Service("mining")
	if got, want := id.String(), "svc/mining"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := id.URI().String(), "spiffe://hashinsight.local/svc/mining"; got != want {
		t.Errorf("URI() = %q, want %q", got, want)
	}
	if got := (mtls.Identity{}).String(); got != "" {
		t.Errorf("zero String() = %q, want empty", got)
	}
	if err := (mtls.Identity{}).Validate(); err == nil {
		t.Error("zero Identity validates")
	}
}

func TestMatchAny(t *testing.T) {
	gw, alice, mining := mtls.Service("gateway"), mtls.Operator("alice"), mtls.Service("mining")
	tests := []struct {
		name     string
		patterns []string
		id       mtls.Identity
		want     bool
	}{
		{"exact", []string{"svc/gateway"}, gw, true},
		{"exact other name", []string{"svc/gateway"}, mining, false},
		{"exact other kind", []string{"operator/gateway"}, gw, false},
		{"kind wildcard", []string{"operator/*"}, alice, true},
		{"kind wildcard other kind", []string{"operator/*"}, gw, false},
		{"svc wildcard", []string{"svc/*"}, mining, true},
		{"any", []string{"*"}, alice, true},
		{"second pattern", []string{"svc/gateway", "operator/*"}, alice, true},
		{"none match", []string{"svc/gateway", "operator/bob"}, alice, false},
		{"empty list denies", nil, gw, false},
		{"zero identity denies", []string{"*"}, mtls.Identity{}, false},
		{"invalid identity denies", []string{"*"}, mtls.Identity{Kind: "svc", Name: "A"}, false},
		{"malformed pattern", []string{"gateway"}, gw, false},
		{"name wildcard only", []string{"*/gateway"}, gw, false},
		{"prefix glob unsupported", []string{"svc/gate*"}, gw, false},
		{"spiffe form unsupported", []string{"spiffe://hashinsight.local/svc/gateway"}, gw, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mtls.MatchAny(tt.patterns, tt.id); got != tt.want {
				t.Fatalf("MatchAny(%q, %v) = %v, want %v", tt.patterns, tt.id, got, tt.want)
			}
		})
	}
}

func TestValidatePattern(t *testing.T) {
	for _, p := range []string{"*", "svc/*", "operator/*", "svc/gateway", "operator/alice"} {
		if err := mtls.ValidatePattern(p); err != nil {
			t.Errorf("ValidatePattern(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "svc", "*/*", "*/gateway", "user/*", "svc/Gate", "svc/gate*", "svc/"} {
		if err := mtls.ValidatePattern(p); err == nil {
			t.Errorf("ValidatePattern(%q) = nil, want error", p)
		}
	}
}

// selfSigned returns a parsed certificate built from tmpl.
func selfSigned(t *testing.T, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(42)
	tmpl.Subject = pkix.Name{CommonName: "test"}
	tmpl.NotBefore = time.Now().Add(-time.Minute)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestIdentityFromCert(t *testing.T) {
	good := "spiffe://hashinsight.local/svc/x"
	tests := []struct {
		name    string
		tmpl    *x509.Certificate
		want    mtls.Identity
		wantErr bool
	}{
		{name: "one SAN", tmpl: &x509.Certificate{URIs: []*url.URL{mustURL(t, good)}}, want: mtls.Service("x")},
		{name: "no SAN", tmpl: &x509.Certificate{DNSNames: []string{"x"}}, wantErr: true},
		{name: "two SANs", tmpl: &x509.Certificate{URIs: []*url.URL{mustURL(t, good), mustURL(t, "spiffe://hashinsight.local/svc/y")}}, wantErr: true},
		{name: "same SAN twice", tmpl: &x509.Certificate{URIs: []*url.URL{mustURL(t, good), mustURL(t, good)}}, wantErr: true},
		{name: "wrong trust domain", tmpl: &x509.Certificate{URIs: []*url.URL{mustURL(t, "spiffe://evil.local/svc/x")}}, wantErr: true},
		{name: "not spiffe", tmpl: &x509.Certificate{URIs: []*url.URL{mustURL(t, "https://hashinsight.local/svc/x")}}, wantErr: true},
		{name: "bad kind", tmpl: &x509.Certificate{URIs: []*url.URL{mustURL(t, "spiffe://hashinsight.local/user/x")}}, wantErr: true},
		{name: "CA certificate", tmpl: &x509.Certificate{URIs: []*url.URL{mustURL(t, good)}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mtls.IdentityFromCert(selfSigned(t, tt.tmpl))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("IdentityFromCert = %v, want error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("IdentityFromCert = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := mtls.IdentityFromCert(nil); err == nil {
		t.Error("IdentityFromCert(nil) succeeded")
	}
}

func TestPeerIdentityWithoutPeer(t *testing.T) {
	_, err := mtls.PeerIdentity(context.Background())
	if !errors.Is(err, mtls.ErrNoPeerIdentity) {
		t.Fatalf("PeerIdentity(empty ctx) error = %v, want ErrNoPeerIdentity", err)
	}
}

func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{
		"svc/mining", "operator/alice", "spiffe://hashinsight.local/svc/gateway",
		"spiffe://hashinsight.local/operator/a-b", "svc/", "spiffe://x/svc/a", "svc/a/b", "*",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := mtls.ParseIdentity(s)
		if err != nil {
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("ParseIdentity(%q) = %v which does not validate: %v", s, id, err)
		}
		if s != id.String() && s != id.URI().String() {
			t.Fatalf("ParseIdentity(%q) = %v but input is neither %q nor %q", s, id, id.String(), id.URI())
		}
		for _, form := range []string{id.String(), id.URI().String()} {
			back, err := mtls.ParseIdentity(form)
			if err != nil || back != id {
				t.Fatalf("round trip of %q: %v, %v", form, back, err)
			}
		}
		if !mtls.MatchAny([]string{id.String()}, id) || !mtls.MatchAny([]string{id.Kind + "/*"}, id) {
			t.Fatalf("%v does not match its own patterns", id)
		}
	})
}
