package devmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// Owner bootstrap variables.
const (
	OwnerEmailVar    = "HASHINSIGHT_BOOTSTRAP_OWNER_EMAIL"
	OwnerPasswordVar = "HASHINSIGHT_BOOTSTRAP_OWNER_PASSWORD"
	// DefaultOwnerEmail is the generated owner's login.
	DefaultOwnerEmail = "owner@hashinsight.local"
)

// Errors an OwnerCreator reports.
var (
	// ErrUsersNotStored means the auth service does not store users yet (CreateUser is UNIMPLEMENTED).
	ErrUsersNotStored = errors.New("auth does not store users yet")
	// ErrOwnerExists means a user with that email already exists.
	ErrOwnerExists = errors.New("a user with that email already exists")
)

// OwnerCreator creates the bootstrap owner in the auth service.
type OwnerCreator interface {
	CreateOwner(ctx context.Context, email, password string) error
}

// AuthOwnerCreator calls auth.v1.AuthService/CreateUser with role owner over
// a connection authenticated by the operator certificate.
type AuthOwnerCreator struct {
	Conn grpc.ClientConnInterface
}

// CreateOwner implements OwnerCreator.
func (a AuthOwnerCreator) CreateOwner(ctx context.Context, email, password string) error {
	_, err := authv1.NewAuthServiceClient(a.Conn).CreateUser(ctx, &authv1.CreateUserRequest{
		Email:       email,
		Password:    password,
		DisplayName: "Owner",
		Role:        authv1.Role_ROLE_OWNER,
	})
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.Unimplemented:
		return ErrUsersNotStored
	case codes.AlreadyExists:
		return ErrOwnerExists
	default:
		return fmt.Errorf("auth CreateUser: %w", err)
	}
}

// Owner is the bootstrap owner's login.
type Owner struct {
	Email    string
	Password string `secret:"true"`
	// FromEnv is true when the login came from the HASHINSIGHT_BOOTSTRAP_OWNER_* variables.
	FromEnv bool
}

// ResolveOwner returns the owner from HASHINSIGHT_BOOTSTRAP_OWNER_EMAIL and
// _PASSWORD when both are set; otherwise the generated owner stored in path
// (owner.txt), generating it (owner@hashinsight.local and a random password)
// and writing the file (0600) on first use.
func ResolveOwner(lookupEnv func(string) (string, bool), path string, rnd io.Reader) (Owner, error) {
	email, _ := lookupEnv(OwnerEmailVar)
	pw, _ := lookupEnv(OwnerPasswordVar)
	switch {
	case email != "" && pw != "":
		return Owner{Email: email, Password: pw, FromEnv: true}, nil
	case email != "" || pw != "":
		return Owner{}, fmt.Errorf("set both %s and %s, or neither", OwnerEmailVar, OwnerPasswordVar)
	}
	b, err := os.ReadFile(path)
	if err == nil {
		vals, err := parseEnvFile(b)
		if err != nil {
			return Owner{}, fmt.Errorf("owner file %s: %w", path, err)
		}
		if vals["email"] != "" && vals["password"] != "" {
			return Owner{Email: vals["email"], Password: vals["password"]}, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return Owner{}, fmt.Errorf("owner file: %w", err)
	}
	pw, err = randomToken(rnd, 18)
	if err != nil {
		return Owner{}, fmt.Errorf("generate owner password: %w", err)
	}
	o := Owner{Email: DefaultOwnerEmail, Password: pw}
	content := fmt.Sprintf("# Bootstrap owner of the local mesh (hictl dev up). Local development only.\nemail=%s\npassword=%s\n", o.Email, o.Password)
	if err := writeFileAtomic(path, []byte(content), 0o600); err != nil {
		return Owner{}, fmt.Errorf("write owner file: %w", err)
	}
	return o, nil
}

// OwnerResult says what BootstrapOwner did.
type OwnerResult int

// Outcomes of BootstrapOwner.
const (
	// OwnerCreated: auth stored the owner now.
	OwnerCreated OwnerResult = iota + 1
	// OwnerAlreadyCreated: an earlier run (or someone) created it.
	OwnerAlreadyCreated
	// OwnerSkipped: auth does not store users yet.
	OwnerSkipped
)

// BootstrapOwner creates the owner once. markerPath records that auth has
// stored it (for that email), so later runs do not ask again.
func BootstrapOwner(ctx context.Context, c OwnerCreator, o Owner, markerPath string) (OwnerResult, error) {
	if b, err := os.ReadFile(markerPath); err == nil && strings.TrimSpace(firstLine(string(b))) == o.Email {
		return OwnerAlreadyCreated, nil
	}
	err := c.CreateOwner(ctx, o.Email, o.Password)
	result := OwnerCreated
	switch {
	case errors.Is(err, ErrUsersNotStored):
		return OwnerSkipped, nil
	case errors.Is(err, ErrOwnerExists):
		result = OwnerAlreadyCreated
	case err != nil:
		return 0, err
	}
	marker := o.Email + "\ncreated or found by hictl dev up at " + time.Now().UTC().Format(time.RFC3339) + "\n"
	if err := writeFileAtomic(markerPath, []byte(marker), 0o600); err != nil {
		return 0, fmt.Errorf("write owner marker: %w", err)
	}
	return result, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
