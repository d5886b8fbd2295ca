package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// canonicalTimeLayout is how timestamps are hashed: UTC, fixed six fractional digits (the
// microsecond precision of PostgreSQL timestamptz, so a stored entry re-hashes identically).
const canonicalTimeLayout = "2006-01-02T15:04:05.000000Z"

// ComputeHash returns the hex SHA-256 of e's canonical encoding.
//
// The canonical encoding is a JSON object in the style of RFC 8785 (JCS): keys sorted by their
// UTF-16 code units, no insignificant whitespace, strings escaped minimally (only '"', '\' and
// control characters), numbers in ECMAScript form. Its keys are action, category, details,
// event_id, ip_address, level, prev_hash, seq, status, timestamp, user_email, user_id and
// user_role; timestamp is UTC with exactly six fractional digits, seq an integer, details the
// event's details object (empty object when none). Hash itself is not part of the encoding;
// PrevHash is, which is what chains the entries.
//
// e must already be normalised (as Append does and as entries read back from a Store are);
// an invalid details value (not JSON data) yields an error.
func ComputeHash(e Event) (string, error) {
	b, err := canonicalJSON(e)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// canonicalJSON is the canonical encoding of e (see ComputeHash).
func canonicalJSON(e Event) ([]byte, error) {
	details := map[string]any{}
	for k, v := range e.Details {
		details[k] = v
	}
	obj := map[string]any{
		"action":     e.Action,
		"category":   e.Category,
		"details":    details,
		"event_id":   e.ID,
		"ip_address": e.IPAddress,
		"level":      string(e.Level),
		"prev_hash":  e.PrevHash,
		"seq":        e.Seq,
		"status":     e.Status,
		"timestamp":  e.Timestamp.UTC().Format(canonicalTimeLayout),
		"user_email": e.UserEmail,
		"user_id":    e.UserID,
		"user_role":  e.UserRole,
	}
	var buf bytes.Buffer
	if err := writeCanonical(&buf, obj); err != nil {
		return nil, fmt.Errorf("audit: canonical encoding: %w", err)
	}
	return buf.Bytes(), nil
}

// writeCanonical appends v's canonical JSON to buf. v holds only what encoding/json produces
// when decoding into any (nil, bool, float64, string, []any, map[string]any), plus int64.
func writeCanonical(buf *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(v))
	case int64:
		buf.WriteString(strconv.FormatInt(v, 10))
	case float64:
		return writeNumber(buf, v)
	case string:
		writeString(buf, v)
	case []any:
		buf.WriteByte('[')
		for i, item := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonical(buf, item); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareUTF16)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			if err := writeCanonical(buf, v[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	default:
		return fmt.Errorf("unsupported value of type %T", v)
	}
	return nil
}

// writeNumber writes f in ECMAScript Number.prototype.toString form, as RFC 8785 requires;
// encoding/json formats float64 that way, except that it keeps the sign of negative zero.
func writeNumber(buf *bytes.Buffer, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("number %v is not valid JSON", f)
	}
	if f == 0 {
		buf.WriteByte('0')
		return nil
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	buf.Write(b)
	return nil
}

// writeString writes s as an RFC 8785 string: only '"', '\' and control characters are escaped.
// s must be valid UTF-8 (normalised strings are).
func writeString(buf *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	buf.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			buf.WriteByte('\\')
			buf.WriteByte(c)
		case c == '\b':
			buf.WriteString(`\b`)
		case c == '\f':
			buf.WriteString(`\f`)
		case c == '\n':
			buf.WriteString(`\n`)
		case c == '\r':
			buf.WriteString(`\r`)
		case c == '\t':
			buf.WriteString(`\t`)
		case c < 0x20:
			buf.WriteString(`\u00`)
			buf.WriteByte(hexDigits[c>>4])
			buf.WriteByte(hexDigits[c&0xf])
		default:
			buf.WriteByte(c)
		}
	}
	buf.WriteByte('"')
}

// compareUTF16 orders strings by their UTF-16 code units (RFC 8785 §3.2.3).
func compareUTF16(a, b string) int {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

// normalize validates e and returns it in the form that is stored and hashed: defaults applied,
// strings valid UTF-8 without NUL (PostgreSQL text and jsonb reject NUL), the timestamp in UTC
// truncated to microseconds, details round-tripped through JSON.
func normalize(e Event) (Event, error) {
	e.Category = cleanString(e.Category)
	e.Action = cleanString(e.Action)
	e.UserID = cleanString(e.UserID)
	e.UserEmail = cleanString(e.UserEmail)
	e.UserRole = cleanString(e.UserRole)
	e.IPAddress = cleanString(e.IPAddress)
	if e.Level == "" {
		e.Level = LevelInfo
	}
	if e.Status == "" {
		e.Status = StatusSuccess
	}
	switch {
	case !e.Level.Valid():
		return Event{}, fmt.Errorf("%w: level %q", ErrInvalidEvent, e.Level)
	case e.Status != StatusSuccess && e.Status != StatusFailure:
		return Event{}, fmt.Errorf("%w: status %q", ErrInvalidEvent, e.Status)
	case e.Category == "" || len(e.Category) > maxNameLen:
		return Event{}, fmt.Errorf("%w: category must be 1-%d bytes", ErrInvalidEvent, maxNameLen)
	case e.Action == "" || len(e.Action) > maxNameLen:
		return Event{}, fmt.Errorf("%w: action must be 1-%d bytes", ErrInvalidEvent, maxNameLen)
	case len(e.UserID) > maxFieldLen || len(e.UserEmail) > maxFieldLen ||
		len(e.UserRole) > maxFieldLen || len(e.IPAddress) > maxFieldLen:
		return Event{}, fmt.Errorf("%w: user_id, user_email, user_role and ip_address are limited to %d bytes",
			ErrInvalidEvent, maxFieldLen)
	case e.ID != "" && !validEventID(e.ID):
		return Event{}, fmt.Errorf("%w: event id must be 16 lower-case hex characters", ErrInvalidEvent)
	}
	if !e.Timestamp.IsZero() {
		e.Timestamp = e.Timestamp.UTC().Truncate(time.Microsecond)
	}
	details, err := normalizeDetails(e.Details)
	if err != nil {
		return Event{}, fmt.Errorf("%w: details: %v", ErrInvalidEvent, err)
	}
	e.Details = details
	return e, nil
}

// normalizeDetails returns d as encoding/json decodes its JSON encoding (so the value hashed at
// append time equals the value read back from jsonb), with strings cleaned like the other fields.
func normalizeDetails(d map[string]any) (map[string]any, error) {
	if len(d) == 0 {
		return map[string]any{}, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return DecodeDetails(b)
}

// DecodeDetails decodes a stored details object (JSON) into its normalised form. Stores use it
// so that entries read back re-hash exactly as they were hashed.
func DecodeDetails(b []byte) (map[string]any, error) {
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	if out == nil {
		return map[string]any{}, nil
	}
	v, _ := cleanValue(out).(map[string]any)
	return v, nil
}

// cleanValue applies cleanString to every string (values and keys) of a decoded JSON value.
func cleanValue(v any) any {
	switch v := v.(type) {
	case string:
		return cleanString(v)
	case []any:
		for i := range v {
			v[i] = cleanValue(v[i])
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, item := range v {
			out[cleanString(k)] = cleanValue(item)
		}
		return out
	default:
		return v
	}
}

// cleanString makes s storable in PostgreSQL text and jsonb: invalid UTF-8 and NUL become U+FFFD.
func cleanString(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// validEventID reports whether id is 16 lower-case hex characters.
func validEventID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
