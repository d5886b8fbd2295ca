// Package config reads a HashInsight process's configuration from the environment, once, into a
// typed struct, and validates it before anything starts.
//
// Every process embeds Common (the operations manual's variables) in its own struct and calls Load
// at the top of main. Any problem is reported as an *Error that names the variable; main turns it
// into exit code 2 with Exit. Error messages never contain a variable's value, so they are safe to
// print even when the variable is a secret.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/caarlos0/env/v11"
)

// ExitCode is the process exit status for invalid configuration.
const ExitCode = 2

// DefaultRedisURL is REDIS_URL when the variable is not set at all.
const DefaultRedisURL = "redis://127.0.0.1:6379"

// Error is a configuration problem. Var names the variable (empty for problems not tied to one);
// Reason says what is wrong without repeating the value. When several problems were found, the first
// (in declaration order) is the Error itself and the rest are in Others.
type Error struct {
	Var    string
	Reason string
	Others []*Error
}

// Error renders "config: SESSION_SECRET: must be at least 32 characters", followed by
// "; VAR: reason" for each further problem.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	e.write(&b)
	for _, o := range e.Others {
		b.WriteString("; ")
		o.write(&b)
	}
	return b.String()
}

func (e *Error) write(b *strings.Builder) {
	if e.Var != "" {
		b.WriteString(e.Var)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
}

// Vars lists every variable named by e and its Others, in order.
func (e *Error) Vars() []string {
	vars := make([]string, 0, 1+len(e.Others))
	for _, x := range append([]*Error{e}, e.Others...) {
		if x.Var != "" {
			vars = append(vars, x.Var)
		}
	}
	return vars
}

// Validator is implemented by service config structs that check their own fields. Load calls
// Validate after parsing and after Common's checks; returning an *Error names the variable.
type Validator interface {
	Validate() error
}

// Load fills dst, a pointer to a struct with `env` tags (usually embedding Common), from the process
// environment and validates it. On failure it returns an *Error.
func Load(dst any) error {
	return LoadFrom(dst, env.ToMap(os.Environ()))
}

// Read returns a T (a struct with `env` tags) loaded from environ, or from the process environment
// when environ is nil, and validated: a service's own configuration beyond Common. On failure it
// returns an *Error naming the variable.
func Read[T any](environ map[string]string) (T, error) {
	var c T
	var err error
	if environ == nil {
		err = Load(&c)
	} else {
		err = LoadFrom(&c, environ)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return c, nil
}

// LoadFrom is Load with an explicit environment, for tests and launchers.
func LoadFrom(dst any, environ map[string]string) error {
	if environ == nil {
		environ = map[string]string{}
	}
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return &Error{Reason: fmt.Sprintf("Load needs a non-nil pointer to a struct, got %T", dst)}
	}

	var problems []*Error
	if err := env.ParseWithOptions(dst, env.Options{Environment: environ}); err != nil {
		problems = append(problems, fromEnvError(err, fieldKeys(rv.Elem().Type(), ""))...)
	}

	if c, prefix, ok := findCommon(rv.Elem(), ""); ok {
		c.normalize(environ, prefix)
		problems = append(problems, c.check(prefix)...)
	}

	if v, ok := dst.(Validator); ok {
		if err := v.Validate(); err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				problems = append(problems, ce)
				problems = append(problems, ce.Others...)
				ce.Others = nil
			} else {
				problems = append(problems, &Error{Reason: err.Error()})
			}
		}
	}

	// A variable that failed to parse also fails its range check; report it once.
	seen := map[string]bool{}
	problems = slices.DeleteFunc(problems, func(e *Error) bool {
		dup := e.Var != "" && seen[e.Var]
		seen[e.Var] = true
		return dup
	})
	if len(problems) == 0 {
		return nil
	}
	first := problems[0]
	first.Others = problems[1:]
	return first
}

// Exit prints err on w and returns the process exit status for it: 0 for nil, ExitCode for a
// configuration *Error, 1 for anything else. Only main calls os.Exit with the result.
func Exit(err error, w io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(w, err)
	var ce *Error
	if errors.As(err, &ce) {
		return ExitCode
	}
	return 1
}

// fromEnvError turns the env library's aggregate into per-variable errors. keys maps a struct field
// name to the variable names it may stand for (ParseError only carries the field name).
func fromEnvError(err error, keys map[string][]string) []*Error {
	var agg env.AggregateError
	errs := []error{err}
	if errors.As(err, &agg) {
		errs = agg.Errors
	}
	out := make([]*Error, 0, len(errs))
	for _, e := range errs {
		var (
			notSet   env.VarIsNotSetError
			empty    env.EmptyVarError
			parseErr env.ParseError
		)
		switch {
		case errors.As(e, &notSet):
			out = append(out, &Error{Var: notSet.Key, Reason: "required variable is not set"})
		case errors.As(e, &empty):
			out = append(out, &Error{Var: empty.Key, Reason: "required variable is empty"})
		case errors.As(e, &parseErr):
			name := parseErr.Name
			if k := keys[parseErr.Name]; len(k) == 1 {
				name = k[0]
			}
			out = append(out, &Error{Var: name, Reason: "must be " + describeKind(parseErr.Type)})
		default:
			// Programming errors (unsupported tag, no parser): not tied to a variable.
			out = append(out, &Error{Reason: e.Error()})
		}
	}
	return out
}

func describeKind(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.String() == "time.Duration":
		return "a duration such as 30s or 5m"
	case t.Kind() == reflect.Bool:
		return "a boolean (1, 0, true or false)"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "an integer"
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		return "a non-negative integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Slice:
		return "a list of " + describeKind(t.Elem())
	}
	return "a valid " + t.String()
}

// fieldKeys maps each leaf field name to the variable names (with prefixes) it is read from,
// mirroring how env walks nested structs.
func fieldKeys(t reflect.Type, prefix string) map[string][]string {
	out := map[string][]string{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
			if key != "" && key != "-" {
				out[f.Name] = append(out[f.Name], prefix+key)
			}
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && key == "" {
				walk(ft, prefix+f.Tag.Get("envPrefix"))
			}
		}
	}
	walk(t, prefix)
	return out
}

var commonType = reflect.TypeFor[Common]()

// findCommon finds the first Common in v (v itself, or a nested or embedded field), with the env
// prefix it was parsed under.
func findCommon(v reflect.Value, prefix string) (*Common, string, bool) {
	if v.Type() == commonType {
		return v.Addr().Interface().(*Common), prefix, true
	}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				continue
			}
			fv = fv.Elem()
		}
		if fv.Kind() != reflect.Struct || !fv.CanAddr() {
			continue
		}
		if c, p, ok := findCommon(fv, prefix+f.Tag.Get("envPrefix")); ok {
			return c, p, true
		}
	}
	return nil, "", false
}
