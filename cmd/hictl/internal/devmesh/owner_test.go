package devmesh

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

func TestResolveOwner(t *testing.T) {
	tests := []struct {
		name      string
		env       []string
		ownerFile string
		want      Owner
		wantErr   bool
		generated bool
	}{
		{
			name: "from the environment",
			env:  []string{OwnerEmailVar + "=ops@example.com", OwnerPasswordVar + "=correct horse battery"},
			want: Owner{Email: "ops@example.com", Password: "correct horse battery", FromEnv: true},
		},
		{
			name:    "only one of the two variables",
			env:     []string{OwnerEmailVar + "=ops@example.com"},
			wantErr: true,
		},
		{
			name:      "reused from owner.txt",
			ownerFile: "# c\nemail=owner@hashinsight.local\npassword=abc123abc123\n",
			want:      Owner{Email: "owner@hashinsight.local", Password: "abc123abc123"},
		},
		{
			name:      "generated on first use",
			generated: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "owner.txt")
			if tt.ownerFile != "" {
				if err := os.WriteFile(path, []byte(tt.ownerFile), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ResolveOwner(lookupIn(tt.env), path, rand.Reader)
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.generated {
				if got != tt.want {
					t.Errorf("owner = %+v, want %+v", got, tt.want)
				}
				if tt.want.FromEnv {
					if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
						t.Error("an owner from the environment was written to owner.txt")
					}
				}
				return
			}
			if got.Email != DefaultOwnerEmail || len(got.Password) < 20 || got.FromEnv {
				t.Errorf("generated owner = %q / %d-char password", got.Email, len(got.Password))
			}
			assertMode(t, path, 0o600)
			again, err := ResolveOwner(lookupIn(nil), path, failingReader{})
			if err != nil || again != got {
				t.Errorf("second resolve = %+v, %v; want the stored owner", again, err)
			}
		})
	}
}

type fakeCreator struct {
	err   error
	calls int
}

func (f *fakeCreator) CreateOwner(context.Context, string, string) error {
	f.calls++
	return f.err
}

func TestBootstrapOwner(t *testing.T) {
	owner := Owner{Email: "owner@hashinsight.local", Password: "pw-pw-pw-pw"}
	tests := []struct {
		name       string
		err        error
		want       OwnerResult
		wantErr    bool
		wantMarker bool
	}{
		{name: "created", want: OwnerCreated, wantMarker: true},
		{name: "already there", err: ErrOwnerExists, want: OwnerAlreadyCreated, wantMarker: true},
		{name: "auth does not store users yet", err: ErrUsersNotStored, want: OwnerSkipped},
		{name: "refused", err: errors.New("permission denied"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "owner.created")
			c := &fakeCreator{err: tt.err}
			got, err := BootstrapOwner(context.Background(), c, owner, marker)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("result = %v, want %v", got, tt.want)
			}
			_, statErr := os.Stat(marker)
			if (statErr == nil) != tt.wantMarker {
				t.Fatalf("marker exists = %v, want %v", statErr == nil, tt.wantMarker)
			}
			if !tt.wantMarker {
				return
			}
			// Created once: the next run does not ask auth again.
			again, err := BootstrapOwner(context.Background(), c, owner, marker)
			if err != nil || again != OwnerAlreadyCreated || c.calls != 1 {
				t.Errorf("second run = %v, %v after %d calls; want OwnerAlreadyCreated without a call", again, err, c.calls)
			}
			// A different owner email is created even though the marker exists.
			other := owner
			other.Email = "someone@example.com"
			if _, err := BootstrapOwner(context.Background(), c, other, marker); err != nil || c.calls != 2 {
				t.Errorf("other owner: %v after %d calls; want a second call", err, c.calls)
			}
		})
	}
}

// fakeConn answers every unary call with err, recording the request.
type fakeConn struct {
	grpc.ClientConnInterface
	err    error
	method string
	req    any
}

func (f *fakeConn) Invoke(_ context.Context, method string, args, _ any, _ ...grpc.CallOption) error {
	f.method, f.req = method, args
	return f.err
}

func TestAuthOwnerCreator(t *testing.T) {
	tests := []struct {
		code codes.Code
		want error
	}{
		{codes.OK, nil},
		{codes.Unimplemented, ErrUsersNotStored},
		{codes.AlreadyExists, ErrOwnerExists},
		{codes.PermissionDenied, nil},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			conn := &fakeConn{}
			if tt.code != codes.OK {
				conn.err = status.Error(tt.code, "x")
			}
			err := AuthOwnerCreator{Conn: conn}.CreateOwner(context.Background(), "o@example.com", "password1")
			switch {
			case tt.code == codes.OK && err != nil:
				t.Fatalf("err = %v", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("err = %v, want %v", err, tt.want)
			case tt.code == codes.PermissionDenied && (err == nil || status.Code(errors.Unwrap(err)) != codes.PermissionDenied):
				t.Fatalf("err = %v, want the PERMISSION_DENIED status wrapped", err)
			}
			req, ok := conn.req.(*authv1.CreateUserRequest)
			if !ok || conn.method != authv1.AuthService_CreateUser_FullMethodName {
				t.Fatalf("called %s with %T", conn.method, conn.req)
			}
			if req.GetEmail() != "o@example.com" || req.GetPassword() != "password1" || req.GetRole() != authv1.Role_ROLE_OWNER {
				t.Errorf("request = %v", req)
			}
			if strings.Contains(errString(err), "password1") {
				t.Error("the password leaked into the error")
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
