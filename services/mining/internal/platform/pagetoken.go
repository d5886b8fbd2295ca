package platform

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
)

// Page tokens are keyset cursors: the sort key of the last row of a page, bound to the query
// (the list and its filters) that produced it. They are opaque to clients and carry a checksum,
// so a token that was altered, truncated or taken from another query (other filters) is refused
// as InvalidField("page_token", …) instead of silently starting somewhere else. The checksum is
// not a secret: a token only positions a listing, the caller's tenant scope is applied to every
// page regardless, so a forged token can reveal nothing.
//
// Layout: base64url(json{"q": query fingerprint, "k": keys} ‖ sha256(prefix ‖ json)[:8]).

// pageTokenVersion is part of the checksum; bump it when the layout changes.
const pageTokenVersion = "hashinsight-mining-page-token-v1|"

// maxPageTokenLen bounds what DecodePageToken looks at (the protos cap page_token at 1024).
const maxPageTokenLen = 1024

type pageTokenBody struct {
	Q string   `json:"q"`
	K []string `json:"k"`
}

// EncodePageToken returns the token of the page after the row whose sort key is keys, for the
// listing identified by query (e.g. "miners|status=active|site=x"; any string that differs
// whenever the filters differ).
func EncodePageToken(query string, keys ...string) string {
	body, _ := json.Marshal(pageTokenBody{Q: queryFingerprint(query), K: keys}) // strings only: cannot fail
	return base64.RawURLEncoding.EncodeToString(append(body, pageTokenSum(body)...))
}

// DecodePageToken returns the n sort keys of token, which must have been issued by
// EncodePageToken for the same query. Anything else is InvalidField("page_token", …).
func DecodePageToken(token, query string, n int) ([]string, error) {
	bad := InvalidField("page_token", "is not a token from a previous response to this query")
	if len(token) > maxPageTokenLen {
		return nil, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) <= sha256Prefix {
		return nil, bad
	}
	body, sum := raw[:len(raw)-sha256Prefix], raw[len(raw)-sha256Prefix:]
	if !bytes.Equal(sum, pageTokenSum(body)) {
		return nil, bad
	}
	var b pageTokenBody
	if err := json.Unmarshal(body, &b); err != nil || len(b.K) != n {
		return nil, bad
	}
	if b.Q != queryFingerprint(query) {
		return nil, InvalidField("page_token", "was issued for other filters; repeat the first request's filters")
	}
	return b.K, nil
}

// sha256Prefix is how many bytes of the checksum a token carries.
const sha256Prefix = 8

func pageTokenSum(body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(pageTokenVersion))
	h.Write(body)
	return h.Sum(nil)[:sha256Prefix]
}

func queryFingerprint(query string) string {
	s := sha256.Sum256([]byte(query))
	return base64.RawURLEncoding.EncodeToString(s[:9])
}
