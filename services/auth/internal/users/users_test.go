package users

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/services/auth/internal/audit"
	"github.com/hashinsight/platform/services/auth/internal/password"
)

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Alice@Example.COM", "alice@example.com", true},
		{"  bob@example.com ", "bob@example.com", true},
		{"", "", false},
		{"no-at-sign", "", false},
		{"Alice <alice@example.com>", "", false},
		{"a@", "", false},
		{"@example.com", "", false},
		{"a@example.com.", "", false},
		{strings.Repeat("a", 250) + "@x.io", "", false},
	}
	for _, tc := range tests {
		got, err := NormalizeEmail(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		var fe *FieldError
		if err != nil && (!errors.As(err, &fe) || fe.Field != "email" || !errors.Is(err, ErrInvalid)) {
			t.Errorf("NormalizeEmail(%q) error %v does not name the email field", tc.in, err)
		}
	}
}

func TestValidateID(t *testing.T) {
	for id, ok := range map[string]bool{
		uuid.NewString(): true, "": false, "x": false,
		"{" + uuid.NewString()[:34] + "}": false, "urn:uuid:" + uuid.NewString(): false,
	} {
		if err := ValidateID("id", id); (err == nil) != ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}

// memStore is an in-memory Store.
type memStore struct {
	mu    sync.Mutex
	users []User
}

func (s *memStore) Create(_ context.Context, nu NewUser) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.insert(nu)
}

func (s *memStore) insert(nu NewUser) (User, error) {
	for _, u := range s.users {
		if u.Email == nu.Email {
			return User{}, ErrEmailTaken
		}
	}
	now := time.Now()
	u := User{ID: uuid.NewString(), Email: nu.Email, DisplayName: nu.DisplayName, PasswordHash: nu.PasswordHash,
		Role: nu.Role, CustomerID: nu.CustomerID, CustomerIDs: nu.CustomerIDs, CreatedAt: now, UpdatedAt: now}
	s.users = append(s.users, u)
	return u, nil
}

func (s *memStore) CreateFirstOwner(_ context.Context, nu NewUser) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Email == nu.Email {
			return User{}, ErrEmailTaken
		}
	}
	if s.activeOwners() > 0 {
		return User{}, ErrBootstrapClosed
	}
	return s.insert(nu)
}

func (s *memStore) activeOwners() int {
	n := 0
	for _, u := range s.users {
		if u.Role == authn.RoleOwner && !u.Disabled() {
			n++
		}
	}
	return n
}

func (s *memStore) Get(_ context.Context, id string) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.ID == id {
			return u, nil
		}
	}
	return User{}, ErrNotFound
}

func (s *memStore) GetByEmail(_ context.Context, email string) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Email == email {
			return u, nil
		}
	}
	return User{}, ErrNotFound
}

func (s *memStore) List(_ context.Context, q Query) ([]User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []User
	for _, u := range s.users {
		if (q.ID == "" || u.ID == q.ID) && (q.Role == "" || u.Role == q.Role) && (q.IncludeDisabled || !u.Disabled()) {
			out = append(out, u)
		}
	}
	return out, nil
}

func (s *memStore) Update(_ context.Context, id string, fn func(*User, int) (bool, error)) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.users {
		if s.users[i].ID == id {
			u := s.users[i]
			changed, err := fn(&u, s.activeOwners())
			if err != nil {
				return User{}, err
			}
			if changed {
				s.users[i] = u
			}
			return u, nil
		}
	}
	return User{}, ErrNotFound
}

func (s *memStore) RecordLogin(context.Context, string, time.Time) error { return nil }

// recorder is an in-memory Auditor.
type recorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (r *recorder) Record(_ context.Context, e audit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) actions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Action+"/"+e.Status)
	}
	return out
}

// cheap are argon2id parameters fast enough for unit tests of the rules.
var cheap = password.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newService(t *testing.T) (*Service, *memStore, *recorder) {
	t.Helper()
	h, err := password.NewHasher(cheap, password.NewInline(2))
	if err != nil {
		t.Fatal(err)
	}
	store, rec := &memStore{}, &recorder{}
	return NewService(Config{Store: store, Hasher: h, Audit: rec}), store, rec
}

func userPrincipal(u User) *authn.Principal {
	all, cust := u.Scope()
	return &authn.Principal{Kind: authn.KindUser, Subject: u.ID, Email: u.Email, Role: u.Role,
		Permissions: u.Permissions(), AllCustomers: all, CustomerIDs: cust}
}

var operator = &authn.Principal{Kind: authn.KindOperator, Subject: "operator/alice", Permissions: authn.AllPermissions(), AllCustomers: true}

const pw = "correct horse battery"

func TestCreateRules(t *testing.T) {
	s, _, rec := newService(t)
	ctx := t.Context()
	owner, err := s.Create(ctx, operator, CreateInput{Email: "Owner@Example.com", Password: pw, Role: authn.RoleOwner})
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if owner.Email != "owner@example.com" || !strings.HasPrefix(owner.PasswordHash, "$argon2id$") {
		t.Fatalf("owner = %+v", owner)
	}
	admin, err := s.Create(ctx, userPrincipal(owner), CreateInput{Email: "admin@example.com", Password: pw, Role: authn.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	broker, err := s.Create(ctx, userPrincipal(admin), CreateInput{Email: "broker@example.com", Password: pw, Role: authn.RoleBroker})
	if err != nil {
		t.Fatal(err)
	}
	customer := uuid.NewString()

	tests := []struct {
		name  string
		actor *authn.Principal
		in    CreateInput
		want  error
	}{
		{"operator after bootstrap", operator, CreateInput{Email: "o2@example.com", Password: pw, Role: authn.RoleOwner}, ErrBootstrapClosed},
		{"operator re-creates the owner", operator, CreateInput{Email: "owner@example.com", Password: pw, Role: authn.RoleOwner}, ErrEmailTaken},
		{"operator creates an admin", operator, CreateInput{Email: "a2@example.com", Password: pw, Role: authn.RoleAdmin}, nil},
		{"admin creates an owner", userPrincipal(admin), CreateInput{Email: "o3@example.com", Password: pw, Role: authn.RoleOwner}, ErrOwnerRequired},
		{"owner creates an owner", userPrincipal(owner), CreateInput{Email: "o4@example.com", Password: pw, Role: authn.RoleOwner}, nil},
		{"broker creates anyone", userPrincipal(broker), CreateInput{Email: "b2@example.com", Password: pw, Role: authn.RoleClient, CustomerID: customer}, ErrRoleNotAssignable},
		{"client without customer", userPrincipal(owner), CreateInput{Email: "c@example.com", Password: pw, Role: authn.RoleClient}, ErrInvalid},
		{"short password", userPrincipal(owner), CreateInput{Email: "c@example.com", Password: "short pass", Role: authn.RoleAdmin}, ErrInvalid},
		{"unknown role", userPrincipal(owner), CreateInput{Email: "c@example.com", Password: pw, Role: "root"}, ErrInvalid},
		{"email taken, other case", userPrincipal(owner), CreateInput{Email: "ADMIN@example.com", Password: pw, Role: authn.RoleAdmin}, ErrEmailTaken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Create(ctx, tc.actor, tc.in)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("Create = %v, want %v", err, tc.want)
			}
		})
	}
	if got := rec.actions(); !slices.Contains(got, "user_create/success") || !slices.Contains(got, "user_create/failure") {
		t.Errorf("audited %v", got)
	}
}

func TestReadsWithoutUsersAdminSeeOnlyThemselves(t *testing.T) {
	s, _, _ := newService(t)
	ctx := t.Context()
	owner, _ := s.Create(ctx, operator, CreateInput{Email: "owner@example.com", Password: pw, Role: authn.RoleOwner})
	client, err := s.Create(ctx, operator, CreateInput{Email: "c@example.com", Password: pw, Role: authn.RoleClient, CustomerID: uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	cp := userPrincipal(client)
	if _, err := s.Get(ctx, cp, owner.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("client reads the owner: %v, want ErrNotFound", err)
	}
	if u, err := s.Get(ctx, cp, client.ID); err != nil || u.ID != client.ID {
		t.Fatalf("client reads itself: %v", err)
	}
	list, _, err := s.List(ctx, cp, ListInput{})
	if err != nil || len(list) != 1 || list[0].ID != client.ID {
		t.Fatalf("client lists %v, %v", list, err)
	}
	if _, err := s.ChangeRole(ctx, cp, ChangeRoleInput{ID: owner.ID, Role: authn.RoleClient, CustomerID: uuid.NewString()}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("client changes the owner's role: %v, want ErrNotFound", err)
	}
}

func TestOwnersAreProtected(t *testing.T) {
	s, store, rec := newService(t)
	ctx := t.Context()
	owner, _ := s.Create(ctx, operator, CreateInput{Email: "owner@example.com", Password: pw, Role: authn.RoleOwner})
	admin, _ := s.Create(ctx, operator, CreateInput{Email: "admin@example.com", Password: pw, Role: authn.RoleAdmin})
	op, ap := userPrincipal(owner), userPrincipal(admin)

	if _, err := s.ChangeRole(ctx, op, ChangeRoleInput{ID: owner.ID, Role: authn.RoleAdmin}); !errors.Is(err, ErrLastOwner) {
		t.Fatalf("demote the last owner: %v", err)
	}
	if _, err := s.Disable(ctx, op, owner.ID, ""); !errors.Is(err, ErrDisableSelf) {
		t.Fatalf("disable self: %v", err)
	}
	if _, err := s.Disable(ctx, ap, owner.ID, ""); !errors.Is(err, ErrOwnerRequired) {
		t.Fatalf("admin disables the owner: %v", err)
	}
	if _, err := s.ChangeRole(ctx, ap, ChangeRoleInput{ID: admin.ID, Role: authn.RoleOwner}); !errors.Is(err, ErrOwnerRequired) {
		t.Fatalf("admin promotes itself: %v", err)
	}
	u, err := s.ChangeRole(ctx, op, ChangeRoleInput{ID: admin.ID, Role: authn.RoleOwner})
	if err != nil || u.Role != authn.RoleOwner {
		t.Fatalf("owner promotes the admin: %v", err)
	}
	// Now two owners: one may go.
	if _, err := s.Disable(ctx, op, admin.ID, "left"); err != nil {
		t.Fatal(err)
	}
	if store.activeOwners() != 1 {
		t.Fatalf("%d active owners", store.activeOwners())
	}
	before := len(rec.actions())
	if _, err := s.Disable(ctx, op, admin.ID, "again"); err != nil {
		t.Fatalf("disable a disabled user: %v", err)
	}
	if len(rec.actions()) != before {
		t.Error("disabling a disabled user was audited again")
	}
}
