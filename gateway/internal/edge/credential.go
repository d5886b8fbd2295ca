package edge

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"

	"github.com/hashinsight/platform/pkg/authn/apikey"
)

// credKind is what the edge could tell about a request's credential without verifying it.
type credKind int

const (
	// credNone: no Authorization header.
	credNone credKind = iota
	// credMalformed: an Authorization header that is not "Bearer <JWT-shaped token or
	// well-formed API key>". Refused at the edge with 401 AUTH_001.
	credMalformed
	// credToken: a JWT-shaped bearer token. Its signature is NOT checked here.
	credToken
	// credAPIKey: an API key or collector token whose format and checksum are right. Whether it
	// exists is NOT checked here.
	credAPIKey
)

// maxTokenLen bounds a bearer JWT; ours are well under 2 KiB.
const maxTokenLen = 8 << 10

// credential is the edge's unverified view of a request's credential.
type credential struct {
	kind credKind
	// bucket is the rate-limit bucket the credential claims: "key:<env>:<kind>:<public
	// prefix>" for an API key, "user:<sub>" for a token with a subject; "" otherwise. It is
	// only ever used to count requests: services verify the credential and decide access.
	bucket string
}

// classify inspects the Authorization header (and, for collectors, X-Collector-Key). It does no
// I/O and checks no signature: a JWT's `sub` claim is read unverified purely to pick a rate-limit
// bucket. A forged token therefore gets a bucket of its own — and a 401 from the service, which
// the rate limiter charges to the client IP.
func classify(r *http.Request) credential {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		// Collectors may send their token only as X-Collector-Key. It is never refused here
		// (older collectors send other formats, mining decides), but a well-formed one names
		// its bucket.
		if k, err := apikey.Parse(strings.TrimSpace(r.Header.Get("X-Collector-Key"))); err == nil {
			return credential{kind: credNone, bucket: keyBucket(k)}
		}
		return credential{kind: credNone}
	}
	if len(vals) > 1 {
		return credential{kind: credMalformed}
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	cred = strings.TrimSpace(cred)
	if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return credential{kind: credMalformed}
	}
	if apikey.Looks(cred) {
		k, err := apikey.Parse(cred)
		if err != nil {
			return credential{kind: credMalformed}
		}
		return credential{kind: credAPIKey, bucket: keyBucket(k)}
	}
	sub, ok := jwtSubject(cred)
	if !ok {
		return credential{kind: credMalformed}
	}
	c := credential{kind: credToken}
	if sub != "" {
		c.bucket = "user:" + bucketID(sub)
	}
	return c
}

// keyBucket names an API key's bucket by its public parts only (never the secret).
func keyBucket(k apikey.Key) string {
	return "key:" + k.Env + ":" + k.Kind + ":" + k.Prefix()
}

// jwtSubject checks that s has the shape of a JWS compact serialisation — three non-empty
// base64url segments whose first two decode to JSON objects — and returns its unverified `sub`
// claim ("" when absent or not a string). ok is false for anything else.
func jwtSubject(s string) (sub string, ok bool) {
	if len(s) > maxTokenLen || strings.Count(s, ".") != 2 {
		return "", false
	}
	parts := strings.SplitN(s, ".", 3)
	for _, p := range parts {
		if p == "" || !isBase64URL(p) {
			return "", false
		}
	}
	if _, ok := decodeObject(parts[0]); !ok {
		return "", false
	}
	claims, ok := decodeObject(parts[1])
	if !ok {
		return "", false
	}
	if raw, ok := claims["sub"]; ok {
		_ = json.Unmarshal(raw, &sub) // a non-string sub buckets by IP
	}
	return sub, true
}

// decodeObject decodes a base64url segment holding a JSON object.
func decodeObject(seg string) (map[string]json.RawMessage, bool) {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || m == nil {
		return nil, false
	}
	return m, true
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// bucketID keeps a short, plain identifier (a uuid) readable and hashes anything else, so an
// attacker-chosen subject cannot make long or odd Redis keys.
func bucketID(s string) string {
	if len(s) <= 64 {
		plain := true
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '@') {
				plain = false
				break
			}
		}
		if plain {
			return s
		}
	}
	sum := sha256.Sum256([]byte(s))
	return "#" + hex.EncodeToString(sum[:16])
}

// ipBucket names a client address's bucket. IPv6 clients are grouped by /64, the block one
// subscriber usually holds, so cycling addresses within it does not buy new budgets.
func ipBucket(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "ip:" + bucketID(ip)
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + a.String()
}
