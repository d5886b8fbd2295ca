// Package grpcapi is the auth service's gRPC surface: it converts auth.v1 messages to the domain
// packages' inputs and their results back (toX/fromX), takes the caller's principal from the
// context (pkg/authn) and the client IP from the metadata, and turns every error into a status in
// one place (toStatus). Business rules live in the domain packages, never here.
package grpcapi

import (
	"context"
	"log/slog"

	"google.golang.org/grpc/codes"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/authn/token"
	"github.com/hashinsight/platform/pkg/errcode"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
	"github.com/hashinsight/platform/services/auth/internal/audit"
	"github.com/hashinsight/platform/services/auth/internal/credentials"
	"github.com/hashinsight/platform/services/auth/internal/sessions"
	"github.com/hashinsight/platform/services/auth/internal/signing"
	"github.com/hashinsight/platform/services/auth/internal/users"
)

// Deps are the domain services behind the API.
type Deps struct {
	Users       *users.Service
	Sessions    *sessions.Service
	Keys        *signing.Manager
	Audit       *audit.Log
	Credentials *credentials.Service
	Logger      *slog.Logger
}

// Server implements authv1.AuthServiceServer.
type Server struct {
	authv1.UnimplementedAuthServiceServer

	users    *users.Service
	sessions *sessions.Service
	keys     *signing.Manager
	audit    *audit.Log
	creds    *credentials.Service
	logger   *slog.Logger
}

var _ authv1.AuthServiceServer = (*Server)(nil)

// New returns the server.
func New(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{users: d.Users, sessions: d.Sessions, keys: d.Keys, audit: d.Audit, creds: d.Credentials, logger: d.Logger}
}

// principal returns the caller's principal; every non-public method has one (pkg/authn).
func principal(ctx context.Context) (*authn.Principal, error) {
	p, ok := authn.FromContext(ctx)
	if !ok {
		return nil, errcode.Error(errcode.AuthRequired, codes.Unauthenticated, "authentication required")
	}
	return p, nil
}

// Login implements authv1.AuthServiceServer.
func (s *Server) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	ctx = withClientIP(ctx)
	pair, u, err := s.sessions.Login(ctx, req.GetEmail(), req.GetPassword())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.LoginResponse{Tokens: toTokenPair(pair), User: toUser(u)}, nil
}

// Refresh implements authv1.AuthServiceServer.
func (s *Server) Refresh(ctx context.Context, req *authv1.RefreshRequest) (*authv1.RefreshResponse, error) {
	ctx = withClientIP(ctx)
	pair, err := s.sessions.Refresh(ctx, req.GetRefreshToken())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.RefreshResponse{Tokens: toTokenPair(pair)}, nil
}

// Logout implements authv1.AuthServiceServer.
func (s *Server) Logout(ctx context.Context, req *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	ctx = withClientIP(ctx)
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	err = s.sessions.Logout(ctx, p, sessions.LogoutInput{RefreshToken: req.GetRefreshToken(), AllSessions: req.GetAllSessions()})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.LogoutResponse{}, nil
}

// GetMe implements authv1.AuthServiceServer.
func (s *Server) GetMe(ctx context.Context, _ *authv1.GetMeRequest) (*authv1.GetMeResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	me, u, err := s.sessions.Me(ctx, p)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &authv1.GetMeResponse{Principal: authn.ToProto(me)}
	if u != nil {
		resp.User = toUser(*u)
	}
	return resp, nil
}

// CreateUser implements authv1.AuthServiceServer.
func (s *Server) CreateUser(ctx context.Context, req *authv1.CreateUserRequest) (*authv1.CreateUserResponse, error) {
	ctx = withClientIP(ctx)
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.users.Create(ctx, p, users.CreateInput{
		Email:       req.GetEmail(),
		Password:    req.GetPassword(),
		DisplayName: req.GetDisplayName(),
		Role:        fromRole(req.GetRole()),
		CustomerID:  req.GetCustomerId(),
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.CreateUserResponse{User: toUser(u)}, nil
}

// ListUsers implements authv1.AuthServiceServer.
func (s *Server) ListUsers(ctx context.Context, req *authv1.ListUsersRequest) (*authv1.ListUsersResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	list, next, err := s.users.List(ctx, p, users.ListInput{
		PageSize:        int(req.GetPageSize()),
		PageToken:       req.GetPageToken(),
		Role:            fromRole(req.GetRole()),
		IncludeDisabled: req.GetIncludeDisabled(),
		Query:           req.GetQuery(),
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.ListUsersResponse{Users: toUsers(list), NextPageToken: next}, nil
}

// GetUser implements authv1.AuthServiceServer.
func (s *Server) GetUser(ctx context.Context, req *authv1.GetUserRequest) (*authv1.GetUserResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.users.Get(ctx, p, req.GetId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.GetUserResponse{User: toUser(u)}, nil
}

// ChangeUserRole implements authv1.AuthServiceServer.
func (s *Server) ChangeUserRole(ctx context.Context, req *authv1.ChangeUserRoleRequest) (*authv1.ChangeUserRoleResponse, error) {
	ctx = withClientIP(ctx)
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.users.ChangeRole(ctx, p, users.ChangeRoleInput{ID: req.GetId(), Role: fromRole(req.GetRole()), CustomerID: req.GetCustomerId()})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.ChangeUserRoleResponse{User: toUser(u)}, nil
}

// SetUserCustomers implements authv1.AuthServiceServer.
func (s *Server) SetUserCustomers(ctx context.Context, req *authv1.SetUserCustomersRequest) (*authv1.SetUserCustomersResponse, error) {
	ctx = withClientIP(ctx)
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.users.SetCustomers(ctx, p, req.GetId(), req.GetCustomerIds())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.SetUserCustomersResponse{User: toUser(u)}, nil
}

// DisableUser implements authv1.AuthServiceServer.
func (s *Server) DisableUser(ctx context.Context, req *authv1.DisableUserRequest) (*authv1.DisableUserResponse, error) {
	ctx = withClientIP(ctx)
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.users.Disable(ctx, p, req.GetId(), req.GetReason())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.DisableUserResponse{User: toUser(u)}, nil
}

// ListAuditEvents implements authv1.AuthServiceServer.
func (s *Server) ListAuditEvents(ctx context.Context, req *authv1.ListAuditEventsRequest) (*authv1.ListAuditEventsResponse, error) {
	if _, err := principal(ctx); err != nil {
		return nil, err
	}
	if req.GetUserId() != "" {
		if err := users.ValidateID("user_id", req.GetUserId()); err != nil {
			return nil, s.toStatus(ctx, err)
		}
	}
	if err := audit.ValidateActor(req.GetActor()); err != nil {
		return nil, s.toStatus(ctx, &users.FieldError{Field: "actor", Reason: err.Error()})
	}
	level, ok := fromAuditLevel(req.GetLevel())
	if !ok {
		return nil, s.toStatus(ctx, &users.FieldError{Field: "level", Reason: "is not a defined audit level"})
	}
	page, err := s.audit.List(ctx, audit.Filter{
		UserID:    req.GetUserId(),
		Actor:     req.GetActor(),
		Category:  req.GetCategory(),
		Action:    req.GetAction(),
		MinLevel:  level,
		From:      fromTS(req.GetFrom()),
		To:        fromTS(req.GetTo()),
		PageSize:  int(req.GetPageSize()),
		PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	out := make([]*authv1.AuditEvent, len(page.Events))
	for i, e := range page.Events {
		out[i] = toAuditEvent(e)
	}
	return &authv1.ListAuditEventsResponse{AuditEvents: out, NextPageToken: page.NextPageToken}, nil
}

// VerifyAuditChain implements authv1.AuthServiceServer.
func (s *Server) VerifyAuditChain(ctx context.Context, req *authv1.VerifyAuditChainRequest) (*authv1.VerifyAuditChainResponse, error) {
	if _, err := principal(ctx); err != nil {
		return nil, err
	}
	res, err := s.audit.Verify(ctx, req.GetFromSequence(), req.GetToSequence())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	resp := &authv1.VerifyAuditChainResponse{
		Valid:               res.OK,
		CheckedCount:        res.Checked,
		FirstBrokenSequence: res.BrokenSeq,
		Reason:              res.Reason,
		HeadHash:            res.HeadHash,
	}
	if res.Broken != nil {
		resp.FirstBrokenEventId = res.Broken.ID
	}
	return resp, nil
}

// GetSigningKeys implements authv1.AuthServiceServer.
func (s *Server) GetSigningKeys(ctx context.Context, _ *authv1.GetSigningKeysRequest) (*authv1.GetSigningKeysResponse, error) {
	keys := s.keys.FreshPublicKeys(ctx)
	out := make([]*authv1.SigningKey, len(keys))
	for i, k := range keys {
		out[i] = toSigningKey(k)
	}
	return &authv1.GetSigningKeysResponse{
		Keys:     out,
		Issuer:   token.DefaultIssuer,
		Audience: token.DefaultAudience,
		CacheTtl: durpb(s.keys.CacheTTL()),
	}, nil
}
