package log

import (
	"encoding"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// secretWords make a key secret wherever they appear in it.
var secretWords = []string{"password", "passwd", "secret", "authorization", "credential", "cookie", "private"}

// secretSuffixes make a key secret when it ends with them: "api_key", "x-collector-key",
// "refresh_token". Keys that merely mention a key or token ("key_id", "token_id",
// "mtls_server_key_path") name an identifier or a location, not a credential, and stay visible.
var secretSuffixes = []string{"key", "token", "apikey"}

// kvPasswordRE matches password=value in a libpq keyword/value DSN (quoted or not).
var kvPasswordRE = regexp.MustCompile(`(?i)\b(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// IsSecretKey reports whether an attribute key looks like it holds a credential: it contains
// password, passwd, secret, authorization, credential, cookie or private, or it ends with key or
// token. Matching is case-insensitive; '-', '.' and ' ' count as '_'.
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	k = strings.TrimRight(k, "_-. ")
	for _, s := range secretSuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// MaskAttr is the handlers' ReplaceAttr: it masks attributes whose key (or enclosing group) looks
// secret, and passwords inside URL and DSN string values.
func MaskAttr(groups []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindGroup {
		return a
	}
	secret := IsSecretKey(a.Key)
	for _, g := range groups {
		secret = secret || IsSecretKey(g)
	}
	if secret {
		if a.Value.Kind() == slog.KindString && a.Value.String() == "" {
			return a
		}
		return slog.String(a.Key, Mask)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); mayHoldPassword(s) {
			return slog.String(a.Key, MaskURL(s))
		}
	case slog.KindAny:
		// url.URL's String keeps the password.
		switch u := a.Value.Any().(type) {
		case *url.URL:
			if u != nil {
				return slog.String(a.Key, MaskURL(u.String()))
			}
		case url.URL:
			return slog.String(a.Key, MaskURL(u.String()))
		}
	}
	return a
}

// mayHoldPassword is a cheap, allocation-free pre-check run on every string attribute.
func mayHoldPassword(s string) bool {
	if strings.Contains(s, "://") {
		return true
	}
	const word = "password"
	for i := 0; i+len(word) <= len(s); i++ {
		if (s[i] == 'p' || s[i] == 'P') && strings.EqualFold(s[i:i+len(word)], word) {
			return true
		}
	}
	return false
}

// MaskURL hides the password in a URL's userinfo ("postgres://user:****@host/db") and in a
// keyword/value DSN ("password=****"); the query parameters password and sslpassword are masked too.
// Anything else is returned unchanged.
func MaskURL(s string) string {
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil && u.Scheme != "" {
			changed := false
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), Mask)
				changed = true
			}
			if q := u.Query(); len(q) > 0 {
				for k := range q {
					if IsSecretKey(k) {
						q.Set(k, Mask)
						changed = true
					}
				}
				if changed {
					u.RawQuery = q.Encode()
				}
			}
			if changed {
				// url.String escapes the mask's asterisks in userinfo; show them literally.
				return strings.ReplaceAll(u.String(), "%2A%2A%2A%2A", Mask)
			}
			return s
		}
	}
	return kvPasswordRE.ReplaceAllString(s, "${1}"+Mask)
}

// Masked renders a config struct (or a pointer to one) as one attribute per leaf field, keyed by the
// field's env variable name (with any envPrefix). Fields tagged `secret:"true"`, and fields whose
// variable name looks secret (IsSecretKey), become "****" when set and "" when empty; passwords in
// URLs and DSNs are masked; lists are joined with ','. Fields without an env tag are skipped unless
// they are structs, which are walked.
func Masked(v any) []slog.Attr {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil
	}
	var attrs []slog.Attr
	walkMasked(rv, "", &attrs)
	return attrs
}

var (
	durationType      = reflect.TypeFor[time.Duration]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

func walkMasked(rv reflect.Value, prefix string, attrs *[]slog.Attr) {
	t := rv.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if key == "-" {
			continue
		}
		fv := rv.Field(i)
		if key == "" {
			inner := fv
			if inner.Kind() == reflect.Pointer && !inner.IsNil() {
				inner = inner.Elem()
			}
			if inner.Kind() == reflect.Struct && !inner.Type().Implements(textMarshalerType) {
				walkMasked(inner, prefix+f.Tag.Get("envPrefix"), attrs)
			}
			continue
		}
		name := prefix + key
		if f.Tag.Get("secret") == "true" || IsSecretKey(name) {
			*attrs = append(*attrs, slog.String(name, maskedSecret(fv)))
			continue
		}
		*attrs = append(*attrs, leafAttr(name, fv))
	}
}

func maskedSecret(v reflect.Value) string {
	if v.IsZero() {
		return ""
	}
	return Mask
}

func leafAttr(name string, v reflect.Value) slog.Attr {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return slog.String(name, "")
		}
		v = v.Elem()
	}
	if v.Type() == durationType {
		return slog.Duration(name, time.Duration(v.Int()))
	}
	if v.Type().Implements(textMarshalerType) {
		if b, err := v.Interface().(encoding.TextMarshaler).MarshalText(); err == nil {
			return slog.String(name, MaskURL(string(b)))
		}
	}
	switch v.Kind() {
	case reflect.String:
		return slog.String(name, MaskURL(v.String()))
	case reflect.Bool:
		return slog.Bool(name, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return slog.Int64(name, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return slog.Uint64(name, v.Uint())
	case reflect.Float32, reflect.Float64:
		return slog.Float64(name, v.Float())
	case reflect.Slice, reflect.Array:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = MaskURL(fmt.Sprint(v.Index(i).Interface()))
		}
		return slog.String(name, strings.Join(parts, ","))
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return slog.String(name, MaskURL(s.String()))
	}
	return slog.String(name, MaskURL(fmt.Sprint(v.Interface())))
}
