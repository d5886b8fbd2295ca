package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hashinsight/platform/cmd/hictl/internal/devmesh"
	"github.com/hashinsight/platform/cmd/hictl/internal/opconn"
	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/grpcclient"
	"github.com/hashinsight/platform/pkg/ident"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// DefaultRPCTimeout bounds each call to the auth service unless --timeout says otherwise.
const DefaultRPCTimeout = 10 * time.Second

// authFlags are the flags shared by the commands that call the auth service
// (user, apikey, audit): where it is and which operator certificate to present.
type authFlags struct {
	op      operatorFlags
	addr    string
	timeout time.Duration
}

// registerOn adds the flags as persistent flags of a command group.
func (f *authFlags) registerOn(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.addr, "addr", "", "auth service gRPC `HOST:PORT` (default: $AUTH_GRPC_ADDR, else 127.0.0.1:7001)")
	fs.DurationVar(&f.timeout, "timeout", DefaultRPCTimeout, "deadline of each request to the auth service")
	f.op.registerOn(fs)
}

// authClient is a connection to the auth service authenticated by the
// operator certificate.
type authClient struct {
	authv1.AuthServiceClient
	pool    *opconn.Pool
	addr    string
	timeout time.Duration
}

// idempotentAuthMethods are the read-only RPCs that may be retried when the
// service is briefly unavailable.
func idempotentAuthMethods() []string {
	return []string{
		authv1.AuthService_ListUsers_FullMethodName,
		authv1.AuthService_GetUser_FullMethodName,
		authv1.AuthService_ListApiKeys_FullMethodName,
		authv1.AuthService_ListAuditEvents_FullMethodName,
		authv1.AuthService_VerifyAuditChain_FullMethodName,
	}
}

// connect resolves the flags and dials the auth service (lazily: the first
// call connects). Close the client when done.
func (f *authFlags) connect(ctx context.Context, s IO) (*authClient, error) {
	if f.timeout <= 0 {
		return nil, usageError{fmt.Errorf("--timeout must be positive, got %s", f.timeout)}
	}
	addr := f.addr
	if addr == "" {
		addr = devmesh.DialAddr(devmesh.ResolveEndpoints(s.lookupEnv).GRPC["auth"])
	}
	cfg, err := f.op.config(s)
	if err != nil {
		return nil, err
	}
	pool, err := opconn.New(cfg, grpcclient.WithIdempotentMethods(idempotentAuthMethods()...))
	if err != nil {
		return nil, err
	}
	cc, err := pool.Conn(ctx, opconn.Target{Name: "auth", Addr: addr})
	if err != nil {
		_ = pool.Close()
		return nil, err
	}
	return &authClient{AuthServiceClient: authv1.NewAuthServiceClient(cc), pool: pool, addr: addr, timeout: f.timeout}, nil
}

// Close closes the connection.
func (c *authClient) Close() error { return c.pool.Close() }

// callCtx bounds one request by --timeout.
func (c *authClient) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// wrap turns a failed call into an error for the operator (see rpcError).
func (c *authClient) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	return &rpcError{op: op, addr: c.addr, timeout: c.timeout, identity: c.pool.Identity().String(), st: st}
}

// rpcError is a gRPC error from the auth service, rendered with its
// HashInsight code (the ErrorInfo reason, e.g. AUTH_002) and, for invalid
// requests, the offending fields.
type rpcError struct {
	op       string // what hictl was doing: "create user"
	addr     string
	timeout  time.Duration
	identity string // the operator identity presented
	st       *status.Status
}

// Error renders the status as one line, followed by one indented line per
// field violation.
func (e *rpcError) Error() string {
	code, _ := errcode.FromStatus(e.st)
	msg := e.st.Message()
	var what, hint string
	switch e.st.Code() {
	case codes.Unauthenticated:
		what = "not authenticated"
		if code == errcode.AuthExpired {
			what = "credential expired"
		}
		hint = "the auth service did not accept " + e.identity + " as a credential"
	case codes.PermissionDenied:
		what = "permission denied"
		hint = "hictl presented " + e.identity + "; the method must allow operator/* callers"
	case codes.InvalidArgument, codes.OutOfRange:
		what = "invalid request"
	case codes.NotFound:
		what = "not found"
	case codes.AlreadyExists:
		what = "already exists"
	case codes.Aborted:
		what = "conflict, try again"
	case codes.FailedPrecondition:
		what = "not allowed in the current state"
	case codes.ResourceExhausted:
		what = "rate limited, try again later"
	case codes.Unavailable:
		what = "auth service unavailable at " + e.addr
		hint = "is it running? check with `hictl health auth`; --addr or AUTH_GRPC_ADDR point elsewhere"
		if strings.Contains(msg, "handshake") {
			hint = "the server must present svc/auth signed by the --cacert CA and accept " + e.identity
		}
	case codes.DeadlineExceeded:
		what = fmt.Sprintf("no answer from the auth service at %s within %s", e.addr, e.timeout)
		hint = "--timeout allows longer"
	case codes.Unimplemented:
		what = "the auth service at " + e.addr + " does not implement this yet"
	case codes.Canceled:
		what = "canceled"
	default:
		what = "auth service error"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.op, what)
	if code != "" {
		fmt.Fprintf(&b, " [%s]", code)
	}
	violations := errcode.FieldViolations(e.st)
	// With field violations the message only repeats them.
	if msg != "" && !strings.EqualFold(msg, what) && len(violations) == 0 {
		fmt.Fprintf(&b, ": %s", msg)
	}
	if hint != "" {
		fmt.Fprintf(&b, " (%s)", hint)
	}
	for _, v := range violations {
		field := v.Field
		if field == "" {
			field = "(request)"
		}
		fmt.Fprintf(&b, "\n  %s: %s", field, v.Description)
	}
	return b.String()
}

// ExitCode is ExitUsage when the server rejected the arguments as invalid,
// ExitError otherwise.
func (e *rpcError) ExitCode() int {
	switch e.st.Code() {
	case codes.InvalidArgument, codes.OutOfRange:
		return ExitUsage
	}
	return ExitError
}

// GRPCStatus lets status.FromError see through the rendering.
func (e *rpcError) GRPCStatus() *status.Status { return e.st }

// exitError is an error with a specific exit status.
type exitError struct {
	error
	code int
}

func (e exitError) Unwrap() error { return e.error }

// ExitCode returns the exit status.
func (e exitError) ExitCode() int { return e.code }

// Output formats.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// outputFlag is --output.
type outputFlag struct{ format string }

func (o *outputFlag) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVarP(&o.format, "output", "o", outputTable, "output format: table or json")
}

func (o outputFlag) validate() error {
	switch o.format {
	case outputTable, outputJSON:
		return nil
	}
	return usageError{fmt.Errorf("--output %q: want table or json", o.format)}
}

func (o outputFlag) json() bool { return o.format == outputJSON }

// writeJSON writes v as indented JSON (no HTML escaping).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// exactArgs is cobra.ExactArgs reported as a usage error.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("want %s, got %d argument(s)", names, len(args))}
		}
		return nil
	}
}

// newGroupCmd is a command that only holds subcommands; an unknown
// subcommand is a usage error.
func newGroupCmd(use, short, long string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

// checkUUID is a usage error unless v (named what) is a UUID or, when
// optional, empty.
func checkUUID(what, v string, optional bool) error {
	if v == "" && optional {
		return nil
	}
	if !ident.IsUUID(v) {
		return usageError{fmt.Errorf("%s %q is not a UUID", what, v)}
	}
	return nil
}

// roleNames are the roles as hictl spells them.
func roleNames() []string { return []string{"owner", "admin", "broker", "client"} }

// parseRole reads owner|admin|broker|client (any case, ROLE_ prefix allowed).
func parseRole(s string) (authv1.Role, error) {
	v := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(v, "ROLE_") {
		v = "ROLE_" + v
	}
	r, ok := authv1.Role_value[v]
	if !ok || r == int32(authv1.Role_ROLE_UNSPECIFIED) {
		return 0, usageError{fmt.Errorf("--role %q: want one of %s", s, strings.Join(roleNames(), ", "))}
	}
	return authv1.Role(r), nil
}

// roleName is the manual's lower-case role name ("owner").
func roleName(r authv1.Role) string {
	if r == authv1.Role_ROLE_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

// parseDuration is time.ParseDuration that also takes whole days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (e.g. 90d, 168h, 30m)", s)
	}
	return d, nil
}

// parseDays reads an expiry as days: "90d", "90" (days, as the old
// create_api_key.py took it) or a duration of whole days ("2160h").
func parseDays(s string) (int32, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil {
		d, derr := parseDuration(s)
		if derr != nil {
			return 0, derr
		}
		if d%(24*time.Hour) != 0 {
			return 0, fmt.Errorf("%q is not a whole number of days", s)
		}
		n = int(d / (24 * time.Hour))
	}
	if n < 1 || n > 3650 {
		return 0, fmt.Errorf("%q: want between 1 and 3650 days", s)
	}
	return int32(n), nil
}

// formatTime renders a timestamp as RFC 3339 UTC, "" when unset.
func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

// orDash is v, or "-" when empty (table cells).
func orDash(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

// pageSizeFlag is --page-size, checked against the API's 0..1000.
func checkPageSize(n int32) error {
	if n < 0 || n > 1000 {
		return usageError{fmt.Errorf("--page-size %d: want 0 (server default) to 1000", n)}
	}
	return nil
}

// collectPages calls fetch with first and then with every next-page token
// while all is set, and returns the items in order and the token of the page
// after the last one fetched ("" at the end).
func collectPages[T any](ctx context.Context, first string, all bool, fetch func(ctx context.Context, token string) ([]T, string, error)) ([]T, string, error) {
	var out []T
	seen := map[string]bool{}
	token := first
	for {
		items, next, err := fetch(ctx, token)
		if err != nil {
			return nil, "", err
		}
		out = append(out, items...)
		if next == "" || !all {
			return out, next, nil
		}
		if seen[next] {
			return nil, "", errors.New("the server returned the same page token twice; stopping")
		}
		seen[next] = true
		token = next
	}
}

// aliases is a flag normalisation that maps alternative flag names (the old
// scripts' spellings) to hictl's.
func aliases(m map[string]string) func(*pflag.FlagSet, string) pflag.NormalizedName {
	return func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if to, ok := m[name]; ok {
			return pflag.NormalizedName(to)
		}
		return pflag.NormalizedName(name)
	}
}
