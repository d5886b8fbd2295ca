package mtls

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// TrustDomain is the SPIFFE trust domain of every HashInsight identity.
const TrustDomain = "hashinsight.local"

// Identity kinds.
const (
	// KindService is the kind of a service identity (svc/mining).
	KindService = "svc"
	// KindOperator is the kind of a person or tool (operator/alice).
	KindOperator = "operator"
)

// maxNameLen keeps a name usable as a DNS label, which is what devca puts in
// the certificate's DNS SAN and subject.
const maxNameLen = 63

const spiffePrefix = "spiffe://" + TrustDomain + "/"

var (
	// ErrInvalidIdentity reports an identity string, URI or certificate that
	// does not name a valid HashInsight identity.
	ErrInvalidIdentity = errors.New("mtls: invalid identity")
	// ErrNoPeerIdentity reports a context without a verified mutual-TLS peer.
	ErrNoPeerIdentity = errors.New("mtls: no verified peer identity")
)

// Identity is a SPIFFE identity in the HashInsight trust domain. The zero
// value is not a valid identity.
type Identity struct {
	// Kind is KindService or KindOperator.
	Kind string
	// Name matches [a-z0-9-]+, at most 63 bytes.
	Name string
}

// Service returns the identity of the named service.
func Service(name string) Identity { return Identity{Kind: KindService, Name: name} }

// Operator returns the identity of the named operator.
func Operator(name string) Identity { return Identity{Kind: KindOperator, Name: name} }

// String returns the short form used in allow-lists, e.g. "svc/mining".
// It returns "" for the zero Identity.
func (id Identity) String() string {
	if id == (Identity{}) {
		return ""
	}
	return id.Kind + "/" + id.Name
}

// URI returns the SPIFFE ID, e.g. spiffe://hashinsight.local/svc/mining.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: TrustDomain, Path: "/" + id.Kind + "/" + id.Name}
}

// Validate reports whether id has a known kind and a well-formed name.
func (id Identity) Validate() error {
	if id.Kind != KindService && id.Kind != KindOperator {
		return fmt.Errorf("%w: kind %q is not %q or %q", ErrInvalidIdentity, id.Kind, KindService, KindOperator)
	}
	if !validName(id.Name) {
		return fmt.Errorf("%w: name %q must match [a-z0-9-]+ and be at most %d bytes", ErrInvalidIdentity, id.Name, maxNameLen)
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// ParseIdentity parses the short form "svc/mining" or the SPIFFE ID
// "spiffe://hashinsight.local/svc/mining". Anything else, including other
// trust domains, percent-encoding, ports, queries and fragments, is rejected.
func ParseIdentity(s string) (Identity, error) {
	rest := s
	if strings.Contains(s, "://") {
		var ok bool
		rest, ok = strings.CutPrefix(s, spiffePrefix)
		if !ok {
			return Identity{}, fmt.Errorf("%w: %q is not a SPIFFE ID in trust domain %s", ErrInvalidIdentity, s, TrustDomain)
		}
	}
	kind, name, ok := strings.Cut(rest, "/")
	if !ok {
		return Identity{}, fmt.Errorf("%w: %q is not of the form <kind>/<name>", ErrInvalidIdentity, s)
	}
	id := Identity{Kind: kind, Name: name}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// IdentityFromCert returns the identity of a leaf certificate. Following the
// X.509-SVID rules, the certificate must not be a CA and must carry exactly one
// URI SAN, which must be a valid SPIFFE ID in the HashInsight trust domain.
// It does not verify the certificate's chain; callers pass verified leaves.
func IdentityFromCert(c *x509.Certificate) (Identity, error) {
	if c == nil {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrInvalidIdentity)
	}
	if c.IsCA {
		return Identity{}, fmt.Errorf("%w: certificate %s is a CA", ErrInvalidIdentity, c.SerialNumber)
	}
	if n := len(c.URIs); n != 1 {
		return Identity{}, fmt.Errorf("%w: certificate %s has %d URI SANs, want exactly 1", ErrInvalidIdentity, c.SerialNumber, n)
	}
	id, err := ParseIdentity(c.URIs[0].String())
	if err != nil {
		return Identity{}, fmt.Errorf("certificate %s: %w", c.SerialNumber, err)
	}
	return id, nil
}

// PeerIdentity returns the identity of the mutual-TLS peer of a gRPC call, as
// seen by a server using [Source.ServerTLS]. Only a verified chain counts: a
// peer whose certificate was not verified by the TLS stack (no client
// certificate, or a connection without TLS) yields ErrNoPeerIdentity.
func PeerIdentity(ctx context.Context) (Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return Identity{}, fmt.Errorf("%w: no peer in context", ErrNoPeerIdentity)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return Identity{}, fmt.Errorf("%w: peer auth is %q, not tls", ErrNoPeerIdentity, p.AuthInfo.AuthType())
	}
	chains := info.State.VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return Identity{}, fmt.Errorf("%w: peer certificate not verified", ErrNoPeerIdentity)
	}
	id, err := IdentityFromCert(chains[0][0])
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrNoPeerIdentity, err)
	}
	return id, nil
}

// ValidatePattern reports whether p is a well-formed allow-list pattern:
// "*" (any identity), "<kind>/*" (any identity of that kind) or an exact
// identity "<kind>/<name>".
func ValidatePattern(p string) error {
	if p == "*" {
		return nil
	}
	kind, name, ok := strings.Cut(p, "/")
	if !ok {
		return fmt.Errorf("mtls: pattern %q is not \"*\", \"<kind>/*\" or \"<kind>/<name>\"", p)
	}
	if name == "*" {
		name = "x"
	}
	if err := (Identity{Kind: kind, Name: name}).Validate(); err != nil {
		return fmt.Errorf("mtls: pattern %q: %w", p, err)
	}
	return nil
}

// MatchAny reports whether id matches at least one allow-list pattern. An
// invalid identity matches nothing, and malformed patterns never match, so an
// empty or broken allow-list denies.
func MatchAny(patterns []string, id Identity) bool {
	if id.Validate() != nil {
		return false
	}
	for _, p := range patterns {
		if matchPattern(p, id) {
			return true
		}
	}
	return false
}

func matchPattern(p string, id Identity) bool {
	if p == "*" {
		return true
	}
	kind, name, ok := strings.Cut(p, "/")
	if !ok || kind != id.Kind {
		return false
	}
	return name == "*" || name == id.Name
}
