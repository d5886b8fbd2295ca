package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hashinsight/platform/pkg/access"
	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/grpcserver"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// The fake auth service below stands in for services/auth: this file tests
// the CLI, so what matters is what hictl sends and how it renders answers.
// It runs inside the real pkg/grpcserver (mutual TLS, the access rules
// declared in auth_service.proto, protovalidate), so every request hictl
// makes also passes the proto's validation rules and the operator/*
// allow-list, exactly as with the real service.

const (
	userA = "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"
	keyA  = "0b6c7a8e-1f2d-4e3c-9a8b-7c6d5e4f3a2b"
	custA = "8e0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"
)

// fakeAuth records every request and answers from its in-memory state.
type fakeAuth struct {
	authv1.UnimplementedAuthServiceServer
	t *testing.T

	mu     sync.Mutex
	reqs   []proto.Message
	fail   map[string]error // method → error for its calls
	block  map[string]bool  // method → wait for the caller to give up
	users  []*authv1.User
	keys   []*authv1.ApiKey
	events []*authv1.AuditEvent
	verify *authv1.VerifyAuditChainResponse
	// maxPage caps page sizes, like a server would.
	maxPage int
}

// enter checks the caller is hictl's operator certificate, records req and
// returns the configured failure, if any.
func (f *fakeAuth) enter(ctx context.Context, method string, req proto.Message) error {
	if id, err := mtls.PeerIdentity(ctx); err != nil || id != mtls.Operator("dev") {
		f.t.Errorf("%s: caller %v (%v), want operator/dev", method, id, err)
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, proto.Clone(req))
	err := f.fail[method]
	block := f.block[method]
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	return err
}

// requests returns the recorded requests of type T.
func requests[T proto.Message](f *fakeAuth) []T {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []T
	for _, r := range f.reqs {
		if v, ok := r.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func (f *fakeAuth) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs, f.fail, f.block = nil, map[string]error{}, map[string]bool{}
}

func (f *fakeAuth) setFail(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = err
}

// page returns one page of items: tokens are offsets.
func page[T any](items []T, size int32, token string, maxPage int) ([]T, string, error) {
	if size == 0 {
		size = 50
	}
	size = min(size, int32(maxPage))
	off := 0
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 || n > len(items) {
			return nil, "", status.Error(codes.InvalidArgument, "bad page token")
		}
		off = n
	}
	end := min(off+int(size), len(items))
	next := ""
	if end < len(items) {
		next = strconv.Itoa(end)
	}
	return items[off:end], next, nil
}

func (f *fakeAuth) CreateUser(ctx context.Context, r *authv1.CreateUserRequest) (*authv1.CreateUserResponse, error) {
	if err := f.enter(ctx, "CreateUser", r); err != nil {
		return nil, err
	}
	return &authv1.CreateUserResponse{User: &authv1.User{
		Id: userA, Email: r.GetEmail(), DisplayName: r.GetDisplayName(), Role: r.GetRole(),
		CustomerId: r.GetCustomerId(), Permissions: []string{"self"}, CreateTime: timestamppb.New(time.Date(2025, 10, 3, 12, 0, 0, 0, time.UTC)),
	}}, nil
}

func (f *fakeAuth) ListUsers(ctx context.Context, r *authv1.ListUsersRequest) (*authv1.ListUsersResponse, error) {
	if err := f.enter(ctx, "ListUsers", r); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	users, next, err := page(f.users, r.GetPageSize(), r.GetPageToken(), f.maxPage)
	if err != nil {
		return nil, err
	}
	return &authv1.ListUsersResponse{Users: users, NextPageToken: next}, nil
}

func (f *fakeAuth) ChangeUserRole(ctx context.Context, r *authv1.ChangeUserRoleRequest) (*authv1.ChangeUserRoleResponse, error) {
	if err := f.enter(ctx, "ChangeUserRole", r); err != nil {
		return nil, err
	}
	return &authv1.ChangeUserRoleResponse{User: &authv1.User{Id: r.GetId(), Email: "u@example.com", Role: r.GetRole(), CustomerId: r.GetCustomerId()}}, nil
}

func (f *fakeAuth) DisableUser(ctx context.Context, r *authv1.DisableUserRequest) (*authv1.DisableUserResponse, error) {
	if err := f.enter(ctx, "DisableUser", r); err != nil {
		return nil, err
	}
	return &authv1.DisableUserResponse{User: &authv1.User{
		Id: r.GetId(), Email: "u@example.com", Role: authv1.Role_ROLE_BROKER, Disabled: true,
		DisableTime: timestamppb.New(time.Date(2025, 10, 4, 8, 0, 0, 0, time.UTC)),
	}}, nil
}

func testKey(id string, perms []string) *authv1.ApiKey {
	return &authv1.ApiKey{
		Id: id, Name: "ci", DisplayPrefix: "hsi_dev_key_abcdefghijkl", UserId: userA, Permissions: perms,
		State: authv1.ApiKeyState_API_KEY_STATE_ACTIVE, CreateTime: timestamppb.New(time.Date(2025, 10, 3, 12, 0, 0, 0, time.UTC)),
		ExpireTime: timestamppb.New(time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)),
	}
}

func (f *fakeAuth) CreateApiKey(ctx context.Context, r *authv1.CreateApiKeyRequest) (*authv1.CreateApiKeyResponse, error) {
	if err := f.enter(ctx, "CreateApiKey", r); err != nil {
		return nil, err
	}
	k := testKey(keyA, r.GetPermissions())
	k.Name = r.GetName()
	return &authv1.CreateApiKeyResponse{ApiKey: k, Secret: "hsi_dev_key_NEWSECRETNEWSECRETNEWSECRETNEWS1a2b3c"}, nil
}

func (f *fakeAuth) ListApiKeys(ctx context.Context, r *authv1.ListApiKeysRequest) (*authv1.ListApiKeysResponse, error) {
	if err := f.enter(ctx, "ListApiKeys", r); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	keys, next, err := page(f.keys, r.GetPageSize(), r.GetPageToken(), f.maxPage)
	if err != nil {
		return nil, err
	}
	return &authv1.ListApiKeysResponse{ApiKeys: keys, NextPageToken: next}, nil
}

func (f *fakeAuth) RotateApiKey(ctx context.Context, r *authv1.RotateApiKeyRequest) (*authv1.RotateApiKeyResponse, error) {
	if err := f.enter(ctx, "RotateApiKey", r); err != nil {
		return nil, err
	}
	prev := testKey(r.GetId(), []string{"miners:read"})
	prev.State = authv1.ApiKeyState_API_KEY_STATE_ROTATED
	prev.ExpireTime = timestamppb.New(time.Date(2025, 10, 10, 12, 0, 0, 0, time.UTC))
	next := testKey("1c7d8b9f-2a3e-4f4d-8b9c-8d7e6f5a4b3c", []string{"miners:read"})
	next.RotatedFromId = r.GetId()
	return &authv1.RotateApiKeyResponse{ApiKey: next, Secret: "hsi_dev_key_ROTATEDROTATEDROTATEDROTATEDROTA9z8y7x", Previous: prev}, nil
}

func (f *fakeAuth) RevokeApiKey(ctx context.Context, r *authv1.RevokeApiKeyRequest) (*authv1.RevokeApiKeyResponse, error) {
	if err := f.enter(ctx, "RevokeApiKey", r); err != nil {
		return nil, err
	}
	k := testKey(r.GetId(), []string{"miners:read"})
	k.State = authv1.ApiKeyState_API_KEY_STATE_REVOKED
	k.RevokeTime = timestamppb.New(time.Date(2025, 10, 5, 9, 30, 0, 0, time.UTC))
	return &authv1.RevokeApiKeyResponse{ApiKey: k}, nil
}

// ListAuditEvents filters like the real service and lists newest first.
func (f *fakeAuth) ListAuditEvents(ctx context.Context, r *authv1.ListAuditEventsRequest) (*authv1.ListAuditEventsResponse, error) {
	if err := f.enter(ctx, "ListAuditEvents", r); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var match []*authv1.AuditEvent
	for i := len(f.events) - 1; i >= 0; i-- {
		e := f.events[i]
		switch {
		case r.GetUserId() != "" && e.GetUserId() != r.GetUserId(),
			r.GetCategory() != "" && e.GetCategory() != r.GetCategory(),
			r.GetAction() != "" && e.GetAction() != r.GetAction(),
			e.GetLevel() < r.GetLevel(),
			r.GetFrom() != nil && e.GetTimestamp().AsTime().Before(r.GetFrom().AsTime()):
			continue
		}
		match = append(match, e)
	}
	events, next, err := page(match, r.GetPageSize(), r.GetPageToken(), f.maxPage)
	if err != nil {
		return nil, err
	}
	return &authv1.ListAuditEventsResponse{AuditEvents: events, NextPageToken: next}, nil
}

func (f *fakeAuth) VerifyAuditChain(ctx context.Context, r *authv1.VerifyAuditChainRequest) (*authv1.VerifyAuditChainResponse, error) {
	if err := f.enter(ctx, "VerifyAuditChain", r); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.verify, nil
}

// addEvents appends audit events with the next sequences.
func (f *fakeAuth) addEvents(n int, edit func(e *authv1.AuditEvent)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		seq := int64(len(f.events) + 1)
		details, _ := structpb.NewStruct(map[string]any{"login_method": "password", "two_factor": true})
		e := &authv1.AuditEvent{
			Sequence:  seq,
			EventId:   fmt.Sprintf("evt-%04d", seq),
			Timestamp: timestamppb.New(time.Now().Add(-time.Hour).Add(time.Duration(seq) * time.Millisecond)),
			Level:     authv1.AuditLevel_AUDIT_LEVEL_INFO,
			Category:  "authentication",
			Action:    "login",
			UserId:    "123",
			UserEmail: "user@example.com",
			UserRole:  "admin",
			IpAddress: "192.168.1.100",
			Status:    "success",
			Details:   details,
		}
		if edit != nil {
			edit(e)
		}
		f.events = append(f.events, e)
	}
}

// authEnv is a repository with dev certificates and a running fake auth service.
type authEnv struct {
	repo  string
	files devca.Files
	addr  string
	fake  *fakeAuth
}

// tls are the flags selecting the test certificates and the server.
func (e *authEnv) flags() []string {
	op := e.files.Leaves[mtls.Operator("dev")]
	return []string{"--addr", e.addr, "--cacert", e.files.CACert, "--cert", op.Cert, "--key", op.Key}
}

func startAuth(t *testing.T) *authEnv {
	t.Helper()
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "go.work"), []byte("go 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := devca.Ensure(filepath.Join(repo, ".data", "certs"), []mtls.Identity{
		mtls.Service("auth"), mtls.Service("mining"), mtls.Operator("dev"),
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, fake := serveAuth(t, files, mtls.Service("auth"))
	return &authEnv{repo: repo, files: files, addr: addr, fake: fake}
}

// serveAuth runs the fake auth service in pkg/grpcserver, presenting id.
func serveAuth(t *testing.T, files devca.Files, id mtls.Identity) (string, *fakeAuth) {
	t.Helper()
	src, err := mtls.NewSource(files.Config(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := access.Load(protoreflect.FullName(authv1.AuthService_ServiceDesc.ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcserver.New(grpcserver.Config{Service: "auth", TLS: src.ServerTLS(), Policy: policy, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeAuth{t: t, maxPage: 1000}
	fake.reset()
	authv1.RegisterAuthServiceServer(srv.GRPC(), fake)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, lis, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return lis.Addr().String(), fake
}

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runOpts are a run's standard input, terminal answers and environment.
type runOpts struct {
	stdin   string
	answers []string // password prompt answers; nil: no terminal
	env     []string
	dir     string
}

type result struct {
	code           int
	stdout, stderr string
	prompts        []string
}

// check fails the test unless r exited with code, printed exactly wantOut (when not empty) and
// printed wantErr within its standard error.
func (r result) check(t *testing.T, code int, wantOut, wantErr string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	if wantOut != "" && r.stdout != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, wantOut)
	}
	if !strings.Contains(r.stderr, wantErr) {
		t.Errorf("stderr %q does not contain %q", r.stderr, wantErr)
	}
}

// checkSent fails the test unless got is exactly want, or empty when want is nil.
func checkSent[T proto.Message](t *testing.T, got []T, want T) {
	t.Helper()
	none := proto.Message(want) == nil || !want.ProtoReflect().IsValid()
	switch {
	case none && len(got) > 0:
		t.Errorf("request sent: %v", got)
	case !none && (len(got) != 1 || !proto.Equal(got[0], want)):
		t.Errorf("requests %v, want %v", got, want)
	}
}

// run runs hictl with args plus the env's connection flags.
func (e *authEnv) run(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	return e.runCtx(context.Background(), t, o, &syncBuffer{}, append(args, e.flags()...)...)
}

func (e *authEnv) runCtx(ctx context.Context, t *testing.T, o runOpts, stdout *syncBuffer, args ...string) result {
	t.Helper()
	var stderr syncBuffer
	var prompts []string
	var read PasswordReader
	if o.answers != nil {
		answers := slices.Clone(o.answers)
		read = func(_ context.Context, prompt string) (string, error) {
			prompts = append(prompts, prompt)
			if len(answers) == 0 {
				return "", fmt.Errorf("unexpected prompt %q", prompt)
			}
			a := answers[0]
			answers = answers[1:]
			return a, nil
		}
	}
	dir := o.dir
	if dir == "" {
		dir = e.repo
	}
	code := Execute(ctx, args, IO{
		Stdout:       stdout,
		Stderr:       &stderr,
		Environ:      o.env,
		Getwd:        func() (string, error) { return dir, nil },
		Stdin:        strings.NewReader(o.stdin),
		ReadPassword: read,
	})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String(), prompts: prompts}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestUserCreate(t *testing.T) {
	env := startAuth(t)
	tests := []struct {
		name       string
		args       []string
		opts       runOpts
		fail       error // the server's answer
		wantCode   int
		wantOut    string // exact stdout, when set
		wantErr    string // substring of stderr
		wantPrompt []string
		want       *authv1.CreateUserRequest // nil: no request may reach the server
	}{
		{
			name:       "first owner from the prompt",
			args:       []string{"--email", "admin@hashinsight.net", "--username", "admin", "--role", "owner", "--password-prompt"},
			opts:       runOpts{answers: []string{"correct horse", "correct horse"}},
			wantOut:    "User created\nID: " + userA + "\nEmail: admin@hashinsight.net\nRole: owner\nName: admin\n",
			wantPrompt: []string{passwordPrompt, passwordConfirmPrompt},
			want:       &authv1.CreateUserRequest{Email: "admin@hashinsight.net", Password: "correct horse", DisplayName: "admin", Role: authv1.Role_ROLE_OWNER},
		},
		{
			name:    "password from stdin, one line, CRLF trimmed",
			args:    []string{"--email", "ops@example.com", "--name", "Ops", "--role", "ADMIN", "--password-stdin"},
			opts:    runOpts{stdin: "from stdin 1\r\nsecond line ignored\n"},
			wantOut: "User created\nID: " + userA + "\nEmail: ops@example.com\nRole: admin\nName: Ops\n",
			want:    &authv1.CreateUserRequest{Email: "ops@example.com", Password: "from stdin 1", DisplayName: "Ops", Role: authv1.Role_ROLE_ADMIN},
		},
		{
			name:    "client bound to a customer",
			args:    []string{"--email", "c@example.com", "--role", "client", "--customer-id", custA, "--password-stdin"},
			opts:    runOpts{stdin: "password-123"},
			wantOut: "User created\nID: " + userA + "\nEmail: c@example.com\nRole: client\nCustomer ID: " + custA + "\n",
			want:    &authv1.CreateUserRequest{Email: "c@example.com", Password: "password-123", Role: authv1.Role_ROLE_CLIENT, CustomerId: custA},
		},
		{
			name:       "mismatched prompt entries",
			args:       []string{"--email", "a@example.com", "--role", "owner", "--password-prompt"},
			opts:       runOpts{answers: []string{"password-1", "password-2"}},
			wantCode:   ExitError,
			wantErr:    "passwords do not match",
			wantPrompt: []string{passwordPrompt, passwordConfirmPrompt},
		},
		{
			name:     "empty prompt entry",
			args:     []string{"--email", "a@example.com", "--role", "owner", "--password-prompt"},
			opts:     runOpts{answers: []string{""}},
			wantCode: ExitError,
			wantErr:  "empty password",
		},
		{
			name:     "prompt without a terminal",
			args:     []string{"--email", "a@example.com", "--role", "owner", "--password-prompt"},
			wantCode: ExitError,
			wantErr:  "--password-stdin",
		},
		{name: "empty stdin", args: []string{"--email", "a@example.com", "--role", "owner", "--password-stdin"}, wantCode: ExitError, wantErr: "standard input is empty"},
		{name: "missing --email", args: []string{"--role", "owner", "--password-stdin"}, opts: runOpts{stdin: "password-1"}, wantCode: ExitUsage, wantErr: "--email is required"},
		{name: "missing --role", args: []string{"--email", "a@example.com", "--password-stdin"}, opts: runOpts{stdin: "password-1"}, wantCode: ExitUsage, wantErr: "--role is required"},
		{name: "bad role", args: []string{"--email", "a@example.com", "--role", "root", "--password-stdin"}, opts: runOpts{stdin: "password-1"}, wantCode: ExitUsage, wantErr: `--role "root": want one of owner, admin, broker, client`},
		{name: "no password source", args: []string{"--email", "a@example.com", "--role", "owner"}, wantCode: ExitUsage, wantErr: "never a flag value"},
		{name: "both password sources", args: []string{"--email", "a@example.com", "--role", "owner", "--password-prompt", "--password-stdin"}, wantCode: ExitUsage, wantErr: "not both"},
		{name: "password as a flag value", args: []string{"--email", "a@example.com", "--role", "owner", "--password", "hunter22"}, wantCode: ExitUsage, wantErr: "unknown flag: --password"},
		{name: "client without customer", args: []string{"--email", "c@example.com", "--role", "client", "--password-stdin"}, opts: runOpts{stdin: "password-1"}, wantCode: ExitUsage, wantErr: "--customer-id is required"},
		{name: "customer for an admin", args: []string{"--email", "c@example.com", "--role", "admin", "--customer-id", custA, "--password-stdin"}, opts: runOpts{stdin: "password-1"}, wantCode: ExitUsage, wantErr: "only for --role client"},
		{name: "customer not a uuid", args: []string{"--email", "c@example.com", "--role", "client", "--customer-id", "42", "--password-stdin"}, opts: runOpts{stdin: "password-1"}, wantCode: ExitUsage, wantErr: "not a UUID"},
		{name: "bad --output", args: []string{"--email", "a@example.com", "--role", "owner", "--password-stdin", "-o", "yaml"}, opts: runOpts{stdin: "password-1"}, wantCode: ExitUsage, wantErr: "--output"},
		{
			// The real protovalidate rules of CreateUserRequest reject these;
			// hictl shows the field violations and exits 2.
			name:     "server validation: email and password",
			args:     []string{"--email", "not-an-email", "--role", "owner", "--password-stdin"},
			opts:     runOpts{stdin: "short"},
			wantCode: ExitUsage,
			wantErr:  "create user: invalid request [VALIDATION_001]",
			// Rejected by the server's validation before the handler.
		},
		{
			name:     "email taken",
			args:     []string{"--email", "a@example.com", "--role", "owner", "--password-stdin"},
			opts:     runOpts{stdin: "password-1"},
			fail:     errcode.Error(errcode.Conflict, codes.AlreadyExists, "a user with this email already exists"),
			wantCode: ExitError,
			wantErr:  "create user: already exists [CONFLICT_001]: a user with this email already exists",
			want:     &authv1.CreateUserRequest{Email: "a@example.com", Password: "password-1", Role: authv1.Role_ROLE_OWNER},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.fake.reset()
			env.fake.setFail("CreateUser", tt.fail)
			r := env.run(t, tt.opts, append([]string{"user", "create"}, tt.args...)...)
			r.check(t, tt.wantCode, tt.wantOut, tt.wantErr)
			if tt.wantPrompt != nil && !slices.Equal(r.prompts, tt.wantPrompt) {
				t.Errorf("prompts %q, want %q", r.prompts, tt.wantPrompt)
			}
			checkSent(t, requests[*authv1.CreateUserRequest](env.fake), tt.want)
			for _, secret := range []string{"correct horse", "from stdin 1", "password-123", "password-1"} {
				if strings.Contains(r.stdout+r.stderr, secret) {
					t.Errorf("output shows the password %q", secret)
				}
			}
		})
	}

	t.Run("field violations", func(t *testing.T) {
		env.fake.reset()
		r := env.run(t, runOpts{stdin: "short"}, "user", "create", "--email", "not-an-email", "--role", "owner", "--password-stdin")
		for _, want := range []string{"\n  email: ", "\n  password: "} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr %q lacks the violation %q", r.stderr, want)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		env.fake.reset()
		r := env.run(t, runOpts{stdin: "password-1\n"}, "user", "create", "--email", "b@example.com", "--role", "broker", "--password-stdin", "--output", "json")
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.stdout)
		}
		if v["id"] != userA || v["email"] != "b@example.com" || v["role"] != "broker" || v["create_time"] != "2025-10-03T12:00:00Z" {
			t.Errorf("json = %v", v)
		}
	})
}

func testUsers(n int) []*authv1.User {
	var out []*authv1.User
	for i := range n {
		out = append(out, &authv1.User{
			Id:    fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
			Email: fmt.Sprintf("u%d@example.com", i), Role: authv1.Role_ROLE_BROKER,
			Disabled: i == 4,
		})
	}
	return out
}

func TestUserList(t *testing.T) {
	env := startAuth(t)
	env.fake.users = testUsers(5)

	t.Run("one page", func(t *testing.T) {
		env.fake.reset()
		r := env.run(t, runOpts{}, "user", "list", "--page-size", "2")
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "u0@example.com") || !strings.Contains(lines[1], "broker") {
			t.Errorf("table:\n%s", r.stdout)
		}
		if !strings.Contains(r.stderr, "--page-token 2") {
			t.Errorf("stderr %q does not offer the next page", r.stderr)
		}
		// The next page, from the printed token.
		env.fake.reset()
		r = env.run(t, runOpts{}, "user", "list", "--page-size", "2", "--page-token", "2")
		if !strings.Contains(r.stdout, "u2@example.com") || strings.Contains(r.stdout, "u0@example.com") {
			t.Errorf("second page:\n%s", r.stdout)
		}
	})

	t.Run("all pages", func(t *testing.T) {
		env.fake.reset()
		r := env.run(t, runOpts{}, "user", "list", "--all", "--page-size", "2", "--role", "broker", "--include-disabled", "-o", "json")
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var v struct {
			Users []userView `json:"users"`
			Next  *string    `json:"next_page_token"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Users) != 5 || v.Next != nil || !v.Users[4].Disabled || v.Users[3].Email != "u3@example.com" {
			t.Errorf("json: %+v", v)
		}
		var tokens []string
		for _, req := range requests[*authv1.ListUsersRequest](env.fake) {
			tokens = append(tokens, req.GetPageToken())
			if req.GetPageSize() != 2 || req.GetRole() != authv1.Role_ROLE_BROKER || !req.GetIncludeDisabled() {
				t.Errorf("request %v", req)
			}
		}
		if !slices.Equal(tokens, []string{"", "2", "4"}) {
			t.Errorf("page tokens %q, want the server's tokens followed", tokens)
		}
		if r.stderr != "" {
			t.Errorf("stderr: %s", r.stderr)
		}
	})

	for _, args := range [][]string{
		{"user", "list", "--page-size", "2000"},
		{"user", "list", "--page-size", "-1"},
		{"user", "list", "extra"},
		{"user", "list", "--role", "root"},
	} {
		if r := env.run(t, runOpts{}, args...); r.code != ExitUsage {
			t.Errorf("%v: exit %d (%s), want %d", args, r.code, r.stderr, ExitUsage)
		}
	}
}

func TestCollectPagesStopsOnARepeatedToken(t *testing.T) {
	calls := 0
	_, _, err := collectPages(context.Background(), "", true, func(context.Context, string) ([]int, string, error) {
		calls++
		return []int{calls}, "same", nil
	})
	if err == nil || calls != 2 {
		t.Errorf("err %v after %d calls, want an error after 2", err, calls)
	}
}

func TestUserRoleAndDisable(t *testing.T) {
	env := startAuth(t)
	tests := []struct {
		name     string
		args     []string
		fail     error
		wantCode int
		wantOut  string
		wantErr  string
		want     proto.Message
	}{
		{
			name:    "role",
			args:    []string{"user", "role", userA, "--role", "admin"},
			wantOut: "User role changed\nID: " + userA + "\nEmail: u@example.com\nRole: admin\n",
			want:    &authv1.ChangeUserRoleRequest{Id: userA, Role: authv1.Role_ROLE_ADMIN},
		},
		{
			name: "role, the old script's --new-role, to client",
			args: []string{"user", "role", userA, "--new-role", "client", "--customer-id", custA},
			want: &authv1.ChangeUserRoleRequest{Id: userA, Role: authv1.Role_ROLE_CLIENT, CustomerId: custA},
		},
		{name: "role without --role", args: []string{"user", "role", userA}, wantCode: ExitUsage, wantErr: "--role is required"},
		{name: "role without a user", args: []string{"user", "role", "--role", "admin"}, wantCode: ExitUsage, wantErr: "USER_ID"},
		{name: "role of a non-uuid", args: []string{"user", "role", "123", "--role", "admin"}, wantCode: ExitUsage, wantErr: `USER_ID "123" is not a UUID`},
		{
			name:     "role of an unknown user",
			args:     []string{"user", "role", userA, "--role", "admin"},
			fail:     errcode.Error(errcode.NotFound, codes.NotFound, "user not found"),
			wantCode: ExitError,
			wantErr:  "change role: not found [NOT_FOUND_001]: user not found",
			want:     &authv1.ChangeUserRoleRequest{Id: userA, Role: authv1.Role_ROLE_ADMIN},
		},
		{
			name:    "disable",
			args:    []string{"user", "disable", userA, "--reason", "left"},
			wantOut: "User disabled\nID: " + userA + "\nEmail: u@example.com\nRole: broker\nDisabled: 2025-10-04T08:00:00Z\n",
			want:    &authv1.DisableUserRequest{Id: userA, Reason: "left"},
		},
		{name: "disable two", args: []string{"user", "disable", userA, userA}, wantCode: ExitUsage},
		{name: "unknown subcommand", args: []string{"user", "delete", userA}, wantCode: ExitUsage, wantErr: `unknown command "delete"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.fake.reset()
			env.fake.setFail("ChangeUserRole", tt.fail)
			r := env.run(t, runOpts{}, tt.args...)
			r.check(t, tt.wantCode, tt.wantOut, tt.wantErr)
			checkSent(t, requests[proto.Message](env.fake), tt.want)
		})
	}
}

func TestAPIKeyCreate(t *testing.T) {
	env := startAuth(t)
	const secret = "hsi_dev_key_NEWSECRETNEWSECRETNEWSECRETNEWS1a2b3c"
	tests := []struct {
		name     string
		args     []string
		fail     error
		wantCode int
		wantOut  string
		wantErr  string
		want     *authv1.CreateApiKeyRequest
	}{
		{
			name: "manual's output",
			args: []string{"--user-id", userA, "--name", "ci", "--scopes", "miners:read,miners:write", "--expires-in", "90d"},
			wantOut: "API key created\nKey: " + secret + "\nKey ID: " + keyA + "\nName: ci\nUser ID: " + userA +
				"\nPermissions: miners:read,miners:write\nExpires: 2025-12-31T23:59:59Z\n" + KeyWarning + "\n",
			want: &authv1.CreateApiKeyRequest{UserId: userA, Name: "ci", Permissions: []string{"miners:read", "miners:write"}, ExpiresInDays: 90},
		},
		{
			name: "old script's --permissions and bare days, repeated scopes once",
			args: []string{"--name", "ci", "--permissions", "miners:read", "--scopes", " billing:read ,miners:read", "--expires-in", "30"},
			want: &authv1.CreateApiKeyRequest{Name: "ci", Permissions: []string{"miners:read", "billing:read"}, ExpiresInDays: 30},
		},
		{
			name: "hours that make whole days, default expiry otherwise",
			args: []string{"--name", "ci", "--scopes", "miners:read", "--expires-in", "48h"},
			want: &authv1.CreateApiKeyRequest{Name: "ci", Permissions: []string{"miners:read"}, ExpiresInDays: 2},
		},
		{
			name:    "quiet prints only the key",
			args:    []string{"--name", "ci", "--scopes", "miners:read", "-q"},
			wantOut: secret + "\n",
			wantErr: KeyWarning,
			want:    &authv1.CreateApiKeyRequest{Name: "ci", Permissions: []string{"miners:read"}},
		},
		{name: "missing --name", args: []string{"--scopes", "miners:read"}, wantCode: ExitUsage, wantErr: "--name is required"},
		{name: "missing --scopes", args: []string{"--name", "ci"}, wantCode: ExitUsage, wantErr: "--scopes is required"},
		{name: "bad scope", args: []string{"--name", "ci", "--scopes", "Miners:Read"}, wantCode: ExitUsage, wantErr: `"Miners:Read" is not a permission`},
		{name: "partial days", args: []string{"--name", "ci", "--scopes", "miners:read", "--expires-in", "36h"}, wantCode: ExitUsage, wantErr: "whole number of days"},
		{name: "too long", args: []string{"--name", "ci", "--scopes", "miners:read", "--expires-in", "4000d"}, wantCode: ExitUsage, wantErr: "between 1 and 3650"},
		{name: "bad user", args: []string{"--user-id", "123", "--name", "ci", "--scopes", "miners:read"}, wantCode: ExitUsage, wantErr: "--user-id"},
		{
			name:     "scope the owner lacks",
			args:     []string{"--name", "ci", "--scopes", "users:admin"},
			fail:     errcode.Error(errcode.AuthForbidden, codes.PermissionDenied, "the key's owner does not hold users:admin"),
			wantCode: ExitError,
			wantErr:  "create API key: permission denied [AUTH_002]: the key's owner does not hold users:admin",
			want:     &authv1.CreateApiKeyRequest{Name: "ci", Permissions: []string{"users:admin"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.fake.reset()
			env.fake.setFail("CreateApiKey", tt.fail)
			r := env.run(t, runOpts{}, append([]string{"apikey", "create"}, tt.args...)...)
			r.check(t, tt.wantCode, tt.wantOut, tt.wantErr)
			checkSent(t, requests[*authv1.CreateApiKeyRequest](env.fake), tt.want)
		})
	}

	t.Run("json", func(t *testing.T) {
		env.fake.reset()
		r := env.run(t, runOpts{}, "apikey", "create", "--name", "ci", "--scopes", "miners:read", "-o", "json")
		var v newKeyOutput
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.stdout)
		}
		if v.Key != secret || v.APIKey.ID != keyA || v.APIKey.State != "active" || !strings.Contains(r.stderr, KeyWarning) {
			t.Errorf("json %+v, stderr %q", v, r.stderr)
		}
	})
}

func TestAPIKeyListRotateRevoke(t *testing.T) {
	env := startAuth(t)
	for i := range 3 {
		env.fake.keys = append(env.fake.keys, testKey(fmt.Sprintf("00000000-0000-4000-8000-%012d", i), []string{"miners:read", "billing:read"}))
	}

	t.Run("list all", func(t *testing.T) {
		env.fake.reset()
		r := env.run(t, runOpts{}, "apikey", "list", "--all", "--page-size", "1", "--user-id", userA, "--include-inactive")
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 4 || !strings.Contains(lines[1], "miners:read,billing:read") || !strings.Contains(lines[1], "active") ||
			!strings.Contains(lines[1], "hsi_dev_key_abcdefghijkl") || strings.Contains(r.stdout, "hsi_dev_key_NEW") {
			t.Errorf("table:\n%s", r.stdout)
		}
		reqs := requests[*authv1.ListApiKeysRequest](env.fake)
		if len(reqs) != 3 || reqs[2].GetPageToken() != "2" || reqs[0].GetUserId() != userA || !reqs[0].GetIncludeInactive() {
			t.Errorf("requests %v", reqs)
		}
	})

	t.Run("list json one page", func(t *testing.T) {
		env.fake.reset()
		r := env.run(t, runOpts{}, "apikey", "list", "--page-size", "2", "-o", "json")
		var v struct {
			Keys []apiKeyView `json:"api_keys"`
			Next string       `json:"next_page_token"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Keys) != 2 || v.Next != "2" {
			t.Errorf("json %+v", v)
		}
	})

	rotate := []struct {
		name     string
		args     []string
		wantCode int
		want     *durationpb.Duration // nil: unset, the server's default
	}{
		{name: "default overlap", args: nil},
		{name: "hours", args: []string{"--overlap", "48h"}, want: durationpb.New(48 * time.Hour)},
		{name: "days", args: []string{"--overlap", "7d"}, want: durationpb.New(7 * 24 * time.Hour)},
		{name: "none", args: []string{"--overlap", "0s"}, want: durationpb.New(0)},
		{name: "too long", args: []string{"--overlap", "91d"}, wantCode: ExitUsage},
		{name: "negative", args: []string{"--overlap", "-1h"}, wantCode: ExitUsage},
		{name: "nonsense", args: []string{"--overlap", "soon"}, wantCode: ExitUsage},
	}
	for _, tt := range rotate {
		t.Run("rotate "+tt.name, func(t *testing.T) {
			env.fake.reset()
			r := env.run(t, runOpts{}, append([]string{"apikey", "rotate", keyA}, tt.args...)...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %s", r.code, tt.wantCode, r.stderr)
			}
			reqs := requests[*authv1.RotateApiKeyRequest](env.fake)
			if tt.wantCode != ExitOK {
				if len(reqs) != 0 {
					t.Errorf("request sent: %v", reqs)
				}
				return
			}
			if len(reqs) != 1 || reqs[0].GetId() != keyA || !proto.Equal(reqs[0].GetOverlap(), tt.want) || (tt.want == nil) != (reqs[0].Overlap == nil) {
				t.Errorf("requests %v, want overlap %v", reqs, tt.want)
			}
			for _, want := range []string{
				"API key rotated\nKey: hsi_dev_key_ROTATEDROTATEDROTATEDROTATEDROTA9z8y7x\nKey ID: 1c7d8b9f-2a3e-4f4d-8b9c-8d7e6f5a4b3c\n",
				"Previous key: " + keyA + " (rotated, valid until 2025-10-10T12:00:00Z)\n" + KeyWarning + "\n",
			} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout:\n%s\nlacks:\n%s", r.stdout, want)
				}
			}
		})
	}

	t.Run("revoke", func(t *testing.T) {
		env.fake.reset()
		r := env.run(t, runOpts{}, "apikey", "revoke", keyA)
		want := "API key revoked\nKey ID: " + keyA + "\nName: ci\nUser ID: " + userA + "\nRevoked: 2025-10-05T09:30:00Z\n"
		if r.code != ExitOK || r.stdout != want {
			t.Errorf("exit %d, stdout:\n%s\nwant:\n%s", r.code, r.stdout, want)
		}
		if reqs := requests[*authv1.RevokeApiKeyRequest](env.fake); len(reqs) != 1 || reqs[0].GetId() != keyA {
			t.Errorf("requests %v", reqs)
		}
		if r := env.run(t, runOpts{}, "apikey", "revoke"); r.code != ExitUsage {
			t.Errorf("revoke without KEY_ID: exit %d", r.code)
		}
	})
}

// manualLine is the manual's example audit event (§6.5), byte for byte as
// hictl must print it.
const manualLine = `{"timestamp":"2025-10-03T12:00:00.000Z","event_id":"a1b2c3d4e5f6g7h8","level":"INFO","category":"authentication","action":"login","user_id":"123","user_email":"user@example.com","user_role":"admin","ip_address":"192.168.1.100","status":"success","details":{"login_method":"password","two_factor":true}}`

func eventIDs(out string) []string {
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var v struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			return append(ids, "not JSON: "+line)
		}
		ids = append(ids, v.EventID)
	}
	return ids
}

func TestAuditTail(t *testing.T) {
	env := startAuth(t)
	env.fake.maxPage = 100 // so that -n 150 needs two pages
	env.fake.addEvents(1, func(e *authv1.AuditEvent) {
		e.EventId = "a1b2c3d4e5f6g7h8"
		e.Timestamp = timestamppb.New(time.Date(2025, 10, 3, 12, 0, 0, 0, time.UTC))
	})
	env.fake.addEvents(248, nil)
	env.fake.addEvents(1, func(e *authv1.AuditEvent) {
		e.Action, e.Level, e.Status, e.UserId = "login_failed", authv1.AuditLevel_AUDIT_LEVEL_SECURITY, "failure", userA
		e.Details = nil
	})

	t.Run("manual format", func(t *testing.T) {
		env.fake.reset()
		r := env.run(t, runOpts{}, "audit", "tail", "-n", "250")
		if r.code != ExitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) != 250 || lines[0] != manualLine {
			t.Fatalf("%d lines, first:\n%s\nwant:\n%s", len(lines), lines[0], manualLine)
		}
		if !strings.Contains(lines[249], `"action":"login_failed"`) || !strings.Contains(lines[249], `"level":"SECURITY"`) || !strings.HasSuffix(lines[249], `"details":{}}`) {
			t.Errorf("last line %s", lines[249])
		}
	})

	t.Run("last n, oldest first, across pages", func(t *testing.T) {
		env.fake.reset()
		r := env.run(t, runOpts{}, "audit", "tail", "-n", "150")
		ids := eventIDs(r.stdout)
		if len(ids) != 150 || ids[0] != "evt-0101" || ids[149] != "evt-0250" {
			t.Fatalf("%d events, first %v last %v", len(ids), ids[:1], ids[len(ids)-1:])
		}
		reqs := requests[*authv1.ListAuditEventsRequest](env.fake)
		if len(reqs) != 2 || reqs[1].GetPageToken() != "100" {
			t.Errorf("requests %v", reqs)
		}
	})

	t.Run("default 100", func(t *testing.T) {
		env.fake.reset()
		r := env.run(t, runOpts{}, "audit", "tail")
		if ids := eventIDs(r.stdout); len(ids) != 100 || ids[0] != "evt-0151" {
			t.Errorf("%d events from %v", len(ids), ids[:1])
		}
	})

	t.Run("filters", func(t *testing.T) {
		env.fake.reset()
		before := time.Now()
		r := env.run(t, runOpts{}, "audit", "tail", "--user-id", userA, "--category", "authentication", "--action", "login_failed", "--level", "security", "--since", "24h")
		if ids := eventIDs(r.stdout); r.code != ExitOK || len(ids) != 1 || ids[0] != "evt-0250" {
			t.Fatalf("exit %d, events %v: %s", r.code, ids, r.stderr)
		}
		reqs := requests[*authv1.ListAuditEventsRequest](env.fake)
		if len(reqs) != 1 {
			t.Fatalf("requests %v", reqs)
		}
		q := reqs[0]
		from := q.GetFrom().AsTime()
		if q.GetUserId() != userA || q.GetCategory() != "authentication" || q.GetAction() != "login_failed" ||
			q.GetLevel() != authv1.AuditLevel_AUDIT_LEVEL_SECURITY || q.GetPageSize() != 100 ||
			from.Before(before.Add(-24*time.Hour-time.Minute)) || from.After(time.Now().Add(-24*time.Hour)) {
			t.Errorf("request %v", q)
		}
		env.fake.reset()
		env.run(t, runOpts{}, "audit", "tail", "--since", "2025-10-03T00:00:00Z")
		if reqs := requests[*authv1.ListAuditEventsRequest](env.fake); len(reqs) == 0 || !reqs[0].GetFrom().AsTime().Equal(time.Date(2025, 10, 3, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("--since time: %v", reqs)
		}
	})

	for _, args := range [][]string{
		{"audit", "tail", "--since", "yesterday"},
		{"audit", "tail", "--level", "loud"},
		{"audit", "tail", "-n", "0"},
		{"audit", "tail", "-n", "-5"},
		{"audit", "tail", "--user-id", "bob"},
	} {
		if r := env.run(t, runOpts{}, args...); r.code != ExitUsage {
			t.Errorf("%v: exit %d (%s), want %d", args, r.code, r.stderr, ExitUsage)
		}
	}
}

func TestAuditTailFollow(t *testing.T) {
	env := startAuth(t)
	env.fake.addEvents(3, nil)
	// Events of another category must not be printed.
	env.fake.addEvents(1, func(e *authv1.AuditEvent) { e.Category = "api_key" })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout syncBuffer
	done := make(chan result, 1)
	go func() {
		done <- env.runCtx(ctx, t, runOpts{}, &stdout, append([]string{"audit", "tail", "-f", "-n", "2", "--category", "authentication", "--poll-interval", "10ms"}, env.flags()...)...)
	}()
	lines := func() int { return len(eventIDs(stdout.String())) }
	eventually(t, "the last 2 events", func() bool { return lines() == 2 })

	env.fake.addEvents(2, nil)
	env.fake.addEvents(1, func(e *authv1.AuditEvent) { e.Category = "api_key" })
	eventually(t, "2 new events", func() bool { return lines() == 4 })

	// A restart of the auth service does not end --follow. (gRPC retries a
	// list 3 times on UNAVAILABLE, so wait for more calls than one poll makes.)
	polls := len(requests[*authv1.ListAuditEventsRequest](env.fake))
	env.fake.setFail("ListAuditEvents", status.Error(codes.Unavailable, "restarting"))
	eventually(t, "failed polls", func() bool { return len(requests[*authv1.ListAuditEventsRequest](env.fake)) >= polls+4 })
	env.fake.setFail("ListAuditEvents", nil)
	env.fake.addEvents(1, nil)
	eventually(t, "1 more event", func() bool { return lines() == 5 })

	cancel()
	r := <-done
	if r.code != ExitOK {
		t.Errorf("exit %d after Ctrl-C, want 0: %s", r.code, r.stderr)
	}
	if got, want := eventIDs(stdout.String()), []string{"evt-0002", "evt-0003", "evt-0005", "evt-0006", "evt-0008"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if !strings.Contains(r.stderr, "retrying") {
		t.Errorf("stderr %q does not mention the failed poll", r.stderr)
	}
}

func TestAuditTailFollowOnlyNew(t *testing.T) {
	env := startAuth(t)
	env.fake.addEvents(5, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout syncBuffer
	done := make(chan result, 1)
	go func() {
		done <- env.runCtx(ctx, t, runOpts{}, &stdout, append([]string{"audit", "tail", "--follow", "-n", "0", "--poll-interval", "10ms"}, env.flags()...)...)
	}()
	// Wait for a poll after the baseline, then add one event.
	eventually(t, "two polls", func() bool { return len(requests[*authv1.ListAuditEventsRequest](env.fake)) >= 2 })
	env.fake.addEvents(1, nil)
	eventually(t, "the new event", func() bool { return strings.Contains(stdout.String(), "evt-0006") })
	cancel()
	<-done
	if got := eventIDs(stdout.String()); !slices.Equal(got, []string{"evt-0006"}) {
		t.Errorf("events %v, want only the new one", got)
	}
}

func TestAuditVerify(t *testing.T) {
	env := startAuth(t)
	tests := []struct {
		name     string
		args     []string
		resp     *authv1.VerifyAuditChainResponse
		wantCode int
		wantOut  string
		wantErr  string
		want     *authv1.VerifyAuditChainRequest
	}{
		{
			name:    "intact",
			resp:    &authv1.VerifyAuditChainResponse{Valid: true, CheckedCount: 42, HeadHash: "ab12"},
			wantOut: "OK: audit chain intact, 42 entries checked (head ab12)\n",
			want:    &authv1.VerifyAuditChainRequest{},
		},
		{
			name:     "broken",
			args:     []string{"--from-seq", "10", "--to-seq", "20"},
			resp:     &authv1.VerifyAuditChainResponse{CheckedCount: 8, FirstBrokenSequence: 17, FirstBrokenEventId: "evt-0017", Reason: "hash mismatch"},
			wantCode: ExitError,
			wantOut:  "BROKEN: audit entry 17 (event evt-0017): hash mismatch\nChecked: 8 entries\n",
			wantErr:  "hictl: audit chain broken at entry 17 (event evt-0017): hash mismatch",
			want:     &authv1.VerifyAuditChainRequest{FromSequence: 10, ToSequence: 20},
		},
		{
			name:     "broken json",
			args:     []string{"-o", "json"},
			resp:     &authv1.VerifyAuditChainResponse{CheckedCount: 8, FirstBrokenSequence: 17, FirstBrokenEventId: "evt-0017", Reason: "prev_hash does not match"},
			wantCode: ExitError,
			wantOut:  "{\n  \"valid\": false,\n  \"checked_count\": 8,\n  \"first_broken_sequence\": 17,\n  \"first_broken_event_id\": \"evt-0017\",\n  \"reason\": \"prev_hash does not match\"\n}\n",
			want:     &authv1.VerifyAuditChainRequest{},
		},
		{name: "backwards range", args: []string{"--from-seq", "20", "--to-seq", "10"}, wantCode: ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.fake.reset()
			env.fake.verify = tt.resp
			r := env.run(t, runOpts{}, append([]string{"audit", "verify"}, tt.args...)...)
			r.check(t, tt.wantCode, tt.wantOut, tt.wantErr)
			checkSent(t, requests[*authv1.VerifyAuditChainRequest](env.fake), tt.want)
		})
	}
}

func TestAuthErrorMapping(t *testing.T) {
	env := startAuth(t)
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantErr  []string
	}{
		{
			name:     "permission denied",
			err:      errcode.Error(errcode.AuthForbidden, codes.PermissionDenied, "missing permission users:admin"),
			wantCode: ExitError,
			wantErr:  []string{"hictl: list users: permission denied [AUTH_002]: missing permission users:admin", "operator/dev"},
		},
		{
			name:     "not logged in",
			err:      errcode.Error(errcode.AuthRequired, codes.Unauthenticated, "no credential"),
			wantCode: ExitError,
			wantErr:  []string{"not authenticated [AUTH_001]: no credential"},
		},
		{
			name:     "expired",
			err:      errcode.Error(errcode.AuthExpired, codes.Unauthenticated, "token expired"),
			wantCode: ExitError,
			wantErr:  []string{"credential expired [AUTH_003]: token expired"},
		},
		{
			name: "invalid argument with fields",
			err: errcode.Error(errcode.Validation, codes.InvalidArgument, "invalid request",
				errcode.FieldViolation{Field: "page_token", Description: "malformed"},
				errcode.FieldViolation{Field: "query", Description: "too long"}),
			wantCode: ExitUsage,
			wantErr:  []string{"list users: invalid request [VALIDATION_001]\n  page_token: malformed\n  query: too long\n"},
		},
		{
			name:     "rate limited",
			err:      errcode.Error(errcode.RateLimited, codes.ResourceExhausted, "slow down"),
			wantCode: ExitError,
			wantErr:  []string{"rate limited, try again later [API_001]: slow down"},
		},
		{
			name:     "not built yet, no ErrorInfo",
			err:      status.Error(codes.Unimplemented, "method ListUsers not implemented"),
			wantCode: ExitError,
			wantErr:  []string{"does not implement this yet [UNIMPLEMENTED_001]"},
		},
		{
			name:     "internal error text hidden by the server",
			err:      status.Error(codes.Internal, "pq: secret detail"),
			wantCode: ExitError,
			wantErr:  []string{"auth service error [INTERNAL_001]: internal error"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.fake.reset()
			env.fake.setFail("ListUsers", tt.err)
			r := env.run(t, runOpts{}, "user", "list")
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %s", r.code, tt.wantCode, r.stderr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr %q does not contain %q", r.stderr, want)
				}
			}
			if strings.Contains(r.stderr, "secret detail") {
				t.Errorf("stderr shows internal error text: %s", r.stderr)
			}
		})
	}

	t.Run("timeout", func(t *testing.T) {
		env.fake.reset()
		env.fake.mu.Lock()
		env.fake.block["ListUsers"] = true
		env.fake.mu.Unlock()
		r := env.run(t, runOpts{}, "user", "list", "--timeout", "300ms")
		if r.code != ExitError || !strings.Contains(r.stderr, "within 300ms [TIMEOUT_001]") {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})

	op := env.files.Leaves[mtls.Operator("dev")]
	t.Run("nothing listening", func(t *testing.T) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := lis.Addr().String()
		lis.Close()
		r := env.runCtx(context.Background(), t, runOpts{}, &syncBuffer{}, "user", "disable", userA,
			"--addr", addr, "--cacert", env.files.CACert, "--cert", op.Cert, "--key", op.Key)
		if r.code != ExitError || !strings.Contains(r.stderr, "disable user: auth service unavailable at "+addr) {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})

	t.Run("a server that is not svc/auth", func(t *testing.T) {
		addr, fake := serveAuth(t, env.files, mtls.Service("mining"))
		r := env.runCtx(context.Background(), t, runOpts{}, &syncBuffer{}, "user", "list",
			"--addr", addr, "--cacert", env.files.CACert, "--cert", op.Cert, "--key", op.Key)
		if r.code != ExitError || !strings.Contains(r.stderr, "unavailable") || len(requests[proto.Message](fake)) != 0 {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})

	t.Run("a caller the allow-list refuses", func(t *testing.T) {
		// svc/mining may not call ListUsers: the server's access rules deny it.
		mining := env.files.Leaves[mtls.Service("mining")]
		env.fake.reset()
		r := env.runCtx(context.Background(), t, runOpts{}, &syncBuffer{}, "user", "list",
			"--addr", env.addr, "--cacert", env.files.CACert, "--cert", mining.Cert, "--key", mining.Key)
		if r.code != ExitError || !strings.Contains(r.stderr, "permission denied [AUTH_002]") || !strings.Contains(r.stderr, "svc/mining") {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})

	t.Run("missing certificate", func(t *testing.T) {
		r := env.runCtx(context.Background(), t, runOpts{}, &syncBuffer{}, "user", "list",
			"--addr", env.addr, "--cert", filepath.Join(t.TempDir(), "none.crt"))
		if r.code != ExitError || !strings.Contains(r.stderr, "operator certificate") {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})
}

// TestAuthDefaults: without flags, hictl finds the certificates in .data/certs
// at the repository root (the directory with go.work) and the service at
// AUTH_GRPC_ADDR, like `hictl health`.
func TestAuthDefaults(t *testing.T) {
	env := startAuth(t)
	sub := filepath.Join(env.repo, "services", "auth")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	env.fake.users = testUsers(1)
	r := env.runCtx(context.Background(), t, runOpts{dir: sub, env: []string{"AUTH_GRPC_ADDR=" + env.addr}}, &syncBuffer{}, "user", "list")
	if r.code != ExitOK || !strings.Contains(r.stdout, "u0@example.com") {
		t.Errorf("exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	// --addr wins over the environment.
	r = env.runCtx(context.Background(), t, runOpts{dir: sub, env: []string{"AUTH_GRPC_ADDR=127.0.0.1:1"}}, &syncBuffer{}, "user", "list", "--addr", env.addr)
	if r.code != ExitOK {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
}

func TestParsers(t *testing.T) {
	days := []struct {
		in   string
		want int32
		ok   bool
	}{
		{"90d", 90, true}, {"90", 90, true}, {"48h", 2, true}, {"3650d", 3650, true},
		{"0", 0, false}, {"36h", 0, false}, {"3651", 0, false}, {"-1d", 0, false}, {"x", 0, false},
	}
	for _, tt := range days {
		got, err := parseDays(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDays(%q) = %d, %v", tt.in, got, err)
		}
	}
	durations := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"168h", 168 * time.Hour, true}, {"7d", 7 * 24 * time.Hour, true}, {"0", 0, true}, {"30m", 30 * time.Minute, true},
		{"d", 0, false}, {"1.5d", 0, false}, {"week", 0, false},
	}
	for _, tt := range durations {
		got, err := parseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDuration(%q) = %s, %v", tt.in, got, err)
		}
	}
	for in, want := range map[string]bool{
		"miners:read": true, "apikeys:manage": true, "collector:write": true, "a_b-c:d": true,
		"self": false, "Miners:read": false, "miners:": false, ":read": false, "miners:read:x": false, "1m:read": false,
	} {
		if validScope(in) != want {
			t.Errorf("validScope(%q) = %v", in, !want)
		}
	}
	for in, want := range map[string]authv1.Role{"owner": authv1.Role_ROLE_OWNER, "Admin": authv1.Role_ROLE_ADMIN, "ROLE_BROKER": authv1.Role_ROLE_BROKER, " client ": authv1.Role_ROLE_CLIENT} {
		if got, err := parseRole(in); err != nil || got != want {
			t.Errorf("parseRole(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "unspecified", "ROLE_UNSPECIFIED", "root"} {
		if _, err := parseRole(in); err == nil {
			t.Errorf("parseRole(%q) accepted", in)
		}
	}
}

func TestReadPasswordLine(t *testing.T) {
	for in, want := range map[string]string{"pw\n": "pw", "pw\r\n": "pw", "pw": "pw", " spaced pw \nnext": " spaced pw "} {
		if got, err := readPasswordLine(strings.NewReader(in)); err != nil || got != want {
			t.Errorf("readPasswordLine(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "\n"} {
		if _, err := readPasswordLine(strings.NewReader(in)); err == nil {
			t.Errorf("readPasswordLine(%q) accepted", in)
		}
	}
}
