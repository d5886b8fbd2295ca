package postgres

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// RoleDSN returns adminDSN with the user and password replaced by role and password: same hosts,
// ports, database, TLS and other settings. Any search_path the admin DSN sets (as a parameter or
// inside options) is removed, so the connection gets the role's own search_path, which
// [Bootstrap] sets to the role's schema; use [Service.DSN] or [SearchPathDSN] to also pin it in
// the DSN. Both URL (postgres://...) and keyword/value (host=... user=...) forms are accepted and
// the result keeps the input's form.
func RoleDSN(adminDSN, role, password string) (string, error) {
	if err := ValidateIdentifier(role); err != nil {
		return "", fmt.Errorf("postgres: role dsn: %w", err)
	}
	d, err := parseDSN(adminDSN)
	if err != nil {
		return "", fmt.Errorf("postgres: role dsn: %w", err)
	}
	d.setUser(role, password)
	d.setSearchPath("")
	return d.finish()
}

// DatabaseDSN returns dsn pointing at database instead, keeping server, credentials and settings.
func DatabaseDSN(dsn, database string) (string, error) {
	if database == "" {
		return "", errors.New("postgres: database dsn: empty database name")
	}
	d, err := parseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("postgres: database dsn: %w", err)
	}
	d.setDatabase(database)
	return d.finish()
}

// SearchPathDSN returns dsn with search_path pinned to schema through the libpq `options`
// parameter (-csearch_path=schema), understood by pgx, psql and every libpq client.
func SearchPathDSN(dsn, schema string) (string, error) {
	if err := ValidateIdentifier(schema); err != nil {
		return "", fmt.Errorf("postgres: search path dsn: %w", err)
	}
	d, err := parseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("postgres: search path dsn: %w", err)
	}
	d.setSearchPath(schema)
	return d.finish()
}

// dsn is a parsed connection string that can be edited and written back in its original form.
type dsn struct {
	url *url.URL // set for postgres:// and postgresql:// URLs
	kv  []kvPair // keyword/value form, in order
}

type kvPair struct{ key, value string }

func parseDSN(s string) (*dsn, error) {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			// url.Error quotes the input, which may hold a password: report only the cause.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("parse url: %w", err)
		}
		return &dsn{url: u}, nil
	}
	kv, err := parseKeywordValue(s)
	if err != nil {
		return nil, err
	}
	return &dsn{kv: kv}, nil
}

func (d *dsn) get(key string) string {
	if d.url != nil {
		return d.url.Query().Get(key)
	}
	for _, p := range d.kv {
		if p.key == key {
			return p.value
		}
	}
	return ""
}

// set replaces key (and any alias) with value; an empty value removes it.
func (d *dsn) set(value string, key string, aliases ...string) {
	keys := append([]string{key}, aliases...)
	if d.url != nil {
		q := d.url.Query()
		for _, k := range keys {
			q.Del(k)
		}
		if value != "" {
			q.Set(key, value)
		}
		d.url.RawQuery = q.Encode()
		return
	}
	kv := d.kv[:0]
	for _, p := range d.kv {
		drop := false
		for _, k := range keys {
			drop = drop || p.key == k
		}
		if !drop {
			kv = append(kv, p)
		}
	}
	if value != "" {
		kv = append(kv, kvPair{key, value})
	}
	d.kv = kv
}

func (d *dsn) setUser(user, password string) {
	if d.url != nil {
		if password != "" {
			d.url.User = url.UserPassword(user, password)
		} else {
			d.url.User = url.User(user)
		}
		d.set("", "user")
		d.set("", "password")
		return
	}
	d.set(user, "user")
	d.set(password, "password")
}

func (d *dsn) setDatabase(database string) {
	if d.url != nil {
		d.url.Path = "/" + database
		d.url.RawPath = ""
		d.set("", "dbname", "database")
		return
	}
	d.set(database, "dbname", "database")
}

// setSearchPath removes every search_path setting and, when schema is not empty, adds
// -csearch_path=schema to the options parameter.
func (d *dsn) setSearchPath(schema string) {
	d.set("", "search_path")
	var kept []string
	fields := strings.Fields(d.get("options"))
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		switch {
		case f == "-c" && i+1 < len(fields) && isSearchPathSetting(fields[i+1]):
			i++
		case strings.HasPrefix(f, "-c") && isSearchPathSetting(f[2:]),
			strings.HasPrefix(f, "--") && isSearchPathSetting(f[2:]):
		default:
			kept = append(kept, f)
		}
	}
	if schema != "" {
		kept = append(kept, "-csearch_path="+schema)
	}
	d.set(strings.Join(kept, " "), "options")
}

func isSearchPathSetting(s string) bool {
	name, _, _ := strings.Cut(s, "=")
	return strings.ReplaceAll(name, "-", "_") == "search_path"
}

// finish serialises d and checks pgx accepts the result.
func (d *dsn) finish() (string, error) {
	var s string
	if d.url != nil {
		s = d.url.String()
	} else {
		parts := make([]string, 0, len(d.kv))
		for _, p := range d.kv {
			parts = append(parts, p.key+"="+quoteKeywordValue(p.value))
		}
		s = strings.Join(parts, " ")
	}
	if _, err := pgconn.ParseConfig(s); err != nil {
		return "", fmt.Errorf("rebuilt dsn is invalid: %w", err)
	}
	return s, nil
}

// quoteKeywordValue single-quotes v for a keyword/value connection string.
func quoteKeywordValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(v) + "'"
}

// parseKeywordValue parses a libpq keyword/value connection string ("host=x port=5432
// password='a b'") into ordered pairs, with libpq's quoting rules.
func parseKeywordValue(s string) ([]kvPair, error) {
	const space = " \t\n\r\v\f"
	var out []kvPair
	s = strings.TrimLeft(s, space)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, errors.New("invalid keyword/value connection string: missing '='")
		}
		key := strings.Trim(s[:eq], space)
		if key == "" || strings.ContainsAny(key, space) {
			return nil, errors.New("invalid keyword/value connection string: bad keyword")
		}
		s = strings.TrimLeft(s[eq+1:], space)
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			i, closed := 1, false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
				if c == '\'' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, errors.New("invalid keyword/value connection string: unterminated quoted value")
			}
			s = s[i:]
		} else {
			i := 0
			for i < len(s) && !strings.ContainsRune(space, rune(s[i])) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
			s = s[i:]
		}
		out = append(out, kvPair{key: key, value: val.String()})
		s = strings.TrimLeft(s, space)
	}
	return out, nil
}
