package mtls

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
)

// DNFilter restricts the subjects of client certificates accepted by
// [Source.ServerTLS]. It is built from MTLS_ALLOWED_DN_PATTERNS by
// [ParseDNPatterns].
//
// Syntax and meaning:
//
//   - A pattern is a comma-separated list of terms ATTR=VALUE, for example
//     "CN=*.hashinsight.net,O=HashInsight,C=US". A subject matches the pattern
//     when every term matches, i.e. the terms are ANDed. The order of terms is
//     irrelevant, and the subject may carry attributes the pattern does not
//     mention.
//   - Several alternative patterns are separated by semicolons:
//     "O=HashInsight,C=US;O=Partner,OU=ops". A subject is allowed when at least
//     one pattern matches (the patterns are ORed).
//   - ATTR is one of CN, O, OU, C, L, ST, STREET, POSTALCODE, SERIALNUMBER
//     (case-insensitive). Any other attribute is a configuration error.
//   - VALUE is a glob compared case-insensitively against the whole attribute
//     value: "*" matches any run of characters, including none and including
//     dots. A backslash escapes the next character, so "\*", "\,", "\;" and
//     "\\" stand for the literal characters. Spaces around terms and around
//     "=" are ignored.
//   - A term matches when at least one value of that attribute in the subject
//     matches; an attribute absent from the subject fails the term.
//   - No patterns at all (an empty variable) means no subject filter.
//
// The filter narrows, it never widens: the certificate must still chain to the
// CA bundle and carry a valid SPIFFE identity.
type DNFilter struct {
	src      string
	patterns [][]dnTerm
}

type dnTerm struct {
	attr string
	oid  asn1.ObjectIdentifier
	glob []globToken
}

// globToken is one rune of a glob, or a star when star is true.
type globToken struct {
	r    rune
	star bool
}

var dnAttrOIDs = map[string]asn1.ObjectIdentifier{
	"CN":           {2, 5, 4, 3},
	"SERIALNUMBER": {2, 5, 4, 5},
	"C":            {2, 5, 4, 6},
	"L":            {2, 5, 4, 7},
	"ST":           {2, 5, 4, 8},
	"STREET":       {2, 5, 4, 9},
	"O":            {2, 5, 4, 10},
	"OU":           {2, 5, 4, 11},
	"POSTALCODE":   {2, 5, 4, 17},
}

// ParseDNPatterns builds a filter from MTLS_ALLOWED_DN_PATTERNS. The elements
// are joined with commas before parsing, so the result is the same whether the
// caller passes the raw variable as one element or a list already split on
// commas by an environment parser. It returns nil, meaning "no filter", when
// there is no non-blank input.
func ParseDNPatterns(elems []string) (*DNFilter, error) {
	src := strings.TrimSpace(strings.Join(elems, ","))
	if strings.Trim(src, " ,") == "" {
		return nil, nil
	}
	f := &DNFilter{src: src}
	for _, pat := range splitUnescaped(src, ';') {
		if strings.TrimSpace(pat) == "" {
			return nil, fmt.Errorf("mtls: DN patterns %q: empty pattern between ';'", src)
		}
		var terms []dnTerm
		for _, raw := range splitUnescaped(pat, ',') {
			raw = strings.TrimSpace(raw)
			if raw == "" {
				continue // tolerate "a,,b" and trailing commas
			}
			t, err := parseDNTerm(raw)
			if err != nil {
				return nil, fmt.Errorf("mtls: DN patterns %q: %w", src, err)
			}
			terms = append(terms, t)
		}
		if len(terms) == 0 {
			return nil, fmt.Errorf("mtls: DN patterns %q: pattern %q has no terms", src, pat)
		}
		f.patterns = append(f.patterns, terms)
	}
	return f, nil
}

func parseDNTerm(raw string) (dnTerm, error) {
	attr, val, ok := strings.Cut(raw, "=")
	if !ok {
		return dnTerm{}, fmt.Errorf("term %q is not ATTR=VALUE", raw)
	}
	attr = strings.ToUpper(strings.TrimSpace(attr))
	oid, ok := dnAttrOIDs[attr]
	if !ok {
		return dnTerm{}, fmt.Errorf("term %q: unsupported attribute %q", raw, attr)
	}
	glob, err := parseGlob(strings.TrimSpace(val))
	if err != nil {
		return dnTerm{}, fmt.Errorf("term %q: %w", raw, err)
	}
	return dnTerm{attr: attr, oid: oid, glob: glob}, nil
}

// splitUnescaped splits s at each sep not preceded by a backslash escape,
// keeping the escapes in the parts for parseGlob to interpret.
func splitUnescaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // skip the escaped byte; multi-byte runes never contain '\\', ',' or ';'
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func parseGlob(s string) ([]globToken, error) {
	var toks []globToken
	escaped := false
	for _, r := range strings.ToLower(s) {
		switch {
		case escaped:
			toks = append(toks, globToken{r: r})
			escaped = false
		case r == '\\':
			escaped = true
		case r == '*':
			toks = append(toks, globToken{star: true})
		default:
			toks = append(toks, globToken{r: r})
		}
	}
	if escaped {
		return nil, fmt.Errorf("value %q ends with a lone backslash", s)
	}
	return toks, nil
}

// String returns the patterns as configured.
func (f *DNFilter) String() string {
	if f == nil {
		return ""
	}
	return f.src
}

// Match reports whether subject is allowed. A nil filter allows every subject.
func (f *DNFilter) Match(subject pkix.Name) bool {
	if f == nil {
		return true
	}
	for _, terms := range f.patterns {
		if matchTerms(terms, subject) {
			return true
		}
	}
	return false
}

func matchTerms(terms []dnTerm, subject pkix.Name) bool {
	for _, t := range terms {
		if !matchTerm(t, subject) {
			return false
		}
	}
	return true
}

func matchTerm(t dnTerm, subject pkix.Name) bool {
	for _, atv := range subjectAttributes(subject) {
		if !atv.Type.Equal(t.oid) {
			continue
		}
		v, ok := atv.Value.(string)
		if ok && matchGlob(t.glob, []rune(strings.ToLower(v))) {
			return true
		}
	}
	return false
}

// subjectAttributes lists every attribute of subject. A parsed certificate's
// Names keeps repeated attributes that the convenience fields collapse (only
// one CommonName); a hand-built pkix.Name has only the convenience fields.
func subjectAttributes(subject pkix.Name) []pkix.AttributeTypeAndValue {
	if len(subject.Names) > 0 {
		return subject.Names
	}
	var atvs []pkix.AttributeTypeAndValue
	for _, rdn := range subject.ToRDNSequence() {
		atvs = append(atvs, rdn...)
	}
	return atvs
}

// matchGlob is the classic linear-backtracking wildcard match: on a mismatch
// it retries from the most recent star, consuming one more rune with it.
func matchGlob(glob []globToken, s []rune) bool {
	gi, si := 0, 0
	starG, starS := -1, 0
	for si < len(s) {
		switch {
		case gi < len(glob) && glob[gi].star:
			starG, starS = gi, si
			gi++
		case gi < len(glob) && glob[gi].r == s[si]:
			gi++
			si++
		case starG >= 0:
			starS++
			gi, si = starG+1, starS
		default:
			return false
		}
	}
	for gi < len(glob) && glob[gi].star {
		gi++
	}
	return gi == len(glob)
}
